"""`rewardstack select` and `rewardstack.select`: R1's rejection sampling through a real gateway.

The simple scorers make every expected row computable by hand: `number` reads the completion as a
float (`none` is unscorable, `raise` an error, `sleep:S` slow, worth 0), `chars` counts characters.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

import rewardstack
from rewardstack.cli import select_main
from rewardstack.client import RewardClient
from rewardstack.keep_rule import KeepRule
from rewardstack.selection import parse_pass_rate
from tests.servers import free_port, running_server
from tests.trainer.conftest import SHARED_DATA, gateway_app, items_scored

ROOT = Path(__file__).resolve().parents[2]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def run_select(source: Path, url: str, *flags: str, scorers: str = "number") -> int:
    return select_main([str(source), "--url", url, "--scorers", scorers, "--quiet", *flags])


def kept_completions(out: Path) -> list[str]:
    return [row["messages"][-1]["content"] for row in read_jsonl(out)]


def groups(values: dict[str, list[str]]) -> list[dict]:
    return [{"group_id": g, "prompt": f"prompt {g}", "completion": c} for g, cs in values.items() for c in cs]


# -- the rule ------------------------------------------------------------------------------------


def test_keeps_exactly_the_rows_the_expression_allows(tmp_path: Path, gateway_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    completions = ["0", "1", "2", "2.5", "3", "10", "100"]
    source = write_jsonl(tmp_path / "in.jsonl", [{"prompt": f"q{i}", "completion": c, "answer": "x"} for i, c in enumerate(completions)])
    assert run_select(source, gateway_url, "--keep-if", "number >= 2 and chars <= 2", scorers="number,chars:0") == 0
    out = tmp_path / "in.sft.jsonl"
    assert kept_completions(out) == ["2", "3", "10"]
    assert "kept 3 of 7 completions from 3 of 7 prompts" in capsys.readouterr().out
    report = json.loads((tmp_path / "in.sft.report.json").read_text())
    assert (report["kept"], report["dropped"]) == (3, 4)
    # 0 and 1 fail on number, 100 on chars, 2.5 on chars: each reason named by scorer
    assert report["drop_reasons"] == {"keep_if: number": 2, "keep_if: chars": 2}


def test_sft_rows_are_trl_conversational_with_the_source_kept(tmp_path: Path, gateway_url: str) -> None:
    from trl.data_utils import is_conversational

    source = write_jsonl(tmp_path / "in.jsonl", [
        {"id": "a", "question": "Q1", "answer": "4", "completion": "4"},
        {"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q2"}], "completions": ["5", "6"]},
        {"messages": [{"role": "user", "content": "Q3"}, {"role": "assistant", "content": "7"}], "task": "t"},
        {"prompt": "Q4", "completion": [{"role": "assistant", "content": "8"}]},
    ])
    assert run_select(source, gateway_url) == 0
    rows = read_jsonl(tmp_path / "in.sft.jsonl")
    assert [row["messages"] for row in rows] == [
        [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "4"}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q2"}, {"role": "assistant", "content": "5"}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q2"}, {"role": "assistant", "content": "6"}],
        [{"role": "user", "content": "Q3"}, {"role": "assistant", "content": "7"}],
        [{"role": "user", "content": "Q4"}, {"role": "assistant", "content": "8"}],
    ]
    assert rows[0]["source"] == {"id": "a", "question": "Q1", "answer": "4"}
    assert rows[2]["source"]["completion_index"] == 1 and rows[3]["source"] == {"task": "t"}
    assert rows[0]["rewardstack"] == {"reward": 4.0, "scores": {"number": 4.0}}
    for row in rows:
        assert is_conversational(row)
        assert not {"prompt", "completion", "text"} & set(row)  # TRL would read those as another format


# -- not ok is never kept silently ---------------------------------------------------------------


def test_items_whose_scoring_failed_are_never_kept_silently(tmp_path: Path, gateway_url: str) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [{"prompt": f"q{i}", "completion": c} for i, c in enumerate(["1", "none", "raise", "2"])])
    assert run_select(source, gateway_url) == 0  # no rule: keep every ok item
    assert kept_completions(tmp_path / "in.sft.jsonl") == ["1", "2"]
    report = json.loads((tmp_path / "in.sft.report.json").read_text())
    assert report["drop_reasons"] == {"not_ok: number unscorable": 1, "not_ok: number error": 1}
    assert report["statuses"] == {"ok": 2, "unscorable": 1, "error": 1}
    # a rule that does not mention statuses cannot let them through, even when asked to look
    assert run_select(source, gateway_url, "--keep-not-ok", "--keep-if", "number >= 0 or number < 0") == 0
    assert kept_completions(tmp_path / "in.sft.jsonl") == ["1", "2"]
    # asked for explicitly: only what the rule names
    assert run_select(source, gateway_url, "--keep-not-ok", "--keep-if", 'number.status == "unscorable"') == 0
    assert kept_completions(tmp_path / "in.sft.jsonl") == ["none"]


def test_an_outage_keeps_nothing_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "q", "completion": "1"}])
    assert run_select(source, f"http://127.0.0.1:{free_port()}") == 1
    assert "did not answer" in capsys.readouterr().err
    assert not (tmp_path / "in.sft.jsonl").exists()


# -- per prompt ----------------------------------------------------------------------------------


def test_pass_rate_band_is_exact(tmp_path: Path, gateway_url: str) -> None:
    # prompt pK: K of 4 completions pass `number >= 1`
    rows = groups({f"p{k}": ["1"] * k + ["0"] * (4 - k) for k in range(5)})
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    assert run_select(source, gateway_url, "--keep-if", "number >= 1", "--pass-rate", "0.25..0.75") == 0
    kept_groups = [row["source"]["group_id"] for row in read_jsonl(tmp_path / "in.sft.jsonl")]
    assert kept_groups == ["p1", "p2", "p2", "p3", "p3", "p3"]  # both ends of the band included
    prompts = read_jsonl(tmp_path / "in.sft.prompts.jsonl")
    assert [(p["group"], p["pass_rate"], p["in_band"], p["kept"]) for p in prompts] == [
        ("p0", 0.0, False, 0), ("p1", 0.25, True, 1), ("p2", 0.5, True, 2), ("p3", 0.75, True, 3), ("p4", 1.0, False, 0),
    ]
    report = json.loads((tmp_path / "in.sft.report.json").read_text())
    assert report["drop_reasons"]["pass_rate: prompt outside 0.25..0.75"] == 4
    assert report["prompts_in_band"] == 3


def test_per_prompt_cap_keeps_the_best_then_the_shortest(tmp_path: Path, gateway_url: str) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", groups({"a": ["1", "3.00", "3", "2", "5", "3.0"], "b": ["7"]}))
    assert run_select(source, gateway_url, "--per-prompt", "2") == 0
    assert kept_completions(tmp_path / "in.sft.jsonl") == ["3", "5", "7"]  # input order; 5 best, then the shortest 3
    assert run_select(source, gateway_url, "--per-prompt", "3") == 0
    assert kept_completions(tmp_path / "in.sft.jsonl") == ["3", "5", "3.0", "7"]
    report = json.loads((tmp_path / "in.sft.report.json").read_text())
    assert report["drop_reasons"] == {"per_prompt: beyond the best 3": 3}


def test_seeded_tie_break_is_reproducible(tmp_path: Path, gateway_url: str) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", groups({"a": [f"{1:.{k}f}" for k in range(8)]}))  # eight ways to write 1
    picks = {}
    for seed in range(4):
        assert run_select(source, gateway_url, "--per-prompt", "2", "--tie-break", "seed", "--seed", str(seed)) == 0
        picks[seed] = kept_completions(tmp_path / "in.sft.jsonl")
        assert run_select(source, gateway_url, "--per-prompt", "2", "--tie-break", "seed", "--seed", str(seed)) == 0
        assert kept_completions(tmp_path / "in.sft.jsonl") == picks[seed]
    assert len({tuple(p) for p in picks.values()}) > 1  # the seed matters
    assert all(len(p) == 2 for p in picks.values())


def test_a_prompt_split_across_the_file_is_refused(tmp_path: Path, gateway_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", groups({"a": ["1"], "b": ["2"]}) + groups({"a": ["3"]}))
    assert run_select(source, gateway_url, "--per-prompt", "1") == 2
    err = capsys.readouterr().err
    assert "line 3: the prompt 'a' came earlier" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "in.sft.jsonl").exists()


# -- resuming ------------------------------------------------------------------------------------


def _slow_rows() -> list[dict]:
    # `sleep:0.02` with trailing zeros: each takes 20 ms and is worth 0; `chars` tells them apart
    return groups({f"p{g}": [f"sleep:0.02{'0' * j}" for j in range(4)] for g in range(50)})


def test_resume_after_a_kill_gives_the_uninterrupted_output(tmp_path: Path, gateway_url: str) -> None:
    flags = ["--scorers", "number,chars:0.01", "--keep-if", "chars <= 12", "--per-prompt", "2", "--batch-size", "4", "--quiet"]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    whole.mkdir(), killed.mkdir()
    for folder in (whole, killed):
        write_jsonl(folder / "in.jsonl", _slow_rows())
    assert select_main([str(whole / "in.jsonl"), "--url", gateway_url, *flags]) == 0

    command = [sys.executable, "-m", "rewardstack.services.cli", "select", str(killed / "in.jsonl"), "--url", gateway_url, *flags]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    journal = killed / "in.sft.scored.jsonl"
    deadline = time.monotonic() + 120
    while not (journal.exists() and len(journal.read_bytes().splitlines()) >= 24):
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, "no progress"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    process.stderr.close()  # type: ignore[union-attr]
    lines_at_kill = len(journal.read_bytes().splitlines())
    assert lines_at_kill < 200, "the run finished before it could be killed"
    assert not (killed / "in.sft.jsonl").exists()  # no partial selection where a finished one is expected

    assert select_main([str(killed / "in.jsonl"), "--url", gateway_url, *flags]) == 0
    for name in ("in.sft.jsonl", "in.sft.prompts.jsonl", "in.sft.report.json"):
        assert (killed / name).read_bytes() == (whole / name).read_bytes(), name
    assert len(read_jsonl(killed / "in.sft.jsonl")) == 100


def test_another_rule_reuses_the_scores(tmp_path: Path, gateway: tuple[FastAPI, str]) -> None:
    app, url = gateway
    source = write_jsonl(tmp_path / "in.jsonl", groups({"a": ["1", "2", "3"]}))
    assert run_select(source, url) == 0
    before = items_scored(app)
    assert run_select(source, url, "--keep-if", "number >= 2", "--per-prompt", "1") == 0
    assert items_scored(app) == before  # nothing rescored
    assert kept_completions(tmp_path / "in.sft.jsonl") == ["3"]
    assert run_select(source, url, "--keep-if", "number >= 2", scorers="number:2") == 2  # other weights: refused
    assert run_select(source, url, "--keep-if", "number >= 2", "--rescore", scorers="number:2") == 0
    assert items_scored(app) == before + 3


# -- configuration mistakes: one line, exit 2 ----------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        pytest.param(["--keep-if", "__import__('os').system('true')"], "is not allowed", id="no-calls"),
        pytest.param(["--keep-if", "number.value > 1"], "only SCORER.status is allowed", id="no-other-attributes"),
        pytest.param(["--keep-if", "mth == 1"], "'mth' is not a scorer of this run; names: number", id="unknown-name"),
        pytest.param(["--keep-if", "number >"], "is not an expression", id="syntax"),
        pytest.param(["--pass-rate", "0.9..0.1"], "pass-rate: '0.9..0.1' must be LOW..HIGH", id="band-reversed"),
        pytest.param(["--per-prompt", "0"], "per-prompt: must be at least 1", id="cap-zero"),
        pytest.param(["--param", "numbr={}"], "--param 'numbr={}': expected SCORER=JSON", id="param-unknown-scorer"),
    ],
)
def test_configuration_mistakes_are_one_line(
    tmp_path: Path, gateway_url: str, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "q", "completion": "1"}])
    assert run_select(source, gateway_url, *flags) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize(
    ("row", "message"),
    [
        pytest.param({"completion": "1"}, "in.jsonl:1: needs a prompt", id="no-prompt"),
        pytest.param({"prompt": "q"}, "needs `completion`, `completions` (a list) or `messages`", id="no-completion"),
        pytest.param({"messages": [{"role": "user", "content": "q"}]}, "must end with the assistant's turn", id="messages-without-answer"),
        pytest.param({"prompt": "q", "completions": []}, "`completions` is empty", id="empty-list"),
        pytest.param({"prompt": "q", "completion": 3}, "a completion must be text or chat messages", id="number-completion"),
    ],
)
def test_bad_rows_name_the_line(tmp_path: Path, gateway_url: str, capsys: pytest.CaptureFixture[str], row: dict, message: str) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [row])
    assert run_select(source, gateway_url) == 2
    assert message in capsys.readouterr().err


def test_keep_rule_semantics() -> None:
    from rewardstack.services.contract import ComponentResult, ItemResult, Status

    result = ItemResult(id="x", reward=None, status=Status.TIMEOUT, components={
        "math": ComponentResult(value=1.0, status=Status.OK), "language": ComponentResult(value=None, status=Status.TIMEOUT),
    })
    rule = KeepRule("math == 1 and (language >= 0.95 or language.status in ('timeout', 'error'))", ["math", "language"])
    assert rule(result) == (True, [])
    assert KeepRule("math == 1 and language >= 0.95", ["math", "language"])(result) == (False, ["language"])
    assert KeepRule("not math == 1", ["math"])(result) == (False, ["math"])
    assert KeepRule("reward > 0", ["math"])(result) == (False, ["reward"])  # None compared: false, never an exception
    assert parse_pass_rate("0..1") == (0.0, 1.0)


# -- the library call ----------------------------------------------------------------------------


def test_library_select_over_an_iterable(gateway_url: str) -> None:
    import rewardstack.selection  # noqa: F401  (the module must not shadow the function)

    rows = ({"group_id": "g", "prompt": "q", "completion": str(v)} for v in [3, 1, 2])  # a generator: streamed
    selection = rewardstack.select(rows, "number", keep_if="number >= 2", per_prompt=1, url=gateway_url)
    assert [row["messages"][-1]["content"] for row in selection.rows] == ["3"]
    assert (selection.report.kept, selection.report.dropped) == (1, 2)
    assert [(p.passed, p.judged, p.pass_rate) for p in selection.prompts] == [(2, 3, 2 / 3)]
    with RewardClient(gateway_url) as client:
        again = rewardstack.select([{"prompt": "q", "completions": ["1", "none"]}], {"number": 1.0}, client=client)
    assert [row["messages"][-1]["content"] for row in again.rows] == ["1"]


# -- real scorers --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def r1_gateway() -> Iterator[str]:
    with running_server(gateway_app(enabled_scorers="math,format,readability")) as url:
        yield url


THINK_EN = "We add three and four. Three plus four is seven, and we can check it by counting up from three."
KNOWN = [  # (completion, keep?)
    (f"<think>{THINK_EN}</think>\n<answer>7</answer>", True),
    (f"<think>{THINK_EN}</think>\n<answer>8</answer>", False),  # wrong
    ("<think>We add three and four. 三加四等于七，我们从三开始数四下就可以验证这个结果。</think>\n<answer>7</answer>", False),  # mixed
    (f"<think>{THINK_EN}\n```python\nprint(3 + 4)\n```</think>\n<answer>7</answer>", False),  # code in a maths task
    (f"<think>{THINK_EN}", False),  # no summary, no answer
    (f"<think>{THINK_EN}\n" + "Let me check again.\n" * 6 + "</think>\n<answer>7</answer>", False),  # looping
    (f"<think>{THINK_EN}\n\nThat settles it.</think>\n<answer>7</answer>", True),
]


def test_r1_filters_through_the_real_scorers(tmp_path: Path, r1_gateway: str) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [{"question": "What is 3+4?", "answer": "7", "completions": [c for c, _ in KNOWN]}])
    assert run_select(source, r1_gateway, "--keep-if", "math == 1 and readability == 1 and format == 1", scorers="math,format:0,readability:0") == 0
    assert kept_completions(tmp_path / "in.sft.jsonl") == [c for c, keep in KNOWN if keep]
    reasons = json.loads((tmp_path / "in.sft.report.json").read_text())["drop_reasons"]
    for reason in ("keep_if: math: incorrect", "keep_if: readability: mixed_language", "keep_if: readability: code_block",
                   "keep_if: readability: summary", "keep_if: readability: repeated_lines"):
        assert reason in reasons, reasons


@pytest.mark.data
def test_gsm8k_rejection_sampling_keeps_the_correct_samples(tmp_path: Path, r1_gateway: str) -> None:
    """Gold GSM8K solutions as 'samples', half with a wrong final answer: exactly the right half is kept."""
    path = SHARED_DATA / "gsm8k_test.jsonl"
    if not path.exists():
        pytest.skip(f"needs {path} (the shared test data)")
    problems = [json.loads(line) for line in path.read_text().splitlines()[:40]]
    rows = []
    for p in problems:
        reasoning, gold = p["answer"].split("####")
        right = f"<think>{reasoning.strip()}</think>\n<answer>{gold.strip()}</answer>"
        wrong = f"<think>{reasoning.strip()}</think>\n<answer>{int(gold.strip().replace(',', '')) + 1}</answer>"
        rows.append({"question": p["question"], "answer": p["answer"], "completions": [wrong, right]})
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    assert run_select(source, r1_gateway, "--keep-if", "math == 1 and readability == 1", "--pass-rate", "0.5..0.5",
                      scorers="math,readability") == 0
    kept = read_jsonl(tmp_path / "in.sft.jsonl")
    assert len(kept) >= 38  # readability may reject a rare gold solution; math never keeps a wrong one
    assert all(row["source"]["completion_index"] == 1 for row in kept)


def test_embedded_stack_without_a_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REWARDSTACK_SCORER_WORKERS", "1")
    rows = [{"prompt": "q", "completions": ["<think>x</think>", "<think>a b c d e</think>\nDone."]}]
    selection = rewardstack.select(rows, "readability", keep_if="readability == 1")
    assert [row["messages"][-1]["content"] for row in selection.rows] == ["<think>a b c d e</think>\nDone."]
    assert selection.report.reasons == {"keep_if: readability: summary": 1}


def test_progress_bar_counts_input_lines(tmp_path: Path, gateway_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "q", "completions": ["1", "2"]}, {"prompt": "r", "completion": "3"}])
    assert select_main([str(source), "--url", gateway_url, "--scorers", "number"]) == 0
    assert "2/2" in capsys.readouterr().err  # two input lines, three completions
