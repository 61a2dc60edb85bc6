"""Randomly initialised models built from configs, saved to a folder: for tests, benchmarks and
GPU throughput checks, where real weights are neither needed nor available.

The tokenizer is byte-level (one token per UTF-8 byte, plus chat special tokens), built locally
with `tokenizers`; nothing comes from the hub. The folders load through the same
`from_pretrained` path as real models.

    python -m rewardstack.services.model_server.tiny OUT_DIR [--kind reward|guard] [--arch llama|qwen2] [--hidden 64 --layers 2]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

REWARD_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
GUARD_TEMPLATE = (
    "{{ bos_token }}<|user|>\nIs the agent's last message unsafe?\n"
    "User: {{ messages[0]['content'] }}\n"
    "{% if messages | length > 1 %}Agent: {{ messages[1]['content'] }}\n{% endif %}<|end|>\n"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
ARCHITECTURES = ("llama", "qwen2")
SPECIAL = ["<pad>", "<s>", "</s>", "<|user|>", "<|assistant|>", "<|end|>"]


def byte_tokenizer(chat_template: str, corpus: Sequence[str] = (), vocab_size: int = 4096):  # noqa: ANN201 - a transformers fast tokenizer
    """One token per byte (GPT-2's byte-to-unicode alphabet, no merges) plus the special tokens;
    with a `corpus`, byte-level BPE merges learnt from it, for realistic sequence lengths."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {tok: i for i, tok in enumerate(SPECIAL)}
    for ch in sorted(alphabet):
        vocab[ch] = len(vocab)
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    if corpus:
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL, initial_alphabet=alphabet, show_progress=False)
        core.train_from_iterator(corpus, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
        additional_special_tokens=SPECIAL[3:], model_max_length=1_000_000,
    )  # fmt: skip
    tokenizer.chat_template = chat_template
    return tokenizer


def build(
    out: Path, *, kind: str, arch: str = "llama", hidden: int = 64, layers: int = 2, heads: int = 4,
    kv_heads: int | None = None, intermediate: int | None = None, vocab_size: int = 4096, seed: int = 0,
    corpus: Sequence[str] = (), bf16: bool = False,
) -> Path:  # fmt: skip
    """Save a random reward model (`reward`, sequence classifier) or causal-LM guard (`guard`) of
    architecture `arch` (`llama`; `qwen2`: biases on q/k/v, full attention) to `out`; the tokenizer is
    byte-level, or BPE learnt from `corpus` (up to `vocab_size`) when one is given.
    Qwen2-1.5B's shape is hidden=1536, layers=28, heads=12, kv_heads=2, intermediate=8960."""
    import torch
    import transformers

    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(ARCHITECTURES)}")
    prefix = {"llama": "Llama", "qwen2": "Qwen2"}[arch]
    tokenizer = byte_tokenizer(REWARD_TEMPLATE if kind == "reward" else GUARD_TEMPLATE, corpus, vocab_size)
    config = getattr(transformers, f"{prefix}Config")(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=intermediate or hidden * 4,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads or max(1, heads // 2),
        max_position_embeddings=32_768, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, num_labels=1, tie_word_embeddings=False,
    )  # fmt: skip
    torch.manual_seed(seed)
    head = "ForSequenceClassification" if kind == "reward" else "ForCausalLM"
    model = getattr(transformers, prefix + head)(config).eval()
    if bf16:
        model = model.to(torch.bfloat16)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rewardstack.services.model_server.tiny", description="Build a random model folder.")
    parser.add_argument("out", type=Path)
    parser.add_argument("--kind", choices=["reward", "guard"], default="reward")
    parser.add_argument("--arch", choices=ARCHITECTURES, default="llama")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    args = parser.parse_args(argv)
    print(build(args.out, kind=args.kind, arch=args.arch, hidden=args.hidden, layers=args.layers, heads=args.heads))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
