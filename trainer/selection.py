"""R1's rejection sampling: keep the sampled completions that pass a rule, written as SFT data.

DeepSeek-R1 built its reasoning SFT set by sampling many completions per prompt from the RL
checkpoint and keeping the correct, readable ones. `select` does that over a scored stream:

1. every completion is scored with the given scorers (through a running stack, or the embedded
   one); a completion with a component that is not `ok` is dropped unless `keep_not_ok`;
2. `keep_if`, an expression over component values and statuses (`math == 1 and readability == 1
   and language >= 0.95`, `math.status == "ok"`, `reward > 0.5`), decides which pass;
3. a prompt's pass rate is the share of its judged completions that pass; with `pass_rate=(lo, hi)`
   only prompts inside the band keep anything (the filter used to curate RL prompts);
4. at most `per_prompt` passing completions per prompt are kept: best reward first, ties broken by
   the shortest completion or by a seeded hash.

Input rows (JSONL lines, or mappings for the library call), any mix of:
- one completion per row: `completion` (text, or chat messages) and a prompt (`prompt`,
  `question` or `problem`) or `group_id`;
- one prompt per row with `completions`, a list of completions;
- chat `messages` whose last turn is the assistant's completion.
The gold is in the columns `rewardstack score` reads (`reference`, `answer`, `solution`, `tests`).
A prompt's completions are grouped by `group_id`, else by the prompt; a group's rows must be
contiguous, so a file larger than memory streams through with one group held at a time.

Each kept completion becomes `{"messages": [...prompt turns, {"role": "assistant", "content": ...}],
"source": {the input row's fields}, "rewardstack": {"reward", "scores"}}`: the conversational
format TRL's `SFTTrainer` reads.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rewardstack.client import RewardClient, ScorerSpec, normalize_scorers
from rewardstack.keep_rule import KeepRule
from rewardstack.score_file import (
    InputError,
    Pending,
    count_lines,
    item_fields,
    item_fingerprint,
    progress_bar,
    read_rows,
    score_ahead,
    scored_stream,
    scorers_fingerprint,
)
from rewardstack.services.contract import ItemResult, ScoreItem, ScorerRequest, Status

__all__ = ["Selection", "SelectionPolicy", "SelectReport", "parse_pass_rate", "select", "select_file", "selection_policy"]

TieBreak = Literal["shortest", "seed"]
_SOURCE_DROP = ("completion", "completions", "messages")


# -- the policy ----------------------------------------------------------------------------------


def parse_pass_rate(text: str) -> tuple[float, float]:
    """`"0.1..0.9"` to (0.1, 0.9), both ends included; raises ValueError naming the flag."""
    low, sep, high = text.partition("..")
    try:
        band = (float(low), float(high)) if sep else None
    except ValueError:
        band = None
    if band is None or not (0.0 <= band[0] <= band[1] <= 1.0):
        raise ValueError(f"pass-rate: {text!r} must be LOW..HIGH with 0 <= LOW <= HIGH <= 1, e.g. 0.1..0.9")
    return band


@dataclass(frozen=True)
class SelectionPolicy:
    """What to keep: the rule, the pass-rate band, the per-prompt cap and how ties are broken."""

    keep_if: KeepRule | None = None
    per_prompt: int | None = None
    pass_rate: tuple[float, float] | None = None
    tie_break: TieBreak = "shortest"
    seed: int = 0
    keep_not_ok: bool = False

    def __post_init__(self) -> None:
        if self.per_prompt is not None and self.per_prompt < 1:
            raise ValueError("per-prompt: must be at least 1")
        if self.tie_break not in ("shortest", "seed"):
            raise ValueError(f"tie-break: {self.tie_break!r}; choose shortest or seed")


# -- the input -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """One sampled completion, with what is needed to group it and to write it as SFT data."""

    group: str
    item: ScoreItem
    prompt_turns: tuple[Mapping[str, Any], ...]
    source: Mapping[str, Any]
    line: int
    last_of_line: bool


def _text_of(completion: Any, where: str) -> str:
    """A completion as text: a string, or chat messages (the assistant turns' content)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping) and isinstance(completion.get("content"), str):
        return completion["content"]
    if isinstance(completion, list) and completion and all(isinstance(m, Mapping) for m in completion):
        turns = [m.get("content") for m in completion if m.get("role", "assistant") == "assistant"]
        if turns and all(isinstance(t, str) for t in turns):
            return "".join(turns)
    raise InputError(f"{where}: a completion must be text or chat messages with string `content`")


def _prompt_turns(prompt: Any, where: str) -> tuple[Mapping[str, Any], ...]:
    if isinstance(prompt, str):
        return ({"role": "user", "content": prompt},)
    if isinstance(prompt, list) and prompt and all(isinstance(m, Mapping) and "role" in m and "content" in m for m in prompt):
        return tuple(prompt)
    raise InputError(f"{where}: needs a prompt (`prompt`, `question` or `problem`: text or chat messages, or `messages`) to write SFT data")


def candidates(row: Mapping[str, Any], line: int, where: str) -> list[Candidate]:
    """The completions one input row holds; raises InputError naming the line and the field."""
    fields = item_fields(row)
    if isinstance(row.get("messages"), list) and row.get("completion") is None and row.get("completions") is None:
        messages = row["messages"]
        if not messages or not isinstance(messages[-1], Mapping) or messages[-1].get("role") != "assistant":
            raise InputError(f"{where}: `messages` must end with the assistant's turn (the completion)")
        completions = [messages[-1]]
        fields["prompt"] = list(messages[:-1])
        many = False
    elif isinstance(row.get("completions"), list):
        completions, many = row["completions"], True
        if not completions:
            raise InputError(f"{where}: `completions` is empty")
    elif row.get("completion") is not None:
        completions, many = [row["completion"]], False
    else:
        raise InputError(f"{where}: needs `completion`, `completions` (a list) or `messages`")
    turns = _prompt_turns(fields["prompt"], where)
    prompt = fields["prompt"]
    group = fields.get("group_id") or (prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True, ensure_ascii=False))
    source = {k: v for k, v in row.items() if k not in _SOURCE_DROP}
    out = []
    for k, completion in enumerate(completions):
        try:
            item = ScoreItem(id=f"L{line}.{k}" if many else f"L{line}", completion=_text_of(completion, where), **fields)
        except ValueError as exc:
            raise InputError(f"{where}: {exc}") from None
        out.append(Candidate(group, item, turns, {**source, "completion_index": k} if many else source, line, k == len(completions) - 1))
    return out


# -- the report ----------------------------------------------------------------------------------


@dataclass
class SelectReport:
    """Counts over the whole run; `reasons` counts each reason once per dropped completion it applies to."""

    samples: int = 0
    kept: int = 0
    prompts: int = 0
    prompts_kept: int = 0
    prompts_in_band: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    pass_rate_histogram: list[int] = field(default_factory=lambda: [0] * 10)  # prompts per tenth; [0.9, 1.0] in the last

    @property
    def dropped(self) -> int:
        return self.samples - self.kept

    def as_dict(self) -> dict[str, Any]:
        return {
            "samples": self.samples, "kept": self.kept, "dropped": self.dropped,
            "prompts": self.prompts, "prompts_kept": self.prompts_kept, "prompts_in_band": self.prompts_in_band,
            "statuses": dict(self.statuses), "drop_reasons": dict(self.reasons.most_common()),
            "pass_rate_histogram": {f"{i / 10:.1f}..{(i + 1) / 10:.1f}": n for i, n in enumerate(self.pass_rate_histogram)},
        }

    def line(self) -> str:
        top = ", ".join(f"{reason} {n}" for reason, n in self.reasons.most_common(5))
        return (f"kept {self.kept} of {self.samples} completions from {self.prompts_kept} of {self.prompts} prompts"
                + (f"; top drop reasons: {top}" if top else ""))


_DIGITS = re.compile(r"\d+(?:\.\d+)?")


def _reason(name: str, result: ItemResult) -> list[str]:
    """Histogram keys for one blamed name: `scorer: what failed`, numbers folded to `#` so keys group."""
    component = result.components.get(name)
    if component is None:
        return [name]
    clauses = [c for c in component.detail.split("; ") if c.strip()]
    if not clauses:
        return [name]
    return [f"{name}: {_DIGITS.sub('#', re.split(r'[:(]', c, maxsplit=1)[0].strip())[:60]}" for c in clauses]


@dataclass(frozen=True)
class PromptStats:
    """One prompt's line in the per-prompt report."""

    group: str
    line: int
    samples: int
    judged: int
    passed: int
    kept: int
    in_band: bool

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.judged if self.judged else None

    def as_dict(self) -> dict[str, Any]:
        return {"group": self.group[:200], "line": self.line, "samples": self.samples, "judged": self.judged,
                "passed": self.passed, "pass_rate": self.pass_rate, "in_band": self.in_band, "kept": self.kept}


# -- one prompt ----------------------------------------------------------------------------------


def _select_group(
    members: Sequence[tuple[Candidate, ItemResult]], policy: SelectionPolicy, report: SelectReport
) -> tuple[list[tuple[Candidate, ItemResult]], PromptStats]:
    """Decide one prompt's completions; returns the kept ones in input order and its stats."""
    passed: list[int] = []
    judged = 0
    for index, (_, result) in enumerate(members):
        report.samples += 1
        report.statuses[result.status.value] += 1
        not_ok = [n for n, c in result.components.items() if c.status is not Status.OK]
        if not_ok and not policy.keep_not_ok:
            for name in not_ok:
                report.reasons[f"not_ok: {name} {result.components[name].status.value}"] += 1
            continue
        judged += 1
        ok, blamed = policy.keep_if(result) if policy.keep_if else (True, [])
        if ok:
            passed.append(index)
        else:
            for reason in dict.fromkeys(r for name in blamed for r in _reason(name, result)):
                report.reasons[f"keep_if: {reason}"] += 1
    n_passed = len(passed)
    rate = n_passed / judged if judged else None
    in_band = policy.pass_rate is None or (rate is not None and policy.pass_rate[0] <= rate <= policy.pass_rate[1])
    if not in_band:
        low, high = policy.pass_rate  # type: ignore[misc]
        report.reasons[f"pass_rate: prompt outside {low:g}..{high:g}"] += len(passed)
        passed = []
    if policy.per_prompt is not None and len(passed) > policy.per_prompt:
        ranked = sorted(passed, key=lambda i: _rank(members[i], policy))
        report.reasons[f"per_prompt: beyond the best {policy.per_prompt}"] += len(passed) - policy.per_prompt
        passed = sorted(ranked[: policy.per_prompt])
    kept = [members[i] for i in passed]
    report.kept += len(kept)
    report.prompts += 1
    report.prompts_kept += bool(kept)
    report.prompts_in_band += in_band
    if rate is not None:
        report.pass_rate_histogram[min(9, int(rate * 10))] += 1
    first = members[0][0]
    return kept, PromptStats(first.group, first.line, len(members), judged, n_passed, len(kept), in_band)


def _rank(member: tuple[Candidate, ItemResult], policy: SelectionPolicy) -> tuple[float, Any]:
    """Best reward first; then the shortest completion, or a seeded hash (stable across reruns)."""
    candidate, result = member
    reward = -result.reward if result.reward is not None and math.isfinite(result.reward) else math.inf
    if policy.tie_break == "shortest":
        return reward, (len(candidate.item.completion), candidate.line, candidate.item.id)
    digest = hashlib.sha256(f"{policy.seed}\0{candidate.item.id}\0{candidate.item.completion}".encode()).digest()
    return reward, digest


def sft_row(candidate: Candidate, result: ItemResult) -> dict[str, Any]:
    """The SFT line of a kept completion: chat `messages`, the source fields, and its scores."""
    messages = [dict(turn) for turn in candidate.prompt_turns] + [{"role": "assistant", "content": candidate.item.completion}]
    scores = {name: c.value for name, c in result.components.items()}
    # The source row goes under `source`: a top-level `prompt` or `completion` would make TRL's
    # SFTTrainer read the row as prompt-completion data instead of conversational `messages`.
    return {"messages": messages, "source": dict(candidate.source), "rewardstack": {"reward": result.reward, "scores": scores}}


# -- streaming -----------------------------------------------------------------------------------


def _groups(scored: Iterable[tuple[Candidate, ItemResult]]) -> Iterator[list[tuple[Candidate, ItemResult]]]:
    """Consecutive completions of one prompt; refuses a prompt whose rows are not contiguous."""
    seen: set[bytes] = set()
    current: list[tuple[Candidate, ItemResult]] = []
    for candidate, result in scored:
        if current and candidate.group != current[0][0].group:
            yield current
            current = []
        if not current:
            key = hashlib.blake2b(candidate.group.encode(), digest_size=12).digest()
            if key in seen:
                raise InputError(
                    f"line {candidate.line}: the prompt {candidate.group[:80]!r} came earlier and was already decided; "
                    "put each prompt's completions on consecutive lines (sort by group_id), or one line per prompt with `completions`"
                )
            seen.add(key)
        current.append((candidate, result))
    if current:
        yield current


def _run(
    scored: Iterable[tuple[Candidate, ItemResult]],
    policy: SelectionPolicy,
    on_kept: Callable[[dict[str, Any]], None],
    on_prompt: Callable[[PromptStats], None],
) -> SelectReport:
    report = SelectReport()
    for members in _groups(scored):
        kept, stats = _select_group(members, policy, report)
        for candidate, result in kept:
            on_kept(sft_row(candidate, result))
        on_prompt(stats)
    return report


# -- the two front doors -------------------------------------------------------------------------


@dataclass
class Selection:
    """What `select` returns: the kept rows (SFT format), the report, and one stats entry per prompt."""

    rows: list[dict[str, Any]]
    report: SelectReport
    prompts: list[PromptStats]


def select(
    rows: Iterable[Mapping[str, Any]],
    scorers: ScorerSpec,
    *,
    keep_if: str | None = None,
    per_prompt: int | None = None,
    pass_rate: tuple[float, float] | str | None = None,
    tie_break: TieBreak = "shortest",
    seed: int = 0,
    keep_not_ok: bool = False,
    client: RewardClient | None = None,
    url: str | Sequence[str] | None = None,
    batch_size: int = 1024,
    deadline_s: float | None = None,
) -> Selection:
    """Rejection sampling over an iterable of rows, for notebooks and pipelines.

    Scores through `client`, else a client on `url`, else the embedded stack (started for this
    call, serving only `scorers`). Rows take the shapes of the module docstring.

    >>> sel = rewardstack.select(rows, "math,readability", keep_if="math == 1 and readability == 1", per_prompt=4)  # doctest: +SKIP
    >>> sel.report.kept, sel.rows[0]["messages"][-1]["role"]  # doctest: +SKIP
    (812, 'assistant')
    """
    wire = normalize_scorers(scorers)
    policy = selection_policy(wire, keep_if, per_prompt, pass_rate, tie_break, seed, keep_not_ok)
    kept: list[dict[str, Any]] = []
    prompts: list[PromptStats] = []
    with ExitStack() as stack:
        client = _open_client(stack, client, url, wire)
        pending = (
            Pending(c.item, "", f"row {index + 1}", c)
            for index, row in enumerate(rows)
            for c in candidates(_as_row(row, index + 1), index + 1, f"row {index + 1}")
        )
        scored = ((p.payload, r) for p, r in _score_in_batches(pending, client, wire, batch_size, deadline_s))
        report = _run(scored, policy, kept.append, prompts.append)
    return Selection(kept, report, prompts)


def select_file(
    source: Path,
    out: Path,
    scorers: dict[str, ScorerRequest],
    policy: SelectionPolicy,
    *,
    client: RewardClient,
    batch_size: int = 1024,
    deadline_s: float | None = None,
    rescore: bool = False,
    progress: bool = True,
) -> SelectReport:
    """Select from a JSONL file into `out` (SFT JSONL), with `out`'s `.scored.jsonl`, `.report.json`
    and `.prompts.jsonl` beside it.

    Scores are journaled in `.scored.jsonl` with `rewardstack score`'s fingerprints, so a rerun
    after an interruption scores only what is missing, and a rerun with another rule, band or cap
    rescores nothing. `out` and the reports are written to temporary files and renamed at the end:
    an interrupted run never leaves a partial selection where a finished one is expected.
    """
    journal, report_path, prompts_path = _siblings(out)
    fingerprint = scorers_fingerprint(scorers)
    pending = (
        Pending(c.item, item_fingerprint(fingerprint, raw, k), f"{source}:{number}", c)
        for number, raw, row in read_rows(source)
        for k, c in enumerate(candidates(row, number, f"{source}:{number}"))
    )
    stream = scored_stream(pending, journal, client, scorers, batch_size=batch_size, deadline_s=deadline_s, rescore=rescore)
    tmp_out, tmp_prompts = out.with_name(out.name + ".tmp"), prompts_path.with_name(prompts_path.name + ".tmp")
    with progress_bar(count_lines(source), progress, unit="line") as bar, \
         tmp_out.open("w", encoding="utf-8") as sink, tmp_prompts.open("w", encoding="utf-8") as prompt_sink:

        def scored() -> Iterator[tuple[Candidate, ItemResult]]:
            for p, result, _ in stream:
                candidate: Candidate = p.payload
                yield candidate, result
                if candidate.last_of_line:
                    bar.update(1)

        report = _run(
            scored(),
            policy,
            lambda row: sink.write(json.dumps(row, ensure_ascii=False) + "\n"),
            lambda stats: prompt_sink.write(json.dumps(stats.as_dict(), ensure_ascii=False) + "\n"),
        )
    if not report.samples:
        raise InputError(f"{source}: no completions")
    os.replace(tmp_out, out)
    os.replace(tmp_prompts, prompts_path)
    report_path.write_text(json.dumps(report.as_dict(), indent=2) + "\n", encoding="utf-8")
    return report


def _siblings(out: Path) -> tuple[Path, Path, Path]:
    """The journal, report and per-prompt files that go with `out`."""
    stem = out.name[: -len(".jsonl")] if out.name.endswith(".jsonl") else out.name
    return out.with_name(stem + ".scored.jsonl"), out.with_name(stem + ".report.json"), out.with_name(stem + ".prompts.jsonl")


def selection_policy(
    scorers: Mapping[str, ScorerRequest], keep_if: str | None, per_prompt: int | None,
    pass_rate: tuple[float, float] | str | None, tie_break: TieBreak, seed: int, keep_not_ok: bool,
) -> SelectionPolicy:
    """The policy from the flags' or the library call's values; raises ValueError naming the bad one."""
    band = parse_pass_rate(pass_rate) if isinstance(pass_rate, str) else pass_rate
    if band is not None and not (0.0 <= band[0] <= band[1] <= 1.0):
        raise ValueError(f"pass_rate: {band} must be (low, high) with 0 <= low <= high <= 1")
    rule = KeepRule(keep_if, scorers) if keep_if else None
    return SelectionPolicy(rule, per_prompt, band, tie_break, seed, keep_not_ok)


def _as_row(row: Any, index: int) -> Mapping[str, Any]:
    if not isinstance(row, Mapping):
        raise InputError(f"row {index}: a row must be a mapping, not {type(row).__name__}")
    return row


def _open_client(stack: ExitStack, client: RewardClient | None, url: str | Sequence[str] | None, scorers: Mapping[str, Any]) -> RewardClient:
    if client is not None:
        return client
    if url is None:
        from rewardstack.embedded import embedded_gateway

        url = stack.enter_context(embedded_gateway(scorers))
    opened = stack.enter_context(RewardClient(url))
    opened.check(list(scorers))
    return opened


def _score_in_batches(
    pending: Iterable[Pending], client: RewardClient, scorers: dict[str, ScorerRequest], batch_size: int, deadline_s: float | None
) -> Iterator[tuple[Pending, ItemResult]]:
    for batch, result in score_ahead(pending, client, scorers, batch_size=batch_size, deadline_s=deadline_s):
        yield from zip(batch, result.results)
