"""Device choice and padding, shared by the Hugging Face backends."""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import torch


def pick_device(dtype: torch.dtype | None = None) -> tuple[torch.device, torch.dtype]:
    """bf16 on a GPU when there is one (halves memory, full speed on tensor cores); fp32 on CPU,
    where bf16 matmuls are slower than fp32 on most cores. `dtype` overrides the choice (tests
    check bf16 numerics on CPU)."""
    if torch.cuda.is_available():
        return torch.device("cuda"), dtype or torch.bfloat16
    return torch.device("cpu"), dtype or torch.float32


def dtype_kwargs(dtype: torch.dtype) -> dict[str, torch.dtype]:
    """`from_pretrained`'s dtype argument: `dtype` since transformers 4.56, `torch_dtype` before
    (an unknown keyword would be ignored and the model silently loaded in fp32)."""
    import transformers

    major, minor = (int(part) for part in transformers.__version__.split(".")[:2])
    return {"dtype": dtype} if (major, minor) >= (4, 56) else {"torch_dtype": dtype}


def logits_to_keep_name(model: torch.nn.Module) -> str | None:
    """The keyword that asks a causal LM for some positions' logits only: `logits_to_keep`
    (transformers >= 4.50; an int keeps the last n, a tensor those indices) or `num_logits_to_keep`
    (4.45-4.49, an int only); None where the model has neither."""
    parameters = inspect.signature(model.forward).parameters
    return next((name for name in ("logits_to_keep", "num_logits_to_keep") if name in parameters), None)


def pad(
    sequences: Sequence[Sequence[int]], pad_id: int, *, left: bool, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad to the longest sequence; returns (input_ids, attention_mask)."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        span = slice(width - len(seq), width) if left else slice(0, len(seq))
        ids[row, span] = torch.tensor(seq, dtype=torch.long)
        mask[row, span] = 1
    return ids.to(device), mask.to(device)


def release(device: torch.device) -> None:
    """Give cached GPU memory back after a model is dropped (another model may load next)."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
