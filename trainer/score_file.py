"""Score a JSONL file of completions through a running stack, resumably.

Each input line is a JSON object with `completion`, and optionally `id`, `prompt` (or
`question`/`problem`), a reference (`reference`, `answer`, `solution` or `tests`, first found),
`task`, `group_id`, `metadata`. Each output line is the item's `ItemResult` (id, reward, status,
components), in input order. Results are appended and flushed batch by batch, so after an
interruption the same command carries on after the last complete line; a partial last line is
dropped and scored again.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from rewardstack.services.contract import ItemResult, ScoreItem, ScorerRequest
from rewardstack.client import RewardClient

__all__ = ["InputError", "ScoreSummary", "load_items", "score_file"]

_PROMPT_KEYS = ("prompt", "question", "problem")
_REFERENCE_KEYS = ("reference", "answer", "solution", "tests")
_ITEM_KEYS = ("task", "group_id", "metadata")


class InputError(ValueError):
    """The input file or the existing output is malformed; the message names the line."""


@dataclass
class ScoreSummary:
    scored: int
    skipped: int
    statuses: Counter[str]
    mean_reward: float | None


def _first(row: dict[str, Any], keys: tuple[str, ...]) -> Any:
    return next((row[k] for k in keys if row.get(k) is not None), None)


def load_items(path: Path) -> list[ScoreItem]:
    """Read the input; refuses the whole file at the first bad line, naming it."""
    items = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{number}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict) or not isinstance(row.get("completion"), str):
                raise InputError(f"{path}:{number}: needs a string field `completion`")
            fields = {k: row[k] for k in _ITEM_KEYS if row.get(k) is not None}
            try:
                items.append(
                    ScoreItem(
                        id=str(row.get("id", len(items))),
                        completion=row["completion"],
                        prompt=_first(row, _PROMPT_KEYS),
                        reference=_first(row, _REFERENCE_KEYS),
                        **fields,
                    )
                )
            except ValueError as exc:
                raise InputError(f"{path}:{number}: {exc}") from None
    if not items:
        raise InputError(f"{path}: no items")
    return items


def _done_ids(out: Path) -> list[str]:
    """Ids already written; cuts off a partial last line left by an interruption."""
    if not out.exists():
        return []
    data = out.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    if len(complete) != len(data):
        out.write_bytes(complete)
    ids = []
    for number, line in enumerate(complete.decode("utf-8").splitlines(), start=1):
        try:
            ids.append(ItemResult.model_validate_json(line).id)
        except ValueError:
            raise InputError(f"{out}:{number}: not a result line; move the file away to start over") from None
    return ids


class _Progress(Protocol):
    def update(self, n: int) -> object: ...


@contextmanager
def _progress(total: int, initial: int, enabled: bool) -> Iterator[_Progress]:
    """tqdm when installed (it comes with the `train` extra); a plain counter on stderr otherwise."""
    try:
        from tqdm import tqdm
    except ImportError:
        tqdm = None
    if tqdm is not None:
        with tqdm(total=total, initial=initial, unit="item", disable=not enabled, file=sys.stderr) as bar:
            yield bar
        return

    class _Counter:
        done = initial

        def update(self, n: int) -> None:
            self.done += n
            if enabled:
                print(f"\rscored {self.done}/{total}", end="", file=sys.stderr, flush=True)

    yield _Counter()
    if enabled:
        print(file=sys.stderr)


def score_file(
    source: Path,
    out: Path,
    client: RewardClient,
    scorers: dict[str, ScorerRequest],
    *,
    batch_size: int = 256,
    deadline_s: float | None = None,
    progress: bool = True,
) -> ScoreSummary:
    """Score `source` into `out`, resuming after the lines `out` already holds."""
    items = load_items(source)
    done = _done_ids(out)
    if [item.id for item in items[: len(done)]] != done:
        raise InputError(f"{out} holds results for other items than the first {len(done)} of {source}; move it away to start over")
    statuses: Counter[str] = Counter()
    total_reward, ok = 0.0, 0
    todo = items[len(done) :]
    with out.open("a", encoding="utf-8") as sink, _progress(len(items), len(done), progress) as bar:
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            result = client.score(batch, scorers, deadline_s=deadline_s)
            sink.write("".join(r.model_dump_json() + "\n" for r in result.results))
            sink.flush()
            for r in result.results:
                statuses[r.status.value] += 1
                if r.reward is not None:
                    total_reward, ok = total_reward + r.reward, ok + 1
            bar.update(len(batch))
    return ScoreSummary(scored=len(todo), skipped=len(done), statuses=statuses, mean_reward=total_reward / ok if ok else None)
