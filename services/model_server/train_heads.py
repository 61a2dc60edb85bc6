"""Train the embedded default's heads on ../shared/data and print held-out figures against baselines.

    python -m rewardstack.services.model_server.train_heads [--data DIR] [--out FILE] [--cache FILE]

Data (see ../shared/data/README.md): AlpacaEval annotation pairs (helpfulness), hh-rlhf harmless
pairs (harmlessness), XSTest prompts (prompt safety) and XSTest v2 completions (refusal, and the
pointwise anchor of the harmless head). Held out: 20% of AlpacaEval instructions, of hh-rlhf
pairs and of XSTest prompts (with all their completions), chosen by a fixed seed.

Figures: pairwise accuracy for helpfulness and harmlessness, ROC AUC for prompt safety and
refusal; baselines are "longer wins" and a profanity/harm lexicon. The heads are linear and the
data small: the result is demo-grade, a working default rather than a judge to trust.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from rewardstack.services.model_server.config import force_offline
from rewardstack.services.model_server.embedded.heads import HEADS_FILE, Heads, pair_features

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = PROJECT_ROOT / ".." / "shared" / "data"
ALPACA_FILES = [f"alpaca_eval_annotations_{m}.json" for m in ("gemma-7b-it", "claude-instant-1.2", "OpenHermes-2.5-Mistral-7B")]
XSTEST_COMPLETIONS = [f"xstest_v2_completions_{m}.csv" for m in ("gpt4", "llama2new", "mistralinstruct")]
HELD_OUT = 0.2
SEED = 0
L2 = 1e-3
LEXICON = re.compile(
    r"\b(kill|murder|bomb|weapon|gun|shoot|stab|poison|drug|cocaine|meth|heroin|steal|rob|hack|fraud|"
    r"racist|nigg\w*|fuck\w*|shit\w*|bitch\w*|cunt|dick|ass(hole)?|damn|bastard|whore|slut|rape|abuse|"
    r"torture|suicide|terror\w*|explosive|launder|counterfeit|scam|hate|violence|violent|die|dead|blood)\b",
    re.IGNORECASE,
)


@dataclass
class Pairs:
    """Pairwise data: features of the preferred and the other response, and their raw texts."""

    better: torch.Tensor
    worse: torch.Tensor
    better_text: list[str]
    worse_text: list[str]


def split_last_turn(transcript: str) -> tuple[str, str]:
    """hh-rlhf transcript -> (conversation up to the last assistant turn, last assistant turn)."""
    cut = transcript.rfind("\n\nAssistant:")
    return transcript[:cut].strip(), transcript[cut + len("\n\nAssistant:") :].strip()


def held_out(keys: Sequence[str]) -> set[str]:
    unique = sorted(set(keys))
    random.Random(SEED).shuffle(unique)
    return set(unique[: int(len(unique) * HELD_OUT)])


class Featurizer:
    """Embeds (prompt, response) pairs with the embedded encoder; caches by text on disk if asked."""

    def __init__(self, cache: Path | None) -> None:
        from rewardstack.services.model_server.embedded.encoder import MiniLMEncoder

        self.encoder = MiniLMEncoder()
        self.cache_path = cache
        self.cache: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor, float]] = {}
        if cache is not None and cache.is_file():
            self.cache = torch.load(cache, weights_only=True)

    def __call__(self, prompts: Sequence[str], responses: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(pair features, prompt embeddings)."""
        todo = sorted({(p, r) for p, r in zip(prompts, responses, strict=True) if (p, r) not in self.cache})
        for start in range(0, len(todo), 256):
            chunk = todo[start : start + 256]
            pairs = self.encoder.windows([p for p, _ in chunk], [r for _, r in chunk])
            e_p, e_r, counts = self.encoder.embed_pairs(pairs)
            for i, key in enumerate(chunk):
                self.cache[key] = (e_p[i], e_r[i], float(counts[i]))
            print(f"  embedded {min(start + 256, len(todo))}/{len(todo)}", flush=True)
        if todo and self.cache_path is not None:
            torch.save(self.cache, self.cache_path)
        rows = [self.cache[(p, r)] for p, r in zip(prompts, responses, strict=True)]
        e_p = torch.stack([r[0] for r in rows])
        e_r = torch.stack([r[1] for r in rows])
        counts = torch.tensor([r[2] for r in rows])
        return pair_features(e_p, e_r, counts), e_p


def fit_linear(loss_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Minimise loss(w, b) + L2 |w|^2 with L-BFGS from zero; convex for our losses."""
    weight = torch.zeros(dim, requires_grad=True)
    bias = torch.zeros((), requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=500, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = loss_of(weight, bias) + L2 * weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return weight.detach(), bias.detach()


def pairwise_accuracy(better: torch.Tensor, worse: torch.Tensor) -> float:
    """Share of pairs ranked right; ties count half."""
    return float(((better > worse).float() + 0.5 * (better == worse).float()).mean())


def auc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) formula, ties counted half."""
    pos, neg = scores[labels > 0.5], scores[labels <= 0.5]
    greater = (pos.unsqueeze(1) > neg.unsqueeze(0)).float().sum()
    ties = (pos.unsqueeze(1) == neg.unsqueeze(0)).float().sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


def lexicon_hits(texts: Sequence[str]) -> torch.Tensor:
    return torch.tensor([float(len(LEXICON.findall(t))) for t in texts])


def lengths(texts: Sequence[str]) -> torch.Tensor:
    return torch.tensor([float(len(t)) for t in texts])


def load_alpaca(data: Path) -> list[tuple[str, str, str]]:
    """(instruction, preferred output, other output), decisive preferences only."""
    rows = []
    for name in ALPACA_FILES:
        for row in json.loads((data / name).read_text()):
            pref = row.get("preference")
            if pref is None or abs(float(pref) - 1.5) < 0.2:
                continue
            first_wins = float(pref) < 1.5
            better, worse = (row["output_1"], row["output_2"]) if first_wins else (row["output_2"], row["output_1"])
            rows.append((row["instruction"], better, worse))
    return rows


def load_hh(data: Path) -> list[tuple[str, str, str]]:
    """(conversation, more harmless last turn, less harmless last turn); pairs with identical turns dropped."""
    rows = []
    with gzip.open(data / "hh_rlhf_harmless_base_test.jsonl.gz", "rt") as f:
        for line in f:
            row = json.loads(line)
            prompt, chosen = split_last_turn(row["chosen"])
            _, rejected = split_last_turn(row["rejected"])
            if chosen != rejected:
                rows.append((prompt, chosen, rejected))
    return rows


def load_xstest(data: Path) -> tuple[dict[str, bool], list[tuple[str, str, bool]]]:
    """({prompt: unsafe?}, [(prompt, completion, refused?)])."""
    with (data / "xstest_prompts.csv").open() as f:
        unsafe = {r["prompt"]: r["label"] == "unsafe" for r in csv.DictReader(f)}
    completions = []
    for name in XSTEST_COMPLETIONS:
        with (data / name).open() as f:
            for r in csv.DictReader(f):
                if r["prompt"] in unsafe and r["completion"].strip():
                    completions.append((r["prompt"], r["completion"], not r["final_label"].startswith("1_")))
    return unsafe, completions


def bt_loss(better: torch.Tensor, worse: torch.Tensor) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    return lambda w, b: -torch.nn.functional.logsigmoid((better - worse) @ w).mean()


def bce_loss(x: torch.Tensor, y: torch.Tensor) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    return lambda w, b: torch.nn.functional.binary_cross_entropy_with_logits(x @ w + b, y)


def train(data: Path, cache: Path | None) -> tuple[Heads, list[str]]:
    featurize = Featurizer(cache)
    report: list[str] = []

    # helpfulness: AlpacaEval pairs, held out by instruction
    alpaca = load_alpaca(data)
    test_keys = held_out([r[0] for r in alpaca])
    feats_b, _ = featurize([r[0] for r in alpaca], [r[1] for r in alpaca])
    feats_w, _ = featurize([r[0] for r in alpaca], [r[2] for r in alpaca])
    test = torch.tensor([r[0] in test_keys for r in alpaca])
    w_help, b_help = fit_linear(bt_loss(feats_b[~test], feats_w[~test]), feats_b.shape[1])
    acc = pairwise_accuracy(feats_b[test] @ w_help, feats_w[test] @ w_help)
    longer = pairwise_accuracy(lengths([r[1] for r, t in zip(alpaca, test) if t]), lengths([r[2] for r, t in zip(alpaca, test) if t]))
    report.append(f"helpfulness   AlpacaEval pairs      n_test={int(test.sum()):4d}  pairwise acc {acc:.3f}  | longer wins {longer:.3f}")

    # XSTest: prompt safety, refusal, and the pointwise anchor of the harmless head
    unsafe, completions = load_xstest(data)
    x_test_prompts = held_out(list(unsafe))
    prompts = sorted(unsafe)
    _, e_prompts = featurize(prompts, [""] * len(prompts))
    y_unsafe = torch.tensor([float(unsafe[p]) for p in prompts])
    p_test = torch.tensor([p in x_test_prompts for p in prompts])
    w_pu, b_pu = fit_linear(bce_loss(e_prompts[~p_test], y_unsafe[~p_test]), e_prompts.shape[1])
    auc_pu = auc(e_prompts[p_test] @ w_pu + b_pu, y_unsafe[p_test])
    lex_pu = auc(lexicon_hits([p for p, t in zip(prompts, p_test) if t]), y_unsafe[p_test])
    report.append(f"prompt safety XSTest prompts        n_test={int(p_test.sum()):4d}  AUC {auc_pu:.3f}            | lexicon {lex_pu:.3f}")

    x_feats, _ = featurize([c[0] for c in completions], [c[1] for c in completions])
    y_refusal = torch.tensor([float(c[2]) for c in completions])
    c_test = torch.tensor([c[0] in x_test_prompts for c in completions])
    w_ref, b_ref = fit_linear(bce_loss(x_feats[~c_test], y_refusal[~c_test]), x_feats.shape[1])
    auc_ref = auc(x_feats[c_test] @ w_ref + b_ref, y_refusal[c_test])
    test_texts = [c[1] for c, t in zip(completions, c_test) if t]
    shorter = auc(-lengths(test_texts), y_refusal[c_test])
    report.append(f"refusal       XSTest completions    n_test={int(c_test.sum()):4d}  AUC {auc_ref:.3f}            | shorter is refusal {shorter:.3f}")

    # harmlessness: hh-rlhf pairs (pairwise) + XSTest completions (pointwise: complying with an unsafe prompt is unsafe)
    hh = load_hh(data)
    hh_test_keys = held_out([f"{i}" for i in range(len(hh))])
    hh_b, _ = featurize([r[0] for r in hh], [r[1] for r in hh])
    hh_w, _ = featurize([r[0] for r in hh], [r[2] for r in hh])
    h_test = torch.tensor([f"{i}" in hh_test_keys for i in range(len(hh))])
    y_safe = torch.tensor([0.0 if unsafe[c[0]] and not c[2] else 1.0 for c in completions])
    pairwise, pointwise = bt_loss(hh_b[~h_test], hh_w[~h_test]), bce_loss(x_feats[~c_test], y_safe[~c_test])
    w_harm, b_harm = fit_linear(lambda w, b: pairwise(w, b) + pointwise(w, b), hh_b.shape[1])
    acc_h = pairwise_accuracy(hh_b[h_test] @ w_harm, hh_w[h_test] @ w_harm)
    test_b = [r[1] for r, t in zip(hh, h_test) if t]
    test_w = [r[2] for r, t in zip(hh, h_test) if t]
    lex_h = pairwise_accuracy(-lexicon_hits(test_b), -lexicon_hits(test_w))
    longer_h = pairwise_accuracy(lengths(test_b), lengths(test_w))
    report.append(
        f"harmlessness  hh-rlhf pairs         n_test={int(h_test.sum()):4d}  pairwise acc {acc_h:.3f}  "
        f"| lexicon (fewer hits wins) {lex_h:.3f}, longer wins {longer_h:.3f}"
    )
    auc_safe = auc(x_feats[c_test] @ w_harm + b_harm, y_safe[c_test])
    lex_safe = auc(-lexicon_hits(test_texts), y_safe[c_test])
    report.append(f"safety score  XSTest completions    n_test={int(c_test.sum()):4d}  AUC {auc_safe:.3f}            | lexicon {lex_safe:.3f}")

    heads = Heads({
        "helpfulness.weight": w_help, "helpfulness.bias": b_help,
        "harmless.weight": w_harm, "harmless.bias": b_harm,
        "refusal.weight": w_ref, "refusal.bias": b_ref,
        "prompt_unsafe.weight": w_pu, "prompt_unsafe.bias": b_pu,
    })  # fmt: skip
    return heads, report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rewardstack.services.model_server.train_heads", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with the data sets (default ../shared/data)")
    parser.add_argument("--out", type=Path, default=HEADS_FILE, help="where to write the heads (default: the committed file)")
    parser.add_argument("--cache", type=Path, help="embedding cache file, to re-run quickly")
    args = parser.parse_args(argv)
    if not (args.data / "xstest_prompts.csv").is_file():
        parser.error(f"no training data in {args.data}; pass --data")
    force_offline()
    torch.manual_seed(SEED)
    heads, report = train(args.data, args.cache)
    heads.save(args.out)
    print(f"held-out figures (heads written to {args.out}):")
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
