r"""`rewardstack train --config recipes/NAME.yaml`: TRL's GRPOTrainer with rewards from the stack.

A recipe has five sections (see `recipes/r1_zero_gsm8k.yaml`):

- `model`: a hub id or local path (`path`), or `tiny` for the random byte-level model of
  `rewardstack.tiny` (CPU smoke runs);
- `data`: GSM8K or MATH-500 from a local JSONL (`path`) or the hub (`hub_id`), turned into the
  R1-Zero prompt (reasoning in `<think>`, answer in `<answer>`) with the gold in `answer`;
- `reward`: the service URL(s), the scorers with weights and params, a deadline per batch;
- `generation`: `transformers` (plain `generate`, CPU or GPU) or `vllm` (`colocate` or `server`);
- `training`: passed to `GRPOConfig` as is (learning rate, batch size, steps, ...).

Before the model is loaded the client checks that every URL answers and serves every scorer,
so a wrong URL fails in a second, not after the model has loaded. Each step makes one request
for all scorers; TRL logs each component as `rewards/<scorer>/mean` and the time the request took
as `rewardstack/score_s`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import httpx
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from rewardstack.client import DEFAULT_CHUNK_SIZE, DEFAULT_MAX_CONCURRENCY, AsyncRewardClient, RewardClient, normalize_scorers
from rewardstack.trl import reward_funcs, reward_weights

__all__ = ["R1_ZERO_TEMPLATE", "Recipe", "RecipeError", "build_dataset", "load_recipe", "train"]

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 3.0  # the start-up check of the reward service: `train` reports a dead URL within 5 s

R1_ZERO_TEMPLATE = (
    "A conversation between User and Assistant. The User asks a question, and the Assistant solves it. "
    "The Assistant first thinks about the reasoning process in the mind and then provides the User with the answer. "
    "The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> tags, respectively, "
    "i.e., <think> reasoning process here </think> <answer> answer here </answer>.\nUser: {question}\nAssistant:"
)
"""The DeepSeek-R1-Zero prompt (arXiv 2501.12948, table 1), as plain text for a base model."""

R1_SYSTEM_PROMPT = (
    "You are a helpful assistant. You first think about the reasoning process in the mind and then provide the user "
    "with the answer. The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> "
    "tags, respectively, i.e., <think> reasoning process here </think> <answer> answer here </answer>."
)
"""The same instruction as a system prompt, for chat (instruct) models: `template: r1_zero_chat`."""

# where each known data set keeps its question and its gold answer
_DATASET_FIELDS = {"gsm8k": ("question", "answer"), "math500": ("problem", "answer")}


class RecipeError(ValueError):
    """The recipe asks for something this machine cannot do (e.g. vLLM where it is not installed)."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelSection(_Section):
    path: str = Field(description="hub id, local directory, or `tiny` for the random byte-level model")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    tiny: dict[str, int] = Field(default_factory=dict, description="TinyModelSpec fields when path is `tiny`")


class DataSection(_Section):
    name: Literal["gsm8k", "math500", "custom"] = "gsm8k"
    path: str | None = Field(default=None, description="local JSONL; relative paths are from the recipe's folder")
    hub_id: str | None = Field(default=None, description="Hugging Face dataset id, used when `path` is unset")
    hub_config: str | None = None
    split: str = "train"
    question_field: str | None = Field(default=None, description="defaults per data set: gsm8k `question`, math500 `problem`")
    answer_field: str | None = Field(default=None, description="defaults to `answer`")
    template: Literal["r1_zero", "r1_zero_chat", "plain"] = Field(
        default="r1_zero", description="`r1_zero`: plain-text R1-Zero prompt; `r1_zero_chat`: as system + user messages; `plain`: the question alone"
    )
    limit: int | None = Field(default=None, ge=1, description="use only the first N rows")

    @model_validator(mode="after")
    def _source(self) -> DataSection:
        if (self.path is None) == (self.hub_id is None):
            raise ValueError("data: give exactly one of `path` (local JSONL) or `hub_id`")
        if self.name == "custom" and (self.question_field is None or self.answer_field is None):
            raise ValueError("data: a `custom` data set needs `question_field` and `answer_field`")
        return self


class RewardSection(_Section):
    url: str | list[str] = Field(description="the stack's URL, or a list of replica URLs")
    scorers: dict[str, Any] | str = Field(description="{name: weight} or {name: {weight, params}}, or 'math:1,format:0.2'")
    deadline_s: float | None = Field(default=120.0, gt=0)
    on_unscored: float | None = Field(default=None, description="null: TRL masks items that are not ok; a number stands in")
    api_token: str | None = None
    chunk_size: int = Field(default=DEFAULT_CHUNK_SIZE, ge=1, description="items per request; bigger batches go as concurrent chunks")
    max_concurrency: int = Field(default=DEFAULT_MAX_CONCURRENCY, ge=1, description="chunks in flight at once")


class GenerationSection(_Section):
    backend: Literal["transformers", "vllm"] = "transformers"
    vllm_mode: Literal["colocate", "server"] = "colocate"
    vllm_server_base_url: str | None = Field(default=None, description="server mode: the `trl vllm-serve` URL")
    vllm_gpu_memory_utilization: float = Field(default=0.3, gt=0, le=1)


class Recipe(_Section):
    model: ModelSection
    data: DataSection
    reward: RewardSection
    generation: GenerationSection = Field(default_factory=GenerationSection)
    training: dict[str, Any] = Field(default_factory=dict, description="GRPOConfig arguments")
    base_dir: Path = Field(default=Path("."), exclude=True)


def _set_dotted(tree: dict[str, Any], dotted: str) -> None:
    key, sep, raw = dotted.partition("=")
    if not sep or not key:
        raise ValueError(f"--set {dotted!r}: expected KEY=VALUE, e.g. training.max_steps=2")
    *parents, leaf = key.split(".")
    node = tree
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ValueError(f"--set {dotted!r}: {part} is not a section")
    value = yaml.safe_load(raw)
    if isinstance(value, str):  # YAML 1.1 reads `1e-6` (no dot) as a string; a float is meant
        with contextlib.suppress(ValueError):
            value = float(value)
    node[leaf] = value


def load_recipe(path: Path, overrides: Sequence[str] = ()) -> Recipe:
    """Read a recipe YAML, apply `KEY=VALUE` overrides, validate; errors name the field."""
    tree = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(tree, dict):
        raise ValueError(f"{path}: a recipe is a YAML mapping")
    for dotted in overrides:
        _set_dotted(tree, dotted)
    return Recipe.model_validate({**tree, "base_dir": Path(path).resolve().parent})


def _read_rows(data: DataSection, base_dir: Path) -> list[dict[str, Any]]:
    if data.path is not None:
        path = Path(data.path) if Path(data.path).is_absolute() else base_dir / data.path
        if not path.is_file():
            raise RecipeError(f"data.path: no file {path}; give a local JSONL, or data.path=null with data.hub_id")
        with path.open(encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.strip()]
        return rows[: data.limit] if data.limit else rows
    import datasets

    split = data.split if data.limit is None else f"{data.split}[:{data.limit}]"
    try:
        return list(datasets.load_dataset(data.hub_id, data.hub_config, split=split))
    except Exception as exc:  # noqa: BLE001 - offline, unknown id, gated: all mean the recipe cannot get its data
        raise RecipeError(f"data.hub_id: could not load {data.hub_id!r} from the hub ({_first_line(exc)}); "
                          "give a local JSONL with data.path") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def build_dataset(data: DataSection, base_dir: Path = Path(".")) -> Any:
    """A `datasets.Dataset` with `prompt` (R1-Zero template) and `answer` (the gold, for the `math` scorer)."""
    import datasets

    default_q, default_a = _DATASET_FIELDS.get(data.name, (None, None))
    question_field, answer_field = data.question_field or default_q, data.answer_field or default_a
    rows = _read_rows(data, base_dir)
    out = []
    for index, row in enumerate(rows):
        if question_field not in row or answer_field not in row:
            raise ValueError(f"data row {index} has no `{question_field}`/`{answer_field}`; set data.question_field/answer_field")
        question = str(row[question_field])
        if data.template == "plain":
            prompt: Any = question
        elif data.template == "r1_zero":
            prompt = R1_ZERO_TEMPLATE.format(question=question)
        else:
            prompt = [{"role": "system", "content": R1_SYSTEM_PROMPT}, {"role": "user", "content": question}]
        out.append({"prompt": prompt, "answer": str(row[answer_field]), "task": data.name})
    return datasets.Dataset.from_list(out)


def _load_model(section: ModelSection) -> tuple[Any, Any]:
    if section.path == "tiny":
        from rewardstack.tiny import TinyModelSpec, build_tiny_model

        return build_tiny_model(TinyModelSpec(**section.tiny))
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(section.path, padding_side="left")
        model = AutoModelForCausalLM.from_pretrained(section.path, dtype=section.dtype)
    except OSError as exc:  # not a local folder and the hub unreachable, or no such model
        raise RecipeError(f"model.path: could not load {section.path!r} ({_first_line(exc)})") from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def grpo_config(recipe: Recipe, scorers: Mapping[str, Any]) -> Any:
    """`GRPOConfig` from the recipe's `training` section, plus generation and reward weights."""
    from trl import GRPOConfig

    args = dict(recipe.training)
    args.setdefault("output_dir", "runs/" + time.strftime("%Y%m%d-%H%M%S"))
    args["reward_weights"] = reward_weights(scorers)
    generation = recipe.generation
    if generation.backend == "vllm":
        args.update(use_vllm=True, vllm_mode=generation.vllm_mode, vllm_gpu_memory_utilization=generation.vllm_gpu_memory_utilization)
        if generation.vllm_server_base_url:
            args["vllm_server_base_url"] = generation.vllm_server_base_url
    known = {f.name for f in dataclasses.fields(GRPOConfig)}
    for key in args:
        if key not in known:
            near = difflib.get_close_matches(key, known, n=3)
            raise RecipeError(f"training.{key}: not a GRPOConfig argument" + (f"; did you mean {', '.join(near)}?" if near else ""))
    try:
        return GRPOConfig(**args)
    except (TypeError, ValueError) as exc:
        raise RecipeError(f"training: {' '.join(str(exc).split())}") from exc


def train(recipe: Recipe, *, callbacks: Sequence[Any] = ()) -> Any:
    """Check the service, build model, data and reward functions, run GRPO; returns the trainer."""
    scorers = normalize_scorers(recipe.reward.scorers)
    urls = recipe.reward.url if isinstance(recipe.reward.url, list) else [recipe.reward.url]
    # fail fast, before TRL and the model load: a wrong URL is reported in seconds
    with RewardClient(urls, api_token=recipe.reward.api_token, timeout=httpx.Timeout(PROBE_TIMEOUT_S)) as probe:
        probe.check(list(scorers))
    from trl import GRPOTrainer
    if recipe.generation.backend == "vllm":
        import importlib.util

        if importlib.util.find_spec("vllm") is None:
            raise RecipeError("generation.backend is vllm but vllm is not installed: pip install 'rewardstack[vllm]' on a GPU machine")
    reward = recipe.reward
    client = AsyncRewardClient(
        urls, on_unscored=reward.on_unscored, api_token=reward.api_token, chunk_size=reward.chunk_size, max_concurrency=reward.max_concurrency
    )
    funcs = reward_funcs(client, scorers, deadline_s=recipe.reward.deadline_s)
    args = grpo_config(recipe, scorers)
    dataset = build_dataset(recipe.data, recipe.base_dir)  # before the model: a data mistake fails in seconds
    model, tokenizer = _load_model(recipe.model)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=funcs,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=list(callbacks),
    )
    trainer.train()
    return trainer
