"""verl custom reward functions that score on the reward stack.

Per sample (verl's `naive` reward manager), verl >= 0.8 (the `reward.` config group):

    reward.custom_reward_function.path=pkg://rewardstack.verl
    reward.custom_reward_function.name=compute_score
    +reward.custom_reward_function.reward_kwargs.url=http://127.0.0.1:8000
    '+reward.custom_reward_function.reward_kwargs.scorers={math:1,format:0.2}'

verl <= 0.7 has the same keys without the `reward.` prefix (`custom_reward_function.path=...`);
before 0.7, which added `pkg://`, the path is the file's:
`$(python -c "import rewardstack.verl as m; print(m.__file__)")`.
The scorers are a Hydra dict (quoted for the shell, whose brace expansion would split it) or a
quoted string `'...scorers="math:1,format:0.2"'`; unquoted, Hydra reads `math:1,format:0.2` as a
list and stops with "Ambiguous value".

A whole batch in one round trip: verl's `batch` reward manager (`reward_model.reward_manager=batch`
in verl <= 0.7) with `custom_reward_function.name=compute_score_batch`.

Without `url`/`scorers` kwargs, `REWARDSTACK_URL` (comma-separated for several replicas) and
`REWARDSTACK_SCORERS` are read; the scorers default to `math`. `ground_truth` becomes the
item's `reference`, `data_source` its `task`, the scalar entries of `extra_info` its metadata.

verl has no way to leave a sample out, so an item that is not `ok` raises `ItemNotScored` by
default: a run should stop on broken gold or a dead sandbox, not learn from a made-up number. Pass
`on_unscored=0.0` (or any value) to stand in for `unscorable` and `timeout` items; an `error`
(our infrastructure) still raises. The result is a dict: `score`, plus each scorer's component
(NaN where that component is not `ok`), which verl logs as extra reward info.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from rewardstack.services.contract import ScoreItem
from rewardstack.client import normalize_scorers, shared_client
from rewardstack.errors import ItemNotScored

__all__ = ["compute_score", "compute_score_batch"]

DEFAULT_SCORERS = "math"


def _urls(url: str | Sequence[str] | None) -> tuple[str, ...]:
    url = url or os.environ.get("REWARDSTACK_URL")
    if not url:
        raise ValueError("no reward service URL: pass reward_kwargs.url or set REWARDSTACK_URL")
    parts = url.split(",") if isinstance(url, str) else list(url)
    return tuple(p.strip() for p in parts if p.strip())


def _plain(extra_info: Mapping[str, Any] | None) -> dict[str, Any]:
    """The scalar entries of verl's `extra_info` as item metadata; numpy scalars become Python ones."""
    out = {}
    for key, value in (extra_info or {}).items():
        value = value.item() if hasattr(value, "item") and getattr(value, "ndim", None) == 0 else value
        if isinstance(value, (str, int, float, bool)) or value is None:
            out[str(key)] = value
    return out


def _from_config(value: Any) -> Any:
    """Hydra's DictConfig/ListConfig (what `reward_kwargs` holds) as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): _from_config(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_from_config(v) for v in value]
    return value


def compute_score_batch(
    data_sources: Sequence[str],
    solution_strs: Sequence[str],
    ground_truths: Sequence[Any],
    extra_infos: Sequence[Mapping[str, Any] | None] | None = None,
    *,
    url: str | Sequence[str] | None = None,
    scorers: str | Mapping[str, Any] | Sequence[str] | None = None,
    deadline_s: float | None = None,
    on_unscored: float | None = None,
    **_: Any,
) -> list[dict[str, float]]:
    """Score a batch in one request; one dict per sample (`score` plus each component).

    verl's batch manager passes numpy arrays (of strings, of dicts); any sequence works.
    """
    wire = normalize_scorers(_from_config(scorers) or os.environ.get("REWARDSTACK_SCORERS", DEFAULT_SCORERS))
    client = shared_client(_urls(_from_config(url)), "raise" if on_unscored is None else float(on_unscored))
    extras = [None] * len(solution_strs) if extra_infos is None else list(extra_infos)
    items = [
        ScoreItem(id=str(i), completion=str(solution), reference=_from_config(truth), task=None if source is None else str(source),
                  metadata=_plain(extra))
        for i, (source, solution, truth, extra) in enumerate(
            zip(list(data_sources), list(solution_strs), list(ground_truths), extras, strict=True)
        )
    ]
    result = client.score(items, wire, deadline_s=deadline_s)
    rewards = client.rewards(result)
    out = []
    for item, reward in zip(result.results, rewards, strict=True):
        if reward is None:  # an `error` under a fallback policy: verl cannot mask it
            raise ItemNotScored(item.id, item.status.value, "verl cannot leave a sample out")
        components = {name: c.value if c.value is not None else math.nan for name, c in item.components.items()}
        out.append({"score": reward, **components})
    return out


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, float]:
    """verl's per-sample hook: one request for this sample. Prefer `compute_score_batch` for speed."""
    return compute_score_batch([data_source], [solution_str], [ground_truth], [extra_info], **kwargs)[0]
