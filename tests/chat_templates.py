"""Tokenizers of four chat-template families, built locally (no hub), to make the texts OpenRLHF decodes.

Each family is a byte-level tokenizer (every text round-trips) with the family's special tokens
and a chat template written as a jinja string in the shape of the real one (Qwen2's ChatML with
its default system prompt, Llama 3's headers, DeepSeek-R1's full-width markers and pre-filled
`<think>`, Mistral's `[INST]`). Rendering and decoding go through transformers' own machinery
(`apply_chat_template`, `decode(..., skip_special_tokens=False)`), as in a training run.
"""

from __future__ import annotations

from dataclasses import dataclass

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from rewardstack.tiny import _bytes_to_unicode

QWEN2 = (
    "{%- if messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}"
)
LLAMA3 = (
    "{{- bos_token }}{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)
DEEPSEEK_R1 = (
    "{{ bos_token }}{%- for message in messages %}"
    "{%- if message['role'] == 'user' %}{{ '<｜User｜>' + message['content'] }}"
    "{%- elif message['role'] == 'assistant' %}{{ '<｜Assistant｜>' + message['content'] + '<｜end▁of▁sentence｜>' }}{%- endif %}"
    "{%- endfor %}{%- if add_generation_prompt %}{{ '<｜Assistant｜><think>\\n' }}{%- endif %}"
)
MISTRAL = (
    "{{ bos_token }}{%- for message in messages %}"
    "{%- if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{%- elif message['role'] == 'assistant' %}{{ ' ' + message['content'] + eos_token }}{%- endif %}{%- endfor %}"
)


@dataclass(frozen=True)
class Family:
    name: str
    template: str
    bos: str | None
    eos: str
    pad: str
    others: tuple[str, ...]


FAMILIES = {
    "qwen2": Family("qwen2", QWEN2, None, "<|im_end|>", "<|endoftext|>", ("<|im_start|>",)),
    "llama3": Family("llama3", LLAMA3, "<|begin_of_text|>", "<|eot_id|>", "<|finetune_right_pad_id|>",
                     ("<|start_header_id|>", "<|end_header_id|>", "<|end_of_text|>")),
    "deepseek_r1": Family("deepseek_r1", DEEPSEEK_R1, "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>",
                          ("<｜User｜>", "<｜Assistant｜>")),
    "mistral": Family("mistral", MISTRAL, "<s>", "</s>", "<unk>", ("[INST]", "[/INST]")),
}


def build_tokenizer(family: Family) -> PreTrainedTokenizerFast:
    """A byte-level tokenizer with the family's special tokens and chat template."""
    vocab = {char: byte for byte, char in _bytes_to_unicode().items()}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    specials = [t for t in (family.bos, family.eos, family.pad, *family.others) if t]
    backend.add_special_tokens(specials)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=family.bos,
        eos_token=family.eos,
        pad_token=family.pad,
        chat_template=family.template,
        clean_up_tokenization_spaces=False,
    )
