"""Items whose correct rewards are known, for load and fault tests of a running stack.

Each kind of batch names its scorers and a set of cases; every case knows the value each scorer
must give it. A batch holds one kind (a `math` reference and a `code` reference cannot share an
item); kinds take turns. Item ids carry the kind and the case, so an answer is checked against
the case it was made from, not against whatever came back.

    math    scorers math + format: "a + b" worked in the R1 template; half the answers are wrong
    code    scorer code: a Python function that passes its asserts, or one that is off by one
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from typing import Any

from rewardstack.services.contract import ItemResult, Status

TOLERANCE = 1e-9


@dataclass(frozen=True)
class Case:
    completion: str
    reference: Any
    expected: dict[str, float]  # scorer -> the value it must give
    prompt: str | None = None


@dataclass(frozen=True)
class Kind:
    name: str
    scorers: dict[str, dict[str, Any]]
    cases: tuple[Case, ...]


def math_cases(n: int = 64, seed: int = 0) -> tuple[Case, ...]:
    rng = random.Random(seed)
    cases = []
    for i in range(n):
        a, b = rng.randint(100, 99_999), rng.randint(100, 99_999)
        right = i % 2 == 0
        answer = a + b if right else a + b + rng.randint(1, 9)
        thinking = (f"We need {a} + {b}. Units first, then carry: adding the thousands and the rest gives "
                    f"{a + b}. Checking by subtraction: {a + b} - {b} = {a}.")
        completion = f"<think>{thinking}</think>\n<answer>The answer is $\\boxed{{{answer}}}$</answer>"
        cases.append(Case(completion, str(a + b), {"math": 1.0 if right else 0.0, "format": 1.0},
                          prompt=f"What is {a} + {b}?"))
    return tuple(cases)


def code_cases(n: int = 16, seed: int = 0) -> tuple[Case, ...]:
    """`f(x) = k * x + c`: the right program passes every assert, the off-by-one one fails them all."""
    rng = random.Random(seed)
    cases = []
    for i in range(n):
        k, c = rng.randint(2, 9), rng.randint(1, 50)
        right = i % 2 == 0
        body = f"return {k} * x + {c}" if right else f"return {k} * x + {c + 1}"
        completion = f"Here is the function.\n\n```python\ndef f(x):\n    {body}\n```\n"
        asserts = [f"assert f({x}) == {k * x + c}" for x in (0, 1, 7, 100)]
        reference = {"mode": "assert", "tests": asserts, "language": "python"}
        cases.append(Case(completion, reference, {"code": 1.0 if right else 0.0}, prompt="Write f."))
    return tuple(cases)


KINDS = {
    "math": lambda: Kind("math", {"math": {}, "format": {}}, math_cases()),
    "code": lambda: Kind("code", {"code": {"params": {"reward": "binary"}}}, code_cases()),
}
SCORER_KIND = {"math": "math", "format": "math", "code": "code"}


@dataclass
class Workload:
    kinds: list[Kind]
    batch_items: int
    _turn: itertools.cycle = field(init=False, repr=False)  # type: ignore[type-arg]

    def __post_init__(self) -> None:
        self._turn = itertools.cycle(range(len(self.kinds)))

    @classmethod
    def build(cls, scorers: list[str], batch_items: int) -> Workload:
        unknown = [s for s in scorers if s not in SCORER_KIND]
        if unknown:
            raise SystemExit(f"no load cases for scorer(s) {unknown}; available: {sorted(SCORER_KIND)}")
        names = dict.fromkeys(SCORER_KIND[s] for s in scorers)
        return cls([KINDS[name]() for name in names], batch_items)

    @property
    def scorer_names(self) -> list[str]:
        return [name for kind in self.kinds for name in kind.scorers]

    def batch(self, prefix: str) -> tuple[list[dict[str, Any]], list[str], dict[str, dict[str, Any]]]:
        """The next batch: items, their ids, and the scorers to ask for."""
        k = next(self._turn)
        kind = self.kinds[k]
        items, ids = [], []
        for j in range(self.batch_items):
            c = j % len(kind.cases)
            case = kind.cases[c]
            item_id = f"{prefix}/{k}/{c}/{j}"
            items.append({"id": item_id, "prompt": case.prompt, "completion": case.completion, "reference": case.reference})
            ids.append(item_id)
        return items, ids, kind.scorers

    def expected(self, item_id: str) -> dict[str, float]:
        _, k, c, _ = item_id.rsplit("/", 3)
        return self.kinds[int(k)].cases[int(c)].expected

    def is_correct(self, item: ItemResult) -> bool:
        """Every component `ok` with the value the case says."""
        for scorer, value in self.expected(item.id).items():
            component = item.components.get(scorer)
            if component is None or component.status != Status.OK or component.value is None:
                return False
            if abs(component.value - value) > TOLERANCE:
                return False
        return True
