"""The `judge` scorer: a generative LLM, served behind an OpenAI-compatible API, grades each item.

Each item is one chat-completion request (at most `max_concurrency` at a time, identical ones
shared and cached), so a batch costs as many requests as it has distinct questions, and a
resent batch none. The reply is read strictly (`verdicts.py`); how the server is reached,
retried and failed over is `client.py`'s job; the prompt is a replaceable file (`templates.py`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from rewardstack.services.scorers.math.extract import gold_text
from rewardstack.services.scorers.types import BatchScorer, Params, Sample, Scored, ScoringContext
from rewardstack.services.settings import Settings

from .answers import judgeable_answer
from .cache import VerdictCache, cache_key
from .client import ChatClient, JudgeTimeout, JudgeUnavailable
from .templates import PromptTemplate, load_templates
from .verdicts import RubricVerdict, Unparseable, Verdict, VerifyVerdict

__all__ = ["JudgeParams", "JudgeScorer", "Question", "open_judge_scorer"]


class JudgeParams(Params):
    """Which question to ask the judge, and what of the item it may see."""

    mode: Literal["verify", "rubric"] = Field(
        default="verify",
        description="verify: is the completion's final answer equivalent to `reference` (1/0)? rubric: grade the "
        "completion on a scale, with `reference` and `metadata.rubric` as guidance when given.",
    )
    template: str | None = Field(
        default=None, max_length=64, validate_default=True,
        description="Prompt template name (a file in REWARDSTACK_JUDGE_TEMPLATES_DIR, or a default); default: the mode's name.",
    )  # fmt: skip
    scale_min: int = Field(default=1, ge=0, le=100, description="rubric: the worst score the judge may give.")
    scale_max: int = Field(default=10, ge=1, le=100, description="rubric: the best score; scores map linearly to [0, 1].")
    answer_tag_only: bool = Field(default=False, description="verify: judge only an answer inside <answer>...</answer>.")
    last_number_fallback: bool = Field(default=False, description="verify: with no marked answer, judge the last number.")
    multiple_answers: Literal["all_must_match", "last"] = Field(
        default="all_must_match", description="verify: several different final answers score 0, or judge the last."
    )
    max_answer_chars: int = Field(default=1000, ge=1, le=20_000, description="verify: a longer answer is unscorable.")
    max_response_chars: int = Field(default=20_000, ge=1, le=200_000, description="rubric: a longer completion is unscorable.")

    @model_validator(mode="after")
    def _scale_ordered(self) -> JudgeParams:
        if self.scale_min >= self.scale_max:
            raise ValueError(f"scale_min ({self.scale_min}) must be below scale_max ({self.scale_max})")
        return self


def _params_for(templates: dict[str, PromptTemplate]) -> type[JudgeParams]:
    """`JudgeParams` that also refuse, as a 422, a template this gateway does not have."""

    class ServedJudgeParams(JudgeParams):
        @field_validator("template")
        @classmethod
        def _known(cls, value: str | None, info: ValidationInfo) -> str | None:
            mode = info.data.get("mode", "verify")
            name = value or mode
            if name not in templates:
                raise ValueError(f"no judge template {name!r}; known: {', '.join(sorted(templates))}")
            if templates[name].mode() != mode:
                raise ValueError(f"template {name!r} is a {templates[name].mode()} template, not {mode}")
            return value

    ServedJudgeParams.__name__ = JudgeParams.__name__
    return ServedJudgeParams


@dataclass(frozen=True)
class Question:
    """One verify question: the task (trusted data), the gold, and the completion's answer."""

    question: str | None
    gold: str
    answer: str


class JudgeScorer(BatchScorer):
    """An LLM judge over an OpenAI-compatible chat-completions server (vLLM, SGLang, llama.cpp).

    Scale, `verify` mode: 1.0 when the judge finds the completion's final answer (found as `math`
    finds it; the judge sees only that answer, the gold and the prompt) equivalent to `reference`,
    0.0 when not, or when there is no single final answer. `rubric` mode: the judge's integer
    score on [scale_min, scale_max] (default 1..10) mapped linearly to [0, 1]; the judge sees the
    prompt, the completion, and `reference` and `metadata.rubric` when given.
    `unscorable` when the judge's reply is not the JSON verdict asked for, or the gold, prompt or
    rubric it needs is missing; `error` when no judge server answers; `timeout` when it is too slow.
    """

    name: ClassVar[str] = "judge"
    version: ClassVar[int] = 1

    def __init__(self, client: ChatClient, templates: dict[str, PromptTemplate], cache: VerdictCache) -> None:
        self.client = client
        self.templates = templates
        self.cache = cache
        self.Params = _params_for(templates)  # type: ignore[misc]  # per instance: knows this gateway's templates

    async def score_batch(self, samples: Sequence[Sample], params: Params, context: ScoringContext) -> list[Scored]:
        assert isinstance(params, JudgeParams)
        if params.mode == "verify":
            found = await asyncio.to_thread(_verify_questions, samples, params)  # linear scans, off the loop
            asks = [q for q in found if isinstance(q, Question)]
            answers = iter(await self.verify(asks, context, template=params.template or "verify"))
            return [next(answers) if isinstance(q, Question) else q for q in found]
        return await self._rubric(samples, params, context)

    async def verify(self, questions: Sequence[Question], context: ScoringContext, *, template: str = "verify") -> list[Scored]:
        """Ask the judge whether each answer is equivalent to its gold; one `Scored` per question."""
        prompt = self.templates[template]
        verdict = VerifyVerdict()
        calls = [
            self._ask(prompt, verdict, {"question": q.question or "(not given)", "gold": q.gold, "answer": q.answer}, shown=f"{_short(q.answer)} vs gold {_short(q.gold)}")
            for q in questions
        ]  # fmt: skip
        return await _gather_by(calls, context)

    async def _rubric(self, samples: Sequence[Sample], params: JudgeParams, context: ScoringContext) -> list[Scored]:
        prompt = self.templates[params.template or "rubric"]
        verdict = RubricVerdict(params.scale_min, params.scale_max)
        results: list[Scored | None] = []
        calls = []
        for sample in samples:
            values = _rubric_values(sample, params)
            if isinstance(values, Scored):
                results.append(values)
                continue
            results.append(None)
            calls.append(self._ask(prompt, verdict, values, shown=f"on {params.scale_min}..{params.scale_max}"))
        judged = iter(await _gather_by(calls, context))
        return [r if r is not None else next(judged) for r in results]

    async def _ask(self, prompt: PromptTemplate, verdict: Verdict, values: dict[str, Any], *, shown: str) -> Scored:
        """One question, through the cache: a verdict, `unscorable`, `error` or `timeout`."""
        values = {k: str(v) for k, v in values.items()}
        client = self.client
        key = cache_key(client.model, prompt.digest, repr(verdict), client.temperature, client.max_tokens, values)

        async def ask() -> Scored:
            try:
                reply = await client.complete(prompt.render(values), verdict.schema())
            except JudgeTimeout as exc:
                return Scored.timeout(f"judge: {exc}")
            except JudgeUnavailable as exc:
                return Scored.error(f"judge: {exc}")
            try:
                value = verdict.read(reply.content)
            except Unparseable as exc:
                cut = " (cut at REWARDSTACK_JUDGE_MAX_TOKENS)" if reply.finish_reason == "length" else ""
                return Scored.unscorable(f"judge reply unreadable{cut}: {exc}")
            if isinstance(verdict, VerifyVerdict):
                return Scored.ok(value, f"judge: {'equivalent' if value == 1.0 else 'not equivalent'}: {shown}")
            score = round(verdict.scale_min + value * (verdict.scale_max - verdict.scale_min))
            return Scored.ok(value, f"judge: {score} {shown}")

        started = time.perf_counter()
        scored, cached = await self.cache.get_or_ask(key, ask)
        detail = scored.detail + (" (cached)" if cached else "")
        return replace(scored, detail=detail, latency_ms=(time.perf_counter() - started) * 1000)


def _verify_questions(samples: Sequence[Sample], params: JudgeParams) -> list[Question | Scored]:
    """Each sample's question for the judge, or its outcome when there is nothing to ask."""
    out: list[Question | Scored] = []
    for sample in samples:
        gold = gold_text(sample.reference)
        if gold is None:
            out.append(Scored.unscorable("no gold answer in `reference`"))
            continue
        found = judgeable_answer(
            sample.completion, prompt=sample.prompt, answer_tag_only=params.answer_tag_only,
            last_number=params.last_number_fallback, multiple_answers=params.multiple_answers,
        )  # fmt: skip
        if found.answer is None:
            out.append(Scored.ok(0.0, found.why))
        elif len(found.answer) > params.max_answer_chars:
            out.append(Scored.unscorable(f"answer of {len(found.answer)} characters; max_answer_chars is {params.max_answer_chars}"))
        else:
            out.append(Question(sample.prompt, gold, found.answer))
    return out


def _rubric_values(sample: Sample, params: JudgeParams) -> dict[str, Any] | Scored:
    if not sample.prompt:
        return Scored.unscorable("rubric grading needs the item's `prompt` (the task)")
    if len(sample.completion) > params.max_response_chars:
        return Scored.unscorable(f"completion of {len(sample.completion)} characters; max_response_chars is {params.max_response_chars}")
    rubric = sample.metadata.get("rubric", "")
    if not isinstance(rubric, str):
        return Scored.unscorable("`metadata.rubric` must be text")
    reference = sample.reference if isinstance(sample.reference, str) else ""
    return {
        "question": sample.prompt, "reference": reference, "rubric": rubric, "response": sample.completion,
        "scale_min": params.scale_min, "scale_max": params.scale_max,
    }  # fmt: skip


async def _gather_by(calls: Sequence[Any], context: ScoringContext) -> list[Scored]:
    """Await every call until the batch deadline; the unfinished are `timeout`, never a number."""
    if not calls:
        return []
    tasks = [asyncio.ensure_future(c) for c in calls]
    timeout = None
    if context.batch_deadline is not None:
        timeout = max(0.0, context.batch_deadline - asyncio.get_running_loop().time())
    await asyncio.wait(tasks, timeout=timeout)
    results = []
    for task in tasks:
        if task.done():
            results.append(task.result())
        else:
            task.cancel()
            results.append(Scored.timeout("the batch deadline passed before the judge answered"))
    return results


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


@asynccontextmanager
async def open_judge_scorer(settings: Settings) -> AsyncIterator[JudgeScorer | None]:
    """The `judge` scorer for the gateway's lifespan, or None when no judge URL is configured."""
    if not settings.judge_urls:
        yield None
        return
    templates = load_templates(Path(settings.judge_templates_dir) if settings.judge_templates_dir else None)
    client = ChatClient(
        settings.judge_urls,
        model=settings.judge_model or "",
        api_token=settings.judge_api_token,
        timeout_s=settings.judge_timeout_s,
        max_concurrency=settings.judge_max_concurrency,
        max_tokens=settings.judge_max_tokens,
        temperature=settings.judge_temperature,
        structured_output=settings.judge_structured_output,
    )
    try:
        yield JudgeScorer(client, templates, VerdictCache(settings.judge_cache_entries))
    finally:
        await client.aclose()
