"""Rebuild the vendored equivalence suites (JSONL) from pinned copies of their repositories.

Reads the test files with `ast` (nothing of theirs is imported or run) and writes one JSON line per
case: `{suite, id, gold, pred, expected, config, category}`. `config` records the arguments of the
Math-Verify call the case was written for (extraction targets, float rounding, strict, set/relation
comparison); bench/math_suites.py decides from it which cases are configuration-independent.

    python bench/data/suites/build.py MATH_VERIFY_REPO NEMO_SKILLS_REPO HENDRYCKS_MATH_REPO

Each argument is a git directory (`git show COMMIT:path` is used, so a bare mirror works).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PINS = {
    "math_verify": ("5d148cfaaf99214c2e4ffb4bc497ab042c592a7a", "tests"),
    "nemo_skills": ("0b012df8a09cd4730d31b16e90a0d8f13d145fb8", "tests/test_math_equal.py"),
    "hendrycks": ("985bdc1696e88e8643f081a0ff4719da39f2ae2a", "modeling/math_equivalence_test.py"),
}
_DEFAULT_CALL = {"match_types": ["latex", "expr"], "precision": 6, "strict": True, "allow_set_relation_comp": False}


def _show(repo: str, commit: str, path: str) -> str:
    return subprocess.run(["git", "-C", repo, "show", f"{commit}:{path}"], check=True, capture_output=True, text=True).stdout


def _ls(repo: str, commit: str, folder: str) -> list[str]:
    out = subprocess.run(["git", "-C", repo, "ls-tree", "--name-only", f"{commit}:{folder}"], check=True, capture_output=True, text=True)
    return [f"{folder}/{name}" for name in out.stdout.split() if name.endswith(".py")]


def _value(node: ast.AST) -> object:
    """A literal, also `5 / 2` and f-strings over `math`: evaluated with nothing but `math` in scope."""
    import math

    return eval(compile(ast.Expression(node), "<case>", "eval"), {"__builtins__": {}, "math": math})  # noqa: S307


def _call_config(fn: ast.FunctionDef, params: dict[str, object]) -> dict[str, object] | None:
    """The Math-Verify configuration the test body asks for (None: not a gold/pred comparison)."""
    for node in ast.walk(fn):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "compare_strings":
            config = dict(_DEFAULT_CALL)
            for kw in node.keywords:
                config[kw.arg] = params[kw.value.id] if isinstance(kw.value, ast.Name) else _value(kw.value)
            return config
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "verify":
            return dict(_DEFAULT_CALL)  # verify(parse(gold), parse(pred)): parse's defaults
    return None


def math_verify_cases(repo: str) -> list[dict[str, object]]:
    commit, folder = PINS["math_verify"]
    cases: list[dict[str, object]] = []
    for path in _ls(repo, commit, folder):
        tree = ast.parse(_show(repo, commit, path))
        for fn in (n for n in tree.body if isinstance(n, ast.FunctionDef)):
            for deco in fn.decorator_list:
                if not (isinstance(deco, ast.Call) and getattr(deco.func, "attr", "") == "parametrize"):
                    continue
                names = [n.strip() for n in _value(deco.args[0]).split(",")]
                if "gold" not in names or "pred" not in names:
                    continue  # e.g. tests/test_string_extraction.py: parser options, not gold/prediction pairs
                for k, row in enumerate(_value(deco.args[1])):
                    params = dict(zip(names, row))
                    if "gold" not in params or "pred" not in params:
                        continue
                    config = _call_config(fn, params)
                    if config is None:
                        continue
                    expected = params.get("expected", params.get("result"))
                    cases.append({
                        "suite": "math_verify", "id": f"{path}::{fn.name}[{k}]", "gold": str(params["gold"]),
                        "pred": str(params["pred"]), "expected": bool(expected), "config": config,
                    })
    return cases


def nemo_cases(repo: str) -> list[dict[str, object]]:
    """NeMo-Skills checks every pair both ways: each becomes two cases (gold, pred) and (pred, gold)."""
    commit, path = PINS["nemo_skills"]
    tree = ast.parse(_show(repo, commit, path))
    cases: list[dict[str, object]] = []
    for fn in (n for n in tree.body if isinstance(n, ast.FunctionDef)):
        expected = fn.name == "test_correct_examples"
        for deco in fn.decorator_list:
            if isinstance(deco, ast.Call) and getattr(deco.func, "attr", "") == "parametrize":
                for k, (a, b) in enumerate(_value(deco.args[1])):
                    for direction, (gold, pred) in (("ab", (a, b)), ("ba", (b, a))):
                        cases.append({
                            "suite": "nemo_skills", "id": f"{path}::{fn.name}[{k}]-{direction}",
                            "gold": gold if gold is None else str(gold), "pred": pred if pred is None else str(pred),
                            "expected": expected, "config": {},
                        })
    return cases


def hendrycks_cases(repo: str) -> list[dict[str, object]]:
    """`is_equiv(test_in, test_out)` with assertTrue/assertFalse: test_in is the gold."""
    commit, path = PINS["hendrycks"]
    tree = ast.parse(_show(repo, commit, path))
    cases: list[dict[str, object]] = []
    for fn in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
        values: dict[str, str] = {}
        for stmt in fn.body:
            if isinstance(stmt, ast.Assign):
                values[stmt.targets[0].id] = _value(stmt.value)
            elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
                expected = stmt.value.func.attr == "assertTrue"
                cases.append({
                    "suite": "hendrycks", "id": f"{path}::{fn.name}", "gold": values["test_in"],
                    "pred": values["test_out"], "expected": expected, "config": {},
                })
    return cases


def main(argv: list[str]) -> None:
    mv, nemo, hendrycks = argv
    for name, cases in (("math_verify", math_verify_cases(mv)), ("nemo_skills", nemo_cases(nemo)), ("hendrycks", hendrycks_cases(hendrycks))):
        target = HERE / f"{name}.jsonl"
        old = {}
        if target.exists():  # keep the categories assigned by hand
            old = {row["id"]: row.get("category", "") for row in map(json.loads, target.read_text().splitlines())}
        with target.open("w") as out:
            for case in cases:
                case["category"] = old.get(case["id"], "")
                out.write(json.dumps(case, ensure_ascii=False) + "\n")
        print(f"{name}: {len(cases)} cases -> {target.relative_to(HERE.parents[2])}")


if __name__ == "__main__":
    main(sys.argv[1:])
