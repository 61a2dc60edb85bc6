"""The tiny byte-level model, and `rewardstack train` refusing what it cannot do, before any model loads."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rewardstack.cli import train_main
from rewardstack.tiny import TinyModelSpec, build_byte_tokenizer, build_tiny_model

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


@pytest.mark.parametrize("text", ["plain ascii", "héllo wörld", "数学 <think>\n</think>", "\x00\x7f", "🙂"])
def test_the_byte_tokenizer_maps_bytes_to_ids_and_round_trips(text: str) -> None:
    tokenizer = build_byte_tokenizer()
    ids = tokenizer(text)["input_ids"]
    assert ids == list(text.encode("utf-8"))
    assert tokenizer.decode(ids) == text
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id, len(tokenizer)) == (256, 257, 258)


def test_the_tiny_model_is_seeded_and_generates() -> None:
    (a, tokenizer), (b, _) = build_tiny_model(TinyModelSpec(seed=3)), build_tiny_model(TinyModelSpec(seed=3))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    inputs = tokenizer(["Say #1:"], return_tensors="pt")
    out = a.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert out.shape[1] <= inputs["input_ids"].shape[1] + 5


def test_train_refuses_vllm_where_it_is_not_installed(gateway_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("trl")
    try:
        import vllm  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("vllm is installed here")
    code = train_main([
        "--config", str(RECIPES / "tiny_cpu.yaml"), "--set", f"reward.url={gateway_url}",
        "--set", "reward.scorers=number", "--set", "generation.backend=vllm",
    ])
    assert code == 2
    assert "vllm is not installed" in capsys.readouterr().err


def test_train_names_a_bad_recipe_field(capsys: pytest.CaptureFixture[str]) -> None:
    assert train_main(["--config", str(RECIPES / "tiny_cpu.yaml"), "--set", "reward.deadline_s=-1"]) == 2
    assert "reward.deadline_s" in capsys.readouterr().err


def test_train_names_an_unknown_scorer(gateway_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = train_main(["--config", str(RECIPES / "tiny_cpu.yaml"), "--set", f"reward.url={gateway_url}", "--set", "reward.scorers=nosuch:1"])
    assert code == 2
    assert "does not serve nosuch" in capsys.readouterr().err
