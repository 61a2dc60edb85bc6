"""Score a JSONL file of completions through a running stack, streaming and resumably.

Each input line is a JSON object with `completion`, and optionally `id`, `prompt` (or
`question`/`problem`), a reference (`reference`, `answer`, `solution` or `tests`, first found),
`task`, `group_id`, `metadata`. Each output line is the item's `ItemResult` (id, reward, status,
components) plus a `fingerprint`, in input order. Results are appended and flushed batch by batch.

Resuming: the fingerprint of an item hashes its input line and the scorers with their weights and
params. A rerun reuses an output line only when its fingerprint is the one the same input line
and scorers give now, so a changed input, another scorer or another weight is refused with a
message naming `--rescore`, never silently mixed with old results. A partial last line (the
process was killed while writing it) is dropped and scored again.

`scored_stream` is the engine `rewardstack select` shares: it yields every item with its result,
from the output where it is already there, else scored and appended.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from rewardstack.client import RewardClient
from rewardstack.services.contract import ItemResult, ScoreBatchResult, ScoreItem, ScorerRequest

__all__ = [
    "InputError",
    "Pending",
    "ScoreSummary",
    "ScoredLine",
    "count_lines",
    "item_fields",
    "read_rows",
    "score_ahead",
    "score_file",
    "scored_stream",
    "scorers_fingerprint",
]

PROMPT_KEYS = ("prompt", "question", "problem")
REFERENCE_KEYS = ("reference", "answer", "solution", "tests")
_ITEM_KEYS = ("task", "group_id", "metadata")
RESCORE_FLAG = "--rescore"


class InputError(ValueError):
    """The input file or the existing output is malformed or stale; the message names the line."""


class ScoredLine(ItemResult):
    """One output line: the item's result and the fingerprint of what produced it."""

    fingerprint: str


@dataclass(frozen=True)
class Pending:
    """One item to score and the fingerprint its result line must carry."""

    item: ScoreItem
    fingerprint: str
    where: str  # `file:line` of its input, for messages
    payload: Any = None  # what the caller needs back with the result (select: the candidate)
    output_id: str | None = None  # the id its output line carries, when not the id it is sent under


@dataclass
class ScoreSummary:
    """Totals over every line of the output, the reused ones included."""

    total: int = 0
    new: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    reward_sum: float = 0.0
    reward_count: int = 0
    component_sums: dict[str, float] = field(default_factory=dict)
    component_statuses: dict[str, Counter[str]] = field(default_factory=dict)

    @property
    def reused(self) -> int:
        return self.total - self.new

    @property
    def mean_reward(self) -> float | None:
        return self.reward_sum / self.reward_count if self.reward_count else None

    def component_mean(self, name: str) -> float | None:
        ok = self.component_statuses.get(name, Counter())["ok"]
        return self.component_sums.get(name, 0.0) / ok if ok else None

    def add(self, result: ItemResult, *, new: bool) -> None:
        self.total += 1
        self.new += new
        self.statuses[result.status.value] += 1
        if result.reward is not None:
            self.reward_sum += result.reward
            self.reward_count += 1
        for name, component in result.components.items():
            self.component_statuses.setdefault(name, Counter())[component.status.value] += 1
            if component.value is not None:
                self.component_sums[name] = self.component_sums.get(name, 0.0) + component.value

    def line(self) -> str:
        """The one-line summary the CLI prints."""
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(self.statuses.items()))
        mean = "n/a" if self.mean_reward is None else f"{self.mean_reward:.4f}"
        per_scorer = "; ".join(
            f"{name} mean {'n/a' if (m := self.component_mean(name)) is None else f'{m:.4f}'} "
            f"({', '.join(f'{n} {s}' for s, n in sorted(counts.items()))})"
            for name, counts in self.component_statuses.items()
        )
        return (
            f"{self.total} items ({self.new} scored now, {self.reused} already done): {statuses}; "
            f"mean reward {mean} over {self.reward_count} ok items; {per_scorer}"
        )


def scorers_fingerprint(scorers: Mapping[str, ScorerRequest]) -> str:
    """A stable hash of the scorers, their weights and params (order of names does not matter)."""
    canonical = json.dumps({name: s.model_dump(mode="json") for name, s in sorted(scorers.items())}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def item_fingerprint(scorers_fp: str, raw_line: bytes, index: int = 0) -> str:
    """Fingerprint of the `index`-th item of one input line under one scorer set."""
    digest = hashlib.sha256(scorers_fp.encode())
    digest.update(b"\0%d\0" % index)
    digest.update(raw_line.rstrip(b"\r\n"))
    return digest.hexdigest()[:32]


def count_lines(path: Path) -> int:
    """Non-empty lines, counted in binary blocks: the progress bar's total without parsing."""
    count = 0
    with path.open("rb") as f:
        for line in f:
            count += bool(line.strip())
    return count


def read_rows(path: Path) -> Iterator[tuple[int, bytes, dict[str, Any]]]:
    """(line number, raw line, object) for each non-empty line, streamed; refuses a bad line by number."""
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise InputError(f"{path}:{number}: not JSON ({getattr(exc, 'msg', exc)})") from None
            if not isinstance(row, dict):
                raise InputError(f"{path}:{number}: a line must be a JSON object")
            yield number, raw, row


def first_of(row: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    return next((row[k] for k in keys if row.get(k) is not None), None)


def item_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    """The ScoreItem fields a row provides besides id and completion: prompt, reference, task, group, metadata."""
    fields = {k: row[k] for k in _ITEM_KEYS if row.get(k) is not None}
    if isinstance(fields.get("group_id"), int):
        fields["group_id"] = str(fields["group_id"])
    return {"prompt": first_of(row, PROMPT_KEYS), "reference": first_of(row, REFERENCE_KEYS), **fields}


def _pending_items(path: Path, scorers_fp: str) -> Iterator[Pending]:
    """`score`'s input: one item per line, with `completion`."""
    for index, (number, raw, row) in enumerate(read_rows(path)):
        if not isinstance(row.get("completion"), str):
            raise InputError(f"{path}:{number}: needs a string field `completion`")
        try:
            # sent under its line number, unique in any request; the output line carries the file's `id`
            item = ScoreItem(id=f"L{number}", completion=row["completion"], **item_fields(row))
        except ValueError as exc:
            raise InputError(f"{path}:{number}: {exc}") from None
        yield Pending(item, item_fingerprint(scorers_fp, raw), f"{path}:{number}", output_id=str(row.get("id", index)))


def _done_lines(out: Path) -> Iterator[ScoredLine]:
    """The result lines `out` holds, streamed; cuts off a partial last line left by an interruption."""
    if not out.exists():
        return
    _cut_partial_last_line(out)
    with out.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                yield ScoredLine.model_validate_json(raw)
            except ValueError:
                raise InputError(
                    f"{out}:{number}: not a result line with a fingerprint; pass {RESCORE_FLAG} to score everything again"
                ) from None


def _cut_partial_last_line(path: Path, block: int = 1 << 16) -> None:
    """Truncate `path` after its last newline, reading backwards block by block (the file may be huge)."""
    with path.open("rb+") as f:
        end = f.seek(0, 2)
        while end > 0:
            start = max(0, end - block)
            f.seek(start)
            if (i := f.read(end - start).rfind(b"\n")) != -1:
                end = start + i + 1
                break
            end = start
        f.truncate(end)


class _Progress(Protocol):
    def update(self, n: int) -> object: ...


@contextmanager
def progress_bar(total: int, enabled: bool, unit: str = "item") -> Iterator[_Progress]:
    """tqdm when installed (it comes with the `train` extra); a plain counter on stderr otherwise."""
    try:
        from tqdm import tqdm
    except ImportError:
        tqdm = None
    if tqdm is not None:
        with tqdm(total=total, unit=unit, disable=not enabled, file=sys.stderr) as bar:
            yield bar
        return

    class _Counter:
        done = 0

        def update(self, n: int) -> None:
            self.done += n
            if enabled:
                print(f"\r{self.done}/{total} {unit}s", end="", file=sys.stderr, flush=True)

    yield _Counter()
    if enabled:
        print(file=sys.stderr)


def scored_stream(
    pending: Iterable[Pending],
    out: Path,
    client: RewardClient,
    scorers: dict[str, ScorerRequest],
    *,
    batch_size: int = 256,
    deadline_s: float | None = None,
    rescore: bool = False,
) -> Iterator[tuple[Pending, ItemResult, bool]]:
    """Each pending item with its result and whether it was scored now, in input order.

    Lines `out` already holds are reused while their fingerprints match the items', in order;
    the rest are scored in batches, one batch ahead, and appended (flushed per batch, so a kill
    loses at most the batch in flight and the one scored ahead). `rescore` starts `out` over.
    Raises InputError on a stale or foreign output.
    """
    if rescore and out.exists():
        out.unlink()
    done = _done_lines(out)
    items = iter(pending)
    for line_number, line in enumerate(done, start=1):
        current = next(items, None)
        if current is None:
            raise InputError(f"{out} holds more results than the input has items; pass {RESCORE_FLAG} to start over")
        if line.fingerprint != current.fingerprint:
            raise InputError(
                f"{out}:{line_number} was scored from another input line, scorers or weights than {current.where} now; "
                f"pass {RESCORE_FLAG} to score everything again, or write to another --out"
            )
        yield current, ItemResult.model_validate(line.model_dump(exclude={"fingerprint"})), False
    with out.open("a", encoding="utf-8") as sink:
        for batch, result in score_ahead(items, client, scorers, batch_size=batch_size, deadline_s=deadline_s):
            results = [r if p.output_id is None else r.model_copy(update={"id": p.output_id}) for p, r in zip(batch, result.results)]
            sink.write("".join(ScoredLine(**dict(r), fingerprint=p.fingerprint).model_dump_json() + "\n" for p, r in zip(batch, results)))
            sink.flush()
            for p, r in zip(batch, results):
                yield p, r, True


def score_ahead(
    items: Iterable[Pending], client: RewardClient, scorers: dict[str, ScorerRequest], *, batch_size: int, deadline_s: float | None
) -> Iterator[tuple[list[Pending], ScoreBatchResult]]:
    """Batches with their results, in order, one batch scored ahead while the caller works through
    the previous one: the service never idles at a batch boundary (reading input, writing output,
    `select`'s decisions)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="score-ahead") as ahead:
        waiting: tuple[list[Pending], Future[ScoreBatchResult]] | None = None
        for batch in _batches(iter(items), batch_size):
            future = ahead.submit(client.score, [p.item for p in batch], scorers, deadline_s=deadline_s)
            if waiting is not None:
                yield waiting[0], waiting[1].result()
            waiting = (batch, future)
        if waiting is not None:
            yield waiting[0], waiting[1].result()


def _batches(items: Iterator[Pending], size: int) -> Iterator[list[Pending]]:
    batch: list[Pending] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def score_file(
    source: Path,
    out: Path,
    client: RewardClient,
    scorers: dict[str, ScorerRequest],
    *,
    batch_size: int = 256,
    deadline_s: float | None = None,
    progress: bool = True,
    rescore: bool = False,
) -> ScoreSummary:
    """Score `source` into `out`, resuming after the lines `out` already holds; summarizes all of `out`."""
    summary = ScoreSummary()
    pending = _pending_items(source, scorers_fingerprint(scorers))
    with progress_bar(count_lines(source), progress) as bar:
        for _, result, new in scored_stream(pending, out, client, scorers, batch_size=batch_size, deadline_s=deadline_s, rescore=rescore):
            summary.add(result, new=new)
            bar.update(1)
    if not summary.total:
        raise InputError(f"{source}: no items")
    return summary
