"""GPU: sequences/s of a 1.5B-class reward model in bf16: padded vs packed passes (Hugging Face backend), and vLLM when installed.

    .venv/bin/python bench/model_gpu_throughput.py [--n 1024] [--max-length 4096] [--requests 32] [--peak-tflops 989]
    .venv/bin/python bench/model_gpu_throughput.py --shape small --n 64 --max-length 1024   # CPU dry run of the script

Builds a random-weight Qwen2-architecture sequence classifier in Qwen2-1.5B's shape (hidden 1536,
28 layers, 12 heads, 2 KV heads, MLP 8960; random weights cost the same as trained ones) with a
BPE tokenizer learnt from the inputs, then scores the same AlpacaEval (instruction, output) pairs
through `ServedModels` (dynamic batcher, `--requests` concurrent requests) three ways, one after
the other on the same GPU:

- `hf` padded: the dynamic batcher padding each pass to its longest sequence (`packing: off`);
- `hf` packed: the same weights with padding-free passes (`packing: auto`);
- `vllm` pooling, only where vLLM is installed (skipped otherwise, and said so).

For each it prints seq/s, real tokens/s and the share of the chip's bf16 dense peak that the
useful work reaches (model FLOPs of the real tokens only: 2 x matmul parameters per token plus
causal attention; padding counts as waste), then packed / padded and the largest score
difference against padded (all bf16; packed must agree within the start-up probe's tolerance,
else the exit status is 1). Peaks are known for H100/H200 (989 TFLOPS) and A100 (312);
`--peak-tflops` sets any other.

Not run in this project's CI (no GPU there).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.model_batching import load_items  # noqa: E402
from rewardstack.services.model_server.config import BatchingConfig, ModelSpec, force_offline  # noqa: E402
from rewardstack.services.model_server.schema import ModelItem, ModelOutcome  # noqa: E402

SHAPES = {
    "qwen2-1.5b": {"hidden": 1536, "layers": 28, "heads": 12, "kv_heads": 2, "intermediate": 8960},
    "small": {"hidden": 256, "layers": 2, "heads": 4, "kv_heads": 2, "intermediate": 1024},
}
BF16_DENSE_PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0}


def useful_flops(shape: dict[str, int], lengths: Sequence[int]) -> float:
    """Forward FLOPs of the real tokens: 2 per matmul parameter per token, plus causal attention
    (QK^T and PV over each sequence's own earlier tokens). Embedding lookups and norms are ignored."""
    d, layers, heads, kv, f = shape["hidden"], shape["layers"], shape["heads"], shape["kv_heads"], shape["intermediate"]
    head_dim = d // heads
    matmul_params = layers * (2 * d * d + 2 * d * kv * head_dim + 3 * d * f)
    attention = sum(layers * 4 * heads * head_dim * n * (n + 1) / 2 for n in lengths)
    return 2 * matmul_params * sum(lengths) + attention


def peak_tflops(device_name: str, given: float | None) -> float | None:
    if given is not None:
        return given
    return next((v for k, v in BF16_DENSE_PEAK_TFLOPS.items() if k in device_name), None)


async def throughput(spec: ModelSpec, items: list[ModelItem], requests: int) -> tuple[float, list[ModelOutcome], str]:
    """Seconds to score `items` sent as `requests` concurrent requests, the outcomes, and the layout."""
    from rewardstack.services.model_server.served import ServedModels

    async with ServedModels.open({"rm": spec}) as models:
        await models.score("rm", items[:8])  # warm-up: kernels, allocator
        per_request = -(-len(items) // requests)
        chunks = [items[i : i + per_request] for i in range(0, len(items), per_request)]
        started = time.perf_counter()
        results = await asyncio.gather(*(models.score("rm", c) for c in chunks))
        elapsed = time.perf_counter() - started
        layout = models.info()[0].batch_layout_detail
    return elapsed, [o for r in results for o in r], layout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1024)
    parser.add_argument("--max-length", type=int, default=4096)
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--batch-tokens", type=int, default=65_536, help="tokens computed per pass")
    parser.add_argument("--shape", choices=SHAPES, default="qwen2-1.5b")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the chip's bf16 dense peak, when not in the table")
    args = parser.parse_args(argv)
    force_offline()

    import torch

    from rewardstack.services.model_server.backends.base import TemplateEncoder
    from rewardstack.services.model_server.backends.packing import agrees
    from rewardstack.services.model_server.backends.reward import load_tokenizer
    from rewardstack.services.model_server.tiny import build

    on_gpu = torch.cuda.is_available()
    if not on_gpu and args.shape != "small":
        print("needs a CUDA GPU (or --shape small for a CPU dry run of the script); nothing measured", file=sys.stderr)
        return 2
    device_name = torch.cuda.get_device_name() if on_gpu else "CPU"
    peak = peak_tflops(device_name, args.peak_tflops) if on_gpu else None
    shape = SHAPES[args.shape]
    items = load_items(args.n, seed=0)
    batching = BatchingConfig(batch_tokens=args.batch_tokens, flush_tokens=4 * args.batch_tokens, max_wait_ms=5)
    ways = [("hf", "off"), ("hf", "auto")] + ([("vllm", "auto")] if importlib.util.find_spec("vllm") and on_gpu else [])
    if len(ways) == 2:
        print("vLLM not installed (or no GPU): comparing the Hugging Face backend's padded and packed passes only")
    with tempfile.TemporaryDirectory() as tmp:
        corpus = [t for i in items for t in (i.prompt or "", i.response)]
        folder = build(Path(tmp), kind="reward", arch="qwen2", corpus=corpus, vocab_size=32_000, bf16=True, **shape)
        encoder = TemplateEncoder(load_tokenizer(folder), add_generation_prompt=False)
        lengths = [p.length for p in encoder.prepare(items, args.max_length) if hasattr(p, "payload")]
        print(f"{device_name}: {args.shape} shape, bf16 weights, {len(lengths)} of {len(items)} items fit {args.max_length} tokens "
              f"(median {sorted(lengths)[len(lengths) // 2]}), {sum(lengths)} real tokens; peak "
              f"{f'{peak:.0f} TFLOPS bf16 dense' if peak else 'unknown (pass --peak-tflops)'}", flush=True)
        flops = useful_flops(shape, lengths)
        seconds, scores = {}, {}
        for backend, packing in ways:
            name = backend if backend == "vllm" else f"hf {'packed' if packing == 'auto' else 'padded'}"
            spec = ModelSpec(
                kind="reward", path=folder, backend=backend, max_length=args.max_length,
                batching=batching.model_copy(update={"packing": packing}),
            )  # fmt: skip
            seconds[name], outcomes, layout = asyncio.run(throughput(spec, items, args.requests))
            scores[name] = [o.score for o in outcomes if o.score is not None]
            share = f"{flops / seconds[name] / (peak * 1e12):6.1%} of bf16 peak" if peak else "peak unknown"
            print(f"{name:10s} {len(items) / seconds[name]:8.1f} seq/s {sum(lengths) / seconds[name]:10.0f} real tok/s  "
                  f"{share}   [{layout}]", flush=True)
    print(f"ratio hf packed / hf padded: {seconds['hf padded'] / seconds['hf packed']:.2f}x sequences/s")
    if "vllm" in seconds:
        print(f"ratio vllm / hf packed: {seconds['hf packed'] / seconds['vllm']:.2f}x sequences/s")
    ok = True
    for name, got in scores.items():
        if name == "hf padded":
            continue
        worst = max(abs(a - b) for a, b in zip(got, scores["hf padded"], strict=True))
        print(f"largest score difference {name} vs hf padded: {worst:.2e} over {len(got)} items")
        ok = ok and (name == "vllm" or agrees(got, scores["hf padded"], torch.bfloat16))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
