"""The loaded models with their batchers: what the HTTP app serves and the gateway embeds.

`ServedModels.open(specs)` loads every backend off the event loop, starts one batcher per model
and runs all forward passes on one thread (one device: passes would only contend). Tokenizing
runs on other threads, so a request is prepared while the previous pass computes; one lock keeps
tokenizing to one thread at a time, because a Hugging Face fast tokenizer shared between threads
can fail with "Already borrowed" (the embedded models even share one).

Before any tokenizing, every item is cut to what its model could read (`cap_characters`): the
prompt keeps its last `max_length * chars_per_token` characters (the model would cut it from the
left anyway), and a response longer than that is `too_long` without being tokenized (it is never
cut: a reward for half an answer is a wrong reward). A tokenizer's cost grows with its input, so
without this one 60 MB prompt held the server for minutes while it tokenized text it would drop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from rewardstack.services.model_server.backends.base import Backend, Prepared
from rewardstack.services.model_server.batcher import DynamicBatcher, PassObserver
from rewardstack.services.model_server.config import ModelSpec, force_offline
from rewardstack.services.model_server.schema import ModelInfo, ModelItem, ModelOutcome, OutcomeStatus

# Characters one token stands for, at most, for the purpose of the cut above. Natural text runs at
# 3-5 characters per token and code at up to ~10; 16 leaves room, so the cut never reaches text
# that would have fit, while bounding the work per item to a few hundred kilobytes per model window.
CHARS_PER_TOKEN = 16


class UnknownModel(LookupError):
    def __init__(self, name: str, known: Sequence[str]) -> None:
        self.name, self.known = name, sorted(known)
        super().__init__(f"no model {name!r}; served: {', '.join(self.known)}")


def load_backends(specs: Mapping[str, ModelSpec]) -> dict[str, Backend]:
    """Build every backend; embedded models share one encoder. Blocking: call off the event loop."""
    force_offline()
    encoders: dict[Path | None, object] = {}
    backends: dict[str, Backend] = {}
    for name, spec in specs.items():
        if spec.path is not None and not spec.path.exists():
            raise FileNotFoundError(f"model {name!r}: {spec.path} does not exist (weights are never downloaded; mount them there)")
        try:
            backends[name] = _load_one(spec, encoders)
        except (OSError, ValueError) as exc:
            raise ValueError(f"model {name!r} ({spec.kind} at {spec.path}): {exc}") from exc
    return backends


def _load_one(spec: ModelSpec, encoders: dict[Path | None, object]) -> Backend:
    if spec.kind == "reward" and spec.backend == "vllm":
        from rewardstack.services.model_server.backends.vllm_pooling import VllmRewardBackend

        return VllmRewardBackend(spec.path, max_length=spec.max_length)  # type: ignore[arg-type]
    if spec.kind == "reward":
        from rewardstack.services.model_server.backends.reward import RewardBackend

        return RewardBackend(spec.path, max_length=spec.max_length, packing=spec.batching.packing)  # type: ignore[arg-type]
    if spec.kind == "guard":
        from rewardstack.services.model_server.backends.guard import GuardBackend

        return GuardBackend(
            spec.path, max_length=spec.max_length, labels=spec.labels, response_prefix=spec.response_prefix,  # type: ignore[arg-type]
            packing=spec.batching.packing,
        )  # fmt: skip
    from rewardstack.services.model_server.backends.embedded import EmbeddedBackend
    from rewardstack.services.model_server.backends.tensors import pick_device
    from rewardstack.services.model_server.embedded.encoder import MiniLMEncoder
    from rewardstack.services.model_server.embedded.heads import Heads

    if spec.path not in encoders:
        encoders[spec.path] = MiniLMEncoder(spec.path, pick_device()[0])
    return EmbeddedBackend(spec.head, encoders[spec.path], Heads.load(), max_length=spec.max_length)  # type: ignore[arg-type]


def cap_characters(item: ModelItem, max_chars: int) -> ModelItem | ModelOutcome:
    """The item as its model can read it: prompt cut from the left to `max_chars`; a longer response is `too_long`."""
    if len(item.response) > max_chars:
        return ModelOutcome(
            status=OutcomeStatus.TOO_LONG,
            detail=f"the response has {len(item.response)} characters; the model reads at most {max_chars} "
                   f"({max_chars // CHARS_PER_TOKEN} tokens of at most {CHARS_PER_TOKEN} characters)",
        )
    if item.prompt is not None and len(item.prompt) > max_chars:
        return ModelItem(prompt=item.prompt[-max_chars:], response=item.response)
    return item


class ServedModels:
    """Models by name; `await score(name, items)` returns one outcome per item, in order."""

    def __init__(self, backends: Mapping[str, Backend], batchers: Mapping[str, DynamicBatcher]) -> None:
        self.backends, self.batchers = dict(backends), dict(batchers)
        self._tokenizing = threading.Lock()

    def max_chars(self, name: str) -> int:
        """Characters of prompt (kept from the right) or response that model `name` reads at most."""
        return self.backends[name].max_length * CHARS_PER_TOKEN

    @classmethod
    @asynccontextmanager
    async def open(
        cls, specs: Mapping[str, ModelSpec], observers: Callable[[str], PassObserver] | None = None
    ) -> AsyncIterator[ServedModels]:
        """Load, serve, then free. `observers(name)`, when given, is told about each of that model's passes."""
        backends = await asyncio.to_thread(load_backends, specs)
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-forward")
        try:
            async with AsyncExitStack() as stack:
                batchers = {
                    name: await stack.enter_async_context(
                        DynamicBatcher(backend, specs[name].batching, executor, observers(name) if observers else None))
                    for name, backend in backends.items()
                }
                yield cls(backends, batchers)
        finally:
            executor.shutdown(wait=True, cancel_futures=True)
            for backend in backends.values():
                backend.close()

    def names(self) -> list[str]:
        return list(self.backends)

    def depths(self) -> dict[str, int]:
        return {name: batcher.depth for name, batcher in self.batchers.items()}

    def info(self) -> list[ModelInfo]:
        return [
            ModelInfo(
                name=n, kind=b.kind, backend=b.backend, device=b.device, dtype=b.dtype, max_length=b.max_length, scale=b.scale,
                batch_layout=b.layout.name, batch_layout_detail=b.layout.detail,
            )  # fmt: skip
            for n, b in self.backends.items()
        ]

    def _prepare(self, backend: Backend, items: Sequence[ModelItem]) -> list[Prepared | ModelOutcome]:
        capped = [cap_characters(item, backend.max_length * CHARS_PER_TOKEN) for item in items]
        readable = [c for c in capped if isinstance(c, ModelItem)]
        with self._tokenizing:
            prepared = iter(backend.prepare(readable) if readable else [])
        return [next(prepared) if isinstance(c, ModelItem) else c for c in capped]

    async def score(self, name: str, items: Sequence[ModelItem]) -> list[ModelOutcome]:
        if name not in self.backends:
            raise UnknownModel(name, list(self.backends))
        prepared = await asyncio.to_thread(self._prepare, self.backends[name], items)
        ready = [p for p in prepared if isinstance(p, Prepared)]
        outcomes = iter(await self.batchers[name].submit(ready) if ready else [])
        return [next(outcomes) if isinstance(p, Prepared) else p for p in prepared]
