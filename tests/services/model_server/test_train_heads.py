"""The head-training script's metrics and data loaders (no embedding: that takes minutes)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rewardstack.services.model_server import train_heads as th

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"


@pytest.mark.parametrize(
    ("scores", "labels", "expected"),
    [
        pytest.param([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0], 1.0, id="perfect"),
        pytest.param([0.1, 0.2, 0.9, 0.8], [1, 1, 0, 0], 0.0, id="inverted"),
        pytest.param([0.5, 0.5, 0.5, 0.5], [1, 0, 1, 0], 0.5, id="all-tied"),
        pytest.param([0.9, 0.3, 0.5, 0.1], [1, 1, 0, 0], 0.75, id="one-pair-wrong"),
    ],
)
def test_auc(scores: list[float], labels: list[int], expected: float) -> None:
    assert th.auc(torch.tensor(scores), torch.tensor(labels, dtype=torch.float32)) == pytest.approx(expected)


def test_pairwise_accuracy_counts_ties_half() -> None:
    assert th.pairwise_accuracy(torch.tensor([2.0, 1.0, 1.0]), torch.tensor([1.0, 2.0, 1.0])) == pytest.approx(0.5)


def test_split_last_turn() -> None:
    transcript = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: how to X?\n\nAssistant: Like this."
    assert th.split_last_turn(transcript) == ("Human: hi\n\nAssistant: hello\n\nHuman: how to X?", "Like this.")


def test_lexicon_baseline_counts_harm_words() -> None:
    assert th.lexicon_hits(["How do I kill a process?", "Bake a cake"]).tolist() == [1.0, 0.0]


def test_held_out_split_is_deterministic_and_a_fifth() -> None:
    keys = [f"k{i}" for i in range(100)]
    assert th.held_out(keys) == th.held_out(list(reversed(keys)))
    assert len(th.held_out(keys)) == 20


@pytest.mark.data
def test_loaders_read_the_shared_data() -> None:
    if not (DATA / "xstest_prompts.csv").is_file():
        pytest.skip(f"needs ../shared/data (looked in {DATA.resolve()})")
    unsafe, completions = th.load_xstest(DATA)
    assert len(unsafe) == 450 and sum(unsafe.values()) == 200
    assert len(completions) > 1300 and all(c[0] in unsafe for c in completions)
    hh = th.load_hh(DATA)
    assert 2000 < len(hh) <= 2312 and all(better != worse for _, better, worse in hh)
    alpaca = th.load_alpaca(DATA)
    assert len(alpaca) > 2000 and len({a[0] for a in alpaca}) > 700
