"""Real loading and scoring of tiny random models: templates, truncation, label tokens, padding."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rewardstack.services.model_server.backends.base import Prepared, TemplateEncoder
from rewardstack.services.model_server.backends.guard import GuardBackend, resolve_label_tokens
from rewardstack.services.model_server.backends.reward import RewardBackend
from rewardstack.services.model_server.schema import ModelItem, ModelOutcome, OutcomeStatus
from rewardstack.services.model_server.tiny import REWARD_TEMPLATE, byte_tokenizer
from tests.services.model_server.fixtures import MAX_LENGTH

ITEMS = [
    ModelItem(prompt="What is 2+2?", response="4"),
    ModelItem(prompt="Write a haiku about rain.", response="Soft rain on the roof\n" * 3),
    ModelItem(prompt=None, response="A response with no prompt at all."),
    ModelItem(prompt="Tell me a long story. " * 4, response="Once upon a time " * 5),
    ModelItem(prompt="hi", response="hello " * 20),
]
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def reward(reward_path: Path) -> RewardBackend:
    return RewardBackend(reward_path, max_length=MAX_LENGTH)


@pytest.fixture(scope="module")
def guard(guard_path: Path) -> GuardBackend:
    return GuardBackend(guard_path, max_length=MAX_LENGTH, labels={"safe": "safe", "unsafe": "unsafe"})


def prepared(outcomes: list[Prepared | ModelOutcome]) -> list[Prepared]:
    assert all(isinstance(p, Prepared) for p in outcomes), outcomes
    return outcomes  # type: ignore[return-value]


@pytest.mark.parametrize("backend_name", ["reward", "guard"])
def test_batched_scores_equal_unbatched(backend_name: str, request: pytest.FixtureRequest) -> None:
    backend = request.getfixturevalue(backend_name)
    items = prepared(backend.prepare(ITEMS))
    assert len({p.length for p in items}) > 3, "the items must need padding"
    batched = [o.score for o in backend.forward(items)]
    alone = [backend.forward([p])[0].score for p in items]
    assert batched == pytest.approx(alone, abs=TOLERANCE)
    assert len(set(alone)) == len(alone), "distinct inputs should give distinct scores from a random model"


def test_reward_reads_the_template_and_one_bos(reward: RewardBackend) -> None:
    (item,) = prepared(reward.prepare([ModelItem(prompt="Q?", response="A!")]))
    text = reward.tokenizer.decode(item.payload)
    assert text == "<s><|user|>\nQ?<|end|>\n<|assistant|>\nA!<|end|>\n"
    assert item.payload.count(reward.tokenizer.bos_token_id) == 1


def test_prompt_is_cut_from_the_left_and_the_response_kept(reward: RewardBackend) -> None:
    prompt = "".join(f"turn {i}. " for i in range(100))
    response = "the whole answer, every byte of it"
    (item,) = prepared(reward.prepare([ModelItem(prompt=prompt, response=response)]))
    assert item.length <= MAX_LENGTH
    text = reward.tokenizer.decode(item.payload)
    assert "turn 99." in text and "turn 0." not in text
    assert response in text


def test_a_response_longer_than_the_window_is_too_long_not_cut(reward: RewardBackend) -> None:
    (outcome,) = reward.prepare([ModelItem(prompt="q", response="x" * (MAX_LENGTH + 10))])
    assert isinstance(outcome, ModelOutcome)
    assert outcome.status is OutcomeStatus.TOO_LONG
    assert str(MAX_LENGTH) in outcome.detail


def test_duplicate_bos_is_collapsed_when_the_tokenizer_adds_one() -> None:
    from tokenizers import processors

    tokenizer = byte_tokenizer(REWARD_TEMPLATE)
    bos = tokenizer.bos_token_id
    tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", bos)])
    assert tokenizer("a").input_ids[0] == bos
    assert tokenizer(tokenizer.apply_chat_template([{"role": "user", "content": "a"}], tokenize=False)).input_ids[:2] == [bos, bos]
    ids = TemplateEncoder(tokenizer, add_generation_prompt=False).encode("a", "b")
    assert ids[:2] != [bos, bos] and ids[0] == bos


def test_a_tokenizer_without_chat_template_is_refused() -> None:
    tokenizer = byte_tokenizer(REWARD_TEMPLATE)
    tokenizer.chat_template = None
    with pytest.raises(ValueError, match="chat_template"):
        TemplateEncoder(tokenizer, add_generation_prompt=False)


def test_guard_label_tokens_come_from_the_template(guard: GuardBackend) -> None:
    tokenizer = guard.tokenizer
    # the template ends with "\n", so each label starts with its own first byte token
    assert guard.label_ids == {"safe": tokenizer.convert_tokens_to_ids("s"), "unsafe": tokenizer.convert_tokens_to_ids("u")}
    # a fixed answer prefix moves the read position after it; the labels still resolve
    prefixed = resolve_label_tokens(TemplateEncoder(tokenizer, add_generation_prompt=True, suffix="Verdict: "), guard_labels())
    assert prefixed == guard.label_ids


def guard_labels() -> dict[str, str]:
    return {"safe": "safe", "unsafe": "unsafe"}


def test_guard_labels_sharing_a_first_token_are_refused(guard: GuardBackend) -> None:
    with pytest.raises(ValueError, match="share their first token"):
        resolve_label_tokens(guard.encoder, {"safe": "unharmful", "unsafe": "unsafe"})


def test_guard_outputs_are_probabilities(guard: GuardBackend) -> None:
    assert guard._keep_name == "logits_to_keep", "only the read position's logits should be computed"
    outcomes = guard.forward(prepared(guard.prepare(ITEMS)))
    for o in outcomes:
        assert o.score == o.outputs["safe"]
        assert o.outputs["safe"] + o.outputs["unsafe"] == pytest.approx(1.0, abs=1e-5)
        assert 0.0 < o.outputs["label_mass"] < 1.0


def test_guard_reads_the_last_real_token_under_left_padding(guard: GuardBackend) -> None:
    """The pass's logits at the read position equal a plain causal-LM call on the unpadded ids."""
    short, long_ = prepared(guard.prepare([ITEMS[0], ITEMS[3]]))
    with torch.inference_mode():
        logits = guard.model(input_ids=torch.tensor([short.payload])).logits[0, -1]
    probs = logits[guard._ids].softmax(-1)
    assert guard.forward([short, long_])[0].outputs["safe"] == pytest.approx(float(probs[0]), abs=TOLERANCE)
