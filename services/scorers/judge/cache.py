"""The judge's verdict cache: a resent batch, or a GRPO group repeating an answer, costs nothing.

Keyed by a digest of (model, template digest, verdict shape, inputs): a new template wording, a
new scale or another model never reuses an old verdict. Only verdicts are kept (`ok`, and
`unscorable` for a reply that could not be read, which a temperature-0 judge would repeat);
`error` and `timeout` are never cached, so an outage heals by itself.

Identical questions asked at the same time share one request (single flight): sixteen completions
of a group that all answer `42` are one call to the judge.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from rewardstack.services.scorers.types import Scored, Status

CACHEABLE = frozenset({Status.OK, Status.UNSCORABLE})


def cache_key(*parts: Any) -> str:
    """A stable digest of JSON-serialisable parts."""
    text = json.dumps(parts, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class VerdictCache:
    """Least-recently-used verdicts, at most `max_entries`; `0` keeps none (single flight still applies)."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._done: OrderedDict[str, Scored] = OrderedDict()
        self._pending: dict[str, asyncio.Future[Scored]] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._done)

    async def get_or_ask(self, key: str, ask: Callable[[], Awaitable[Scored]]) -> tuple[Scored, bool]:
        """The cached verdict for `key` (and True), or `ask()`'s, shared with concurrent askers."""
        while (pending := self._pending.get(key)) is not None:
            await asyncio.wait({pending})  # if *we* are cancelled this raises, and the shared request goes on
            if not pending.cancelled():  # else its asker was cancelled: ask again ourselves
                self.hits += 1
                return pending.result(), True
        if (cached := self._done.get(key)) is not None:
            self._done.move_to_end(key)
            self.hits += 1
            return cached, True
        self.misses += 1
        future: asyncio.Future[Scored] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            scored = await ask()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here, so an unwatched future is not logged
            raise
        finally:
            del self._pending[key]
        future.set_result(scored)
        if scored.status in CACHEABLE and self.max_entries > 0:
            self._done[key] = scored
            if len(self._done) > self.max_entries:
                self._done.popitem(last=False)
        return scored, False
