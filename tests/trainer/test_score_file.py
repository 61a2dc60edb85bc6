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


def score(source: Path, url: str, *extra: str, scorers: str = "number") -> int:
    return score_main([str(source), "--url", url, "--scorers", scorers, "--quiet", *extra])


def test_score_writes_one_result_per_item_in_order(tmp_path: Path, gateway_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [{"id": f"q{i}", "completion": str(i), "answer": "1"} for i in range(7)])
    out = tmp_path / "out.jsonl"
    assert score(source, gateway_url, "--out", str(out), "--batch-size", "3", scorers="number:2,chars:0") == 0
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == [f"q{i}" for i in range(7)]
    assert [r["reward"] for r in rows] == [2.0 * i for i in range(7)]
    assert all(len(r["fingerprint"]) == 32 for r in rows)
    printed = capsys.readouterr().out
    assert "scored 7 items (7 scored now, 0 already done): 7 ok; mean reward 6.0000 over 7 ok items" in printed
    assert "number mean 3.0000 (7 ok); chars mean 1.0000 (7 ok)" in printed


def test_duplicate_ids_in_the_file_are_kept_in_the_output(tmp_path: Path, gateway_url: str) -> None:
    """Items go out under their line numbers (a request with repeated ids may be refused); the output keeps the file's ids."""
    source = write_jsonl(tmp_path / "in.jsonl", [{"id": "same", "completion": "1"}, {"id": "same", "completion": "2"}])
    assert score(source, gateway_url) == 0
    assert [(r["id"], r["reward"]) for r in read_jsonl(tmp_path / "in.scored.jsonl")] == [("same", 1.0), ("same", 2.0)]


def test_score_resumes_after_an_interruption(tmp_path: Path, gateway_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [{"completion": str(i)} for i in range(6)])
    out = tmp_path / "in.scored.jsonl"
    assert score(source, gateway_url) == 0
    complete = out.read_text().splitlines(keepends=True)
    out.write_text("".join(complete[:2]) + complete[2][:10])  # killed while writing the third line
    capsys.readouterr()
    assert score(source, gateway_url) == 0
    resumed = read_jsonl(out)
    assert [(r["id"], r["reward"], r["fingerprint"]) for r in resumed] == [
        (r["id"], r["reward"], r["fingerprint"]) for r in map(json.loads, complete)
    ]
    # the summary covers every item of the output, not only the ones scored now
    assert "scored 6 items (4 scored now, 2 already done): 6 ok; mean reward 2.5000 over 6 ok items" in capsys.readouterr().out


def test_score_summary_counts_every_status(tmp_path: Path, gateway_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [{"completion": c} for c in ["1", "3", "none", "raise"]])
    assert score(source, gateway_url) == 0
    printed = capsys.readouterr().out
    assert "4 items (4 scored now, 0 already done): 1 error, 2 ok, 1 unscorable; mean reward 2.0000 over 2 ok items" in printed
    assert "number mean 2.0000 (1 error, 2 ok, 1 unscorable)" in printed


@pytest.mark.parametrize(
    ("first", "second", "scorers"),
    [
        pytest.param("number", "number,chars", None, id="another-scorer"),
        pytest.param("number:1", "number:2", None, id="another-weight"),
        pytest.param("number", "number", [{"completion": "1"}, {"completion": "20"}], id="another-input-line"),
    ],
)
def test_score_refuses_to_resume_what_changed(
    tmp_path: Path, gateway_url: str, capsys: pytest.CaptureFixture[str], first: str, second: str, scorers: list[dict] | None
) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [{"completion": "1"}, {"completion": "2"}])
    out = tmp_path / "in.scored.jsonl"
    assert score(source, gateway_url, scorers=first) == 0
    before = out.read_bytes()
    if scorers is not None:
        write_jsonl(source, scorers)
    capsys.readouterr()
    assert score(source, gateway_url, scorers=second) == 2
    err = capsys.readouterr().err
    assert "in.scored.jsonl:" in err and "--rescore" in err and len(err.strip().splitlines()) == 1
    assert out.read_bytes() == before  # old results are left alone, not mixed with new ones
    assert score(source, gateway_url, "--rescore", scorers=second) == 0
    expected = [1.0, 20.0] if scorers is not None else ([2.0, 3.0] if "chars" in second else [2.0, 4.0])
    assert [r["reward"] for r in read_jsonl(out)] == expected


def test_score_param_flag_reaches_the_scorer(tmp_path: Path, gateway_url: str) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [{"completion": "3"}])
    assert score(source, gateway_url, "--param", 'number={"scale": 10}') == 0
    assert read_jsonl(tmp_path / "in.scored.jsonl")[0]["reward"] == 30.0
    # another param is another fingerprint: no silent reuse
    assert score(source, gateway_url, "--param", 'number={"scale": 2}') == 2


def test_score_refuses_output_of_another_input(tmp_path: Path, gateway_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = write_jsonl(tmp_path / "out.jsonl", [{"id": "other", "reward": 1.0, "status": "ok", "components": {}}])
    source = write_jsonl(tmp_path / "in.jsonl", [{"completion": "1"}])
    assert score(source, gateway_url, "--out", str(out)) == 2
    assert "not a result line with a fingerprint; pass --rescore" in capsys.readouterr().err


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
    assert score(source, gateway_url) == 2
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


def test_the_tiny_recipe_reads_its_shipped_prompts() -> None:
    recipe = load_recipe(RECIPES / "tiny_cpu.yaml")
    dataset = build_dataset(recipe.data, recipe.base_dir)
    assert len(dataset) == 64
    assert dataset[0]["prompt"].startswith("What is ") and dataset[0]["answer"].isdigit()


@pytest.mark.data
def test_a_recipe_builds_r1_zero_prompts_from_local_gsm8k() -> None:
    if not (SHARED_DATA / "gsm8k_train.jsonl").exists():
        pytest.skip(f"needs {SHARED_DATA}/gsm8k_train.jsonl (the shared test data)")
    recipe = load_recipe(RECIPES / "r1_zero_gsm8k.yaml",
                         ["data.hub_id=null", f"data.path={SHARED_DATA / 'gsm8k_train.jsonl'}", "data.template=r1_zero", "data.limit=64"])
    dataset = build_dataset(recipe.data, recipe.base_dir)
    assert len(dataset) == 64
    row = dataset[0]
    assert row["prompt"].startswith("A conversation between User and Assistant.") and row["prompt"].endswith("Assistant:")
    assert "<think>" in row["prompt"] and row["answer"].split("####")[-1].strip().isdigit()
