"""`rewardstack score`: a JSONL file through a real gateway, resumable; and verl's hooks."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import free_port
from tests.trainer.conftest import SHARED_DATA
from rewardstack import ItemNotScored
from rewardstack.cli import score_main
from rewardstack.grpo import build_dataset, load_recipe
from rewardstack.client import normalize_scorers
from rewardstack.verl import compute_score, compute_score_batch

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_score_writes_one_result_per_item_in_order(tmp_path: Path, gateway_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [{"id": f"q{i}", "completion": str(i), "answer": "1"} for i in range(7)])
    out = tmp_path / "out.jsonl"
    code = score_main([str(source), "--url", gateway_url, "--scorers", "number:2,chars:0", "--out", str(out), "--batch-size", "3", "--quiet"])
    assert code == 0
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == [f"q{i}" for i in range(7)]
    assert [r["reward"] for r in rows] == [2.0 * i for i in range(7)]
    assert "scored 7 items (7 ok); 0 already done" in capsys.readouterr().out


def test_score_resumes_after_an_interruption(tmp_path: Path, gateway_url: str) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [{"completion": str(i)} for i in range(6)])
    out = tmp_path / "in.scored.jsonl"
    assert score_main([str(source), "--url", gateway_url, "--scorers", "number", "--quiet"]) == 0
    complete = out.read_text().splitlines(keepends=True)
    out.write_text("".join(complete[:2]) + complete[2][:10])  # killed while writing the third line
    assert score_main([str(source), "--url", gateway_url, "--scorers", "number", "--quiet"]) == 0
    assert [r["reward"] for r in read_jsonl(out)] == [float(i) for i in range(6)]


def test_score_refuses_output_of_another_input(tmp_path: Path, gateway_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = write_jsonl(tmp_path / "out.jsonl", [{"id": "other", "reward": 1.0, "status": "ok", "components": {}}])
    source = write_jsonl(tmp_path / "in.jsonl", [{"completion": "1"}])
    assert score_main([str(source), "--url", gateway_url, "--scorers", "number", "--out", str(out), "--quiet"]) == 2
    assert "holds results for other items" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param('{"completion": "1"}\nnot json\n', "in.jsonl:2: not JSON", id="bad-json"),
        pytest.param('{"answer": "1"}\n', "in.jsonl:1: needs a string field `completion`", id="no-completion"),
        pytest.param("", "no items", id="empty"),
    ],
)
def test_score_names_the_bad_input_line(tmp_path: Path, gateway_url: str, capsys: pytest.CaptureFixture[str], content: str, message: str) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(content)
    assert score_main([str(source), "--url", gateway_url, "--scorers", "number", "--quiet"]) == 2
    assert message in capsys.readouterr().err


def test_score_with_an_unreachable_url_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [{"completion": "1"}])
    url = f"http://127.0.0.1:{free_port()}"
    assert score_main([str(source), "--url", url, "--scorers", "number", "--quiet"]) == 1
    assert f"reward service at {url} did not answer" in capsys.readouterr().err


def test_the_rewardstack_command_dispatches_score(tmp_path: Path, gateway_url: str) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [{"completion": "4"}])
    done = subprocess.run(
        [sys.executable, "-m", "rewardstack.services.cli", "score", str(source), "--url", gateway_url, "--scorers", "number", "--quiet"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert read_jsonl(tmp_path / "in.scored.jsonl")[0]["reward"] == 4.0


def test_verl_compute_score_and_batch(gateway_url: str) -> None:
    kwargs = {"url": gateway_url, "scorers": "number:1,chars:0"}
    assert compute_score("gsm8k", "12", "12", {"index": 3}, **kwargs) == {"score": 12.0, "number": 12.0, "chars": 2.0}
    batch = compute_score_batch(["a", "a"], ["1", "none"], ["x", "y"], None, **kwargs, on_unscored=0.0)
    assert batch[0]["score"] == 1.0 and batch[1]["score"] == 0.0 and math.isnan(batch[1]["number"])
    with pytest.raises(ItemNotScored, match="unscorable"):  # verl cannot mask: by default a run stops
        compute_score("a", "none", "x", None, **kwargs)
    with pytest.raises(ItemNotScored, match="error"):  # an outage never becomes the fallback
        compute_score("a", "raise", "x", None, **kwargs, on_unscored=0.0)


def test_verl_reads_the_environment(gateway_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REWARDSTACK_URL", gateway_url)
    monkeypatch.setenv("REWARDSTACK_SCORERS", "number")
    assert compute_score("a", "3", None)["score"] == 3.0


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("math", {"math": 1.0}), ("math:1, format:0.2", {"math": 1.0, "format": 0.2}), (["a", "b"], {"a": 1.0, "b": 1.0}), ({"a": 0.5}, {"a": 0.5})],
)
def test_parse_scorers(spec: object, expected: dict[str, float]) -> None:
    assert {name: s.weight for name, s in normalize_scorers(spec).items()} == expected


@pytest.mark.parametrize("spec", ["", "math:x"])
def test_parse_scorers_refuses_nonsense(spec: str) -> None:
    with pytest.raises(ValueError):
        normalize_scorers(spec)


@pytest.mark.parametrize("name", ["r1_zero_gsm8k.yaml", "tiny_cpu.yaml"])
def test_recipes_validate(name: str) -> None:
    recipe = load_recipe(RECIPES / name)
    assert recipe.reward.scorers


def test_recipe_errors_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="data: give exactly one of `path`"):
        load_recipe(RECIPES / "tiny_cpu.yaml", ["data.hub_id=openai/gsm8k"])
    with pytest.raises(ValueError, match="training_steps"):
        load_recipe(RECIPES / "tiny_cpu.yaml", ["training_steps=3"])


@pytest.mark.data
def test_the_tiny_recipe_builds_r1_zero_prompts_from_gsm8k() -> None:
    if not (SHARED_DATA / "gsm8k_train.jsonl").exists():
        pytest.skip(f"needs {SHARED_DATA}/gsm8k_train.jsonl (the shared test data)")
    recipe = load_recipe(RECIPES / "tiny_cpu.yaml")
    dataset = build_dataset(recipe.data, recipe.base_dir)
    assert len(dataset) == 64
    row = dataset[0]
    assert row["prompt"].startswith("A conversation between User and Assistant.") and row["prompt"].endswith("Assistant:")
    assert "<think>" in row["prompt"] and row["answer"].split("####")[-1].strip().isdigit()
