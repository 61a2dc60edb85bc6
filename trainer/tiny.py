"""A tiny randomly initialised causal LM with a byte-level tokenizer, built locally (no hub).

For CPU smoke runs (`recipes/tiny_cpu.yaml`) and the end-to-end tests: it trains in seconds,
so the whole GRPO loop against the reward stack can run on a laptop. It knows nothing; what it
shows is that every piece is wired right, and (on an easy reward) that GRPO moves it.

The tokenizer maps each of the 256 byte values to one token (GPT-2's printable byte alphabet,
no merges) plus `<pad>` and `<eos>`, so any text round-trips and lengths are predictable.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

__all__ = ["TinyModelSpec", "build_byte_tokenizer", "build_tiny_model"]

PAD, EOS = "<pad>", "<eos>"


@dataclass(frozen=True)
class TinyModelSpec:
    """Size and seed of the tiny model. The defaults have ~70k parameters."""

    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 128
    max_position_embeddings: int = 512
    seed: int = 0


def build_byte_tokenizer() -> PreTrainedTokenizerFast:
    """Byte-level BPE with no merges: 256 byte tokens, then `<pad>` (256) and `<eos>` (257)."""
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    # Order by byte value so token id == byte value for bytes (GPT-2's byte -> printable map).
    byte_to_char = _bytes_to_unicode()
    vocab = {byte_to_char[b]: b for b in range(256)}
    assert set(vocab) == set(alphabet)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens([PAD, EOS])
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token=PAD, eos_token=EOS, padding_side="left")


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable characters (what ByteLevel uses)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(printable, chars, strict=True)}


def build_tiny_model(spec: TinyModelSpec = TinyModelSpec()) -> tuple[LlamaForCausalLM, PreTrainedTokenizerFast]:
    """A seeded random Llama-shaped model and its byte tokenizer, in float32 on CPU."""
    tokenizer = build_byte_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_heads,
        max_position_embeddings=spec.max_position_embeddings,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=True,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model, tokenizer
