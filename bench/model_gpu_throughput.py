"""GPU only: sequences/s of a 1.5B-class reward model in bf16, Hugging Face backend vs vLLM pooling.

    .venv/bin/python bench/model_gpu_throughput.py [--n 1024] [--max-length 4096] [--requests 32]

Builds a random-weight Llama-architecture sequence classifier in Qwen2-1.5B's shape (hidden 1536,
28 layers, 12 heads, 2 KV heads, MLP 8960; random weights cost the same as trained ones) with a
BPE tokenizer learnt from the inputs, then scores the same AlpacaEval (instruction, output) pairs
through `ServedModels` (dynamic batcher, concurrent requests) with `backend: hf` and then with
`backend: vllm`, one after the other on the same GPU. Prints both rates, their ratio and the
largest score difference (both bf16, so differences of about 1e-2 are expected).

Not run in this project's CI (no GPU there); needs `pip install 'rewardstack[vllm]'`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.model_batching import load_items  # noqa: E402
from rewardstack.services.model_server.config import BatchingConfig, ModelSpec, force_offline  # noqa: E402
from rewardstack.services.model_server.schema import ModelItem, ModelOutcome  # noqa: E402

QWEN2_1_5B = {"hidden": 1536, "layers": 28, "heads": 12, "kv_heads": 2, "intermediate": 8960}


async def throughput(spec: ModelSpec, items: list[ModelItem], requests: int) -> tuple[float, list[ModelOutcome]]:
    from rewardstack.services.model_server.served import ServedModels

    async with ServedModels.open({"rm": spec}) as models:
        await models.score("rm", items[:8])  # warm-up: kernels, allocator
        per_request = -(-len(items) // requests)
        started = time.perf_counter()
        chunks = [items[i : i + per_request] for i in range(0, len(items), per_request)]
        results = await asyncio.gather(*(models.score("rm", c) for c in chunks))
        elapsed = time.perf_counter() - started
    return len(items) / elapsed, [o for r in results for o in r]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1024)
    parser.add_argument("--max-length", type=int, default=4096)
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--batch-tokens", type=int, default=65_536)
    args = parser.parse_args(argv)
    force_offline()

    import torch

    if not torch.cuda.is_available():
        print("needs a CUDA GPU; nothing measured", file=sys.stderr)
        return 2
    from rewardstack.services.model_server.tiny import build

    items = load_items(args.n, seed=0)
    batching = BatchingConfig(batch_tokens=args.batch_tokens, flush_tokens=4 * args.batch_tokens, max_wait_ms=5)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = [t for i in items for t in (i.prompt or "", i.response)]
        folder = build(Path(tmp), kind="reward", corpus=corpus, vocab_size=32_000, bf16=True, **QWEN2_1_5B)
        rates, scores = {}, {}
        for backend in ("hf", "vllm"):
            spec = ModelSpec(kind="reward", path=folder, backend=backend, max_length=args.max_length, batching=batching)
            rates[backend], outcomes = asyncio.run(throughput(spec, items, args.requests))
            scores[backend] = [o.score for o in outcomes]
            print(f"{backend:5s} bf16: {rates[backend]:8.1f} seq/s on {torch.cuda.get_device_name()}", flush=True)
    pairs = [(a, b) for a, b in zip(scores["hf"], scores["vllm"], strict=True) if a is not None and b is not None]
    worst = max(abs(a - b) for a, b in pairs)
    print(f"ratio vllm / hf: {rates['vllm'] / rates['hf']:.2f}x   (largest score difference {worst:.2e} over {len(pairs)} items)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
