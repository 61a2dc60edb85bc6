"""Sequences/s of the model server's dynamic batcher vs arrival-order fixed batches of 32.

    .venv/bin/python bench/model_batching.py [--n 256] [--requests 16] [--max-length 2048] [--hidden 256] [--repeats 1]

Both sides score the same (prompt, response) pairs with the same reward model: a randomly
initialised Llama-architecture sequence classifier built from a config (random weights cost the
same as trained ones) with a byte-level BPE tokenizer learnt from the inputs, so lengths are
realistic. Inputs are AlpacaEval instructions and outputs from ../shared/data (a real length
mix), or, without that folder, lengths drawn from a log-normal.

- baseline: OpenRLHF `serve_rm` style: the items in arrival order, forward passes of 32.
- dynamic: the items arrive as `--requests` concurrent requests through `DynamicBatcher`, which
  combines them, sorts by length and packs passes by padded-token budget.

Prints both rates and their ratio, the padded tokens each side computed, and checks both give
the same scores. The padded-token ratio does not depend on the model; the time ratio is larger
for small hidden sizes, where attention (quadratic in the padded length) is a bigger share of the
work than in a multi-billion-parameter reward model.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rewardstack.services.model_server.config import BatchingConfig, force_offline  # noqa: E402
from rewardstack.services.model_server.schema import ModelItem  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
FIXED_BATCH = 32


def load_items(n: int, seed: int) -> list[ModelItem]:
    rng = random.Random(seed)
    path = DATA / "alpaca_eval_annotations_gemma-7b-it.json"
    if path.is_file():
        rows = json.loads(path.read_text())
        pairs = [(r["instruction"], r[rng.choice(["output_1", "output_2"])]) for r in rows]
        rng.shuffle(pairs)
        return [ModelItem(prompt=p, response=r) for p, r in pairs[:n]]
    print(f"(no {path}; using synthetic log-normal lengths)")
    return [ModelItem(prompt="q" * int(rng.lognormvariate(4, 0.8)), response="a" * int(rng.lognormvariate(6, 1.0))) for _ in range(n)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=256, help="sequences")
    parser.add_argument("--requests", type=int, default=16, help="concurrent requests the sequences arrive in")
    parser.add_argument("--max-length", type=int, default=2048, help="model window, tokens")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--batch-tokens", type=int, default=BatchingConfig().batch_tokens, help="dynamic: padded tokens per pass")
    parser.add_argument("--repeats", type=int, default=1, help="rounds of each, alternating; the best of each counts")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    force_offline()

    import torch

    from rewardstack.services.model_server.backends.reward import RewardBackend
    from rewardstack.services.model_server.batcher import DynamicBatcher
    from rewardstack.services.model_server.tiny import build

    torch.manual_seed(args.seed)
    items = load_items(args.n, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = [t for i in items for t in (i.prompt or "", i.response)]
        folder = build(Path(tmp), kind="reward", hidden=args.hidden, layers=args.layers, corpus=corpus)
        backend = RewardBackend(folder, max_length=args.max_length)
    prepared = [p for p in backend.prepare(items) if hasattr(p, "payload")]
    lengths = [p.length for p in prepared]
    print(f"{len(prepared)} sequences (of {len(items)}; others exceed the window), tokens min/median/max "
          f"{min(lengths)}/{sorted(lengths)[len(lengths) // 2]}/{max(lengths)}; torch threads {torch.get_num_threads()}")
    backend.forward(prepared[:4])  # warm-up

    def fixed_run() -> tuple[list, float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        outcomes = []
        for i in range(0, len(prepared), FIXED_BATCH):
            outcomes.extend(backend.forward(prepared[i : i + FIXED_BATCH]))
        return outcomes, time.perf_counter() - t0, time.process_time() - c0

    config = BatchingConfig(batch_tokens=args.batch_tokens, flush_tokens=sum(lengths), max_wait_ms=50)
    per_request = -(-len(prepared) // args.requests)

    async def dynamic_run() -> tuple[list, float, float, tuple[int, int]]:
        with ThreadPoolExecutor(1) as executor:
            async with DynamicBatcher(backend, config, executor) as batcher:
                t0, c0 = time.perf_counter(), time.process_time()
                chunks = [prepared[i : i + per_request] for i in range(0, len(prepared), per_request)]
                results = await asyncio.gather(*(batcher.submit(c) for c in chunks))
                stats = batcher.stats
                elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
                return [o for r in results for o in r], elapsed, cpu, (stats.forward_passes, stats.padded_tokens)

    # alternate the two and keep each one's best round: other load on a shared machine hits both
    # CPU seconds too: on a shared machine other load stretches wall time, not the work done
    fixed_s = dynamic_s = fixed_cpu = dynamic_cpu = float("inf")
    for _ in range(args.repeats):
        fixed, seconds, cpu = fixed_run()
        fixed_s, fixed_cpu = min(fixed_s, seconds), min(fixed_cpu, cpu)
        dynamic, seconds, cpu, (passes, dynamic_padded) = asyncio.run(dynamic_run())
        dynamic_s, dynamic_cpu = min(dynamic_s, seconds), min(dynamic_cpu, cpu)
    worst = max(abs(a.score - b.score) for a, b in zip(fixed, dynamic, strict=True))  # type: ignore[operator]
    fixed_rate, dynamic_rate = len(prepared) / fixed_s, len(prepared) / dynamic_s
    print(f"arrival-order batches of {FIXED_BATCH}: {fixed_rate:8.1f} seq/s ({-(-len(prepared) // FIXED_BATCH)} passes, {fixed_s:.2f} s, {fixed_cpu:.1f} CPU s)")
    print(f"dynamic batching:            {dynamic_rate:8.1f} seq/s ({passes} passes, {dynamic_s:.2f} s, {dynamic_cpu:.1f} CPU s)")
    fixed_padded = sum(max(lengths[i : i + FIXED_BATCH]) * len(lengths[i : i + FIXED_BATCH]) for i in range(0, len(lengths), FIXED_BATCH))
    print(f"padded tokens computed: fixed {fixed_padded}, dynamic {dynamic_padded} (real {sum(lengths)})")
    print(f"ratio dynamic / fixed-32: {dynamic_rate / fixed_rate:.2f}x sequences/s; {fixed_cpu / dynamic_cpu:.2f}x per CPU second; "
          f"{fixed_padded / dynamic_padded:.2f}x fewer padded tokens   (largest score difference {worst:.1e})")
    return 0 if worst < 1e-3 else 1


if __name__ == "__main__":
    raise SystemExit(main())
