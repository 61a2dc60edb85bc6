"""Padding-free (packed) forward passes: every sequence of a pass in one row, attention kept inside each.

A padded pass computes `longest x count` tokens; a packed pass computes only the real ones. The
sequences are concatenated into one row with position ids that restart at 0 for each sequence,
and attention is variable-length: each query sees only the earlier tokens of its own sequence.

The attention runs as a transformers attention implementation registered here
(`rewardstack_packed`), which reads the sequence boundaries from the standard `cu_seq_lens_q`
keyword the model forwards to every attention layer:

- CUDA, bf16/fp16: a varlen FlashAttention kernel, `torch.nn.attention.varlen.varlen_attn`
  (torch >= 2.9) or the `flash_attn` package's `flash_attn_varlen_func`; cost sum(l_i^2), never
  (sum l_i)^2, so the row length is bounded only by memory.
- otherwise (CPU, fp32, or no varlen kernel): PyTorch SDPA, causal, once per sequence. Also
  sum(l_i^2), exactly the arithmetic of each sequence alone.

transformers' own padding-free routes were not taken: `flash_attention_2` needs the `flash_attn`
package (absent on CPU), and `sdpa` with packed position ids builds a block-diagonal
(sum l_i)^2 mask, which costs more attention than the padding it saves once a row holds more than
a few sequences. Calls without `cu_seq_lens_q` (padded passes, the start-up check's reference)
fall through to plain SDPA with its usual padding mask, so one loaded model serves both layouts.

`enable_packing(model)` switches a loaded model to this implementation when it can take it and
says why not otherwise; the backends then confirm at start-up that packed scores equal padded
ones on probe sequences (`agrees`) before they serve a single packed pass.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from rewardstack.services.model_server.backends.base import Layout

log = logging.getLogger(__name__)

ATTENTION = "rewardstack_packed"
_OWN_KWARGS = ("cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k")


@dataclass(frozen=True, slots=True)
class PackedRow:
    """A pass's sequences as one row: `input_ids` and `position_ids` are [1, total]; `last` holds
    each sequence's last position (where its score is read); `attention_kwargs` go to the model."""

    input_ids: torch.Tensor
    position_ids: torch.Tensor
    last: torch.Tensor
    attention_kwargs: dict[str, Any]


def pack(sequences: Sequence[Sequence[int]], device: torch.device) -> PackedRow:
    """Concatenate `sequences` into one row; positions restart at 0 for each."""
    lengths = [len(s) for s in sequences]
    if not lengths or min(lengths) < 1:
        raise ValueError("a packed pass needs at least one sequence, each of at least one token")
    ids = torch.tensor([t for s in sequences for t in s], dtype=torch.long)
    positions = torch.cat([torch.arange(n, dtype=torch.long) for n in lengths])
    bounds = torch.tensor([0, *lengths], dtype=torch.int32).cumsum(0, dtype=torch.int32)
    longest = max(lengths)
    cu = bounds.to(device)
    return PackedRow(
        input_ids=ids.unsqueeze(0).to(device),
        position_ids=positions.unsqueeze(0).to(device),
        last=(bounds[1:] - 1).to(device=device, dtype=torch.long),
        attention_kwargs={"cu_seq_lens_q": cu, "cu_seq_lens_k": cu, "max_length_q": longest, "max_length_k": longest},
    )


# -- the attention implementation --------------------------------------------------------------


VarlenKernel = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int, float | None], torch.Tensor]


@functools.cache
def _cuda_varlen_kernel() -> tuple[str, VarlenKernel] | None:
    """(name, kernel) of a varlen FlashAttention kernel for CUDA bf16/fp16, or None.

    Kernels take q, k, v as [tokens, heads, dim] (k, v may have fewer heads: GQA), the int32
    cumulative boundaries, the longest sequence and the softmax scale; causal."""
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        varlen_attn = None
    if varlen_attn is not None:
        parameters = inspect.signature(varlen_attn).parameters
        # torch 2.9 spelled causality `is_causal`; later versions a (left, right) window
        causal = {"window_size": (-1, 0)} if "window_size" in parameters else {"is_causal": True}
        native_gqa = "enable_gqa" in parameters

        def torch_varlen(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu: torch.Tensor, longest: int, scale: float | None) -> torch.Tensor:
            extra: dict[str, Any] = dict(causal)
            if k.shape[1] != q.shape[1]:
                if native_gqa:
                    extra["enable_gqa"] = True
                else:
                    k, v = (t.repeat_interleave(q.shape[1] // t.shape[1], dim=1) for t in (k, v))
            return varlen_attn(q, k, v, cu, cu, longest, longest, scale=scale, **extra)

        return "torch varlen_attn (FlashAttention, varlen)", torch_varlen
    try:
        from flash_attn import flash_attn_varlen_func
    except ImportError:
        return None

    def flash_varlen(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu: torch.Tensor, longest: int, scale: float | None) -> torch.Tensor:
        return flash_attn_varlen_func(q, k, v, cu, cu, longest, longest, softmax_scale=scale, causal=True)

    return "flash_attn flash_attn_varlen_func (varlen)", flash_varlen


def kernel_name(device: torch.device, dtype: torch.dtype) -> str:
    """What packed attention runs on for this device and dtype (as `packed_attention` uses it)."""
    if device.type == "cuda" and dtype in (torch.float16, torch.bfloat16) and (found := _cuda_varlen_kernel()) is not None:
        return found[0]
    return "PyTorch SDPA, causal, once per sequence (sum of l^2, no cross-sequence work)"


def packed_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """transformers attention function: varlen when `cu_seq_lens_q` is given, plain SDPA otherwise.

    q, k, v arrive as [batch, heads, tokens, dim]; the output leaves as [batch, tokens, heads, dim]."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    cu = kwargs.get("cu_seq_lens_q")
    rest = {k: v for k, v in kwargs.items() if k not in _OWN_KWARGS}
    if cu is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **rest)
    # Refuse what per-sequence causal attention would silently get wrong; the start-up check
    # then keeps the model on padded passes.
    if query.shape[0] != 1 or attention_mask is not None:
        raise ValueError("a packed pass is one row without an attention mask")
    if rest.get("sliding_window") is not None or rest.get("position_bias") is not None or rest.get("softcap") is not None:
        raise ValueError("packed attention supports plain causal attention only (no sliding window, bias or softcap)")
    if rest.get("is_causal", getattr(module, "is_causal", True)) is False:
        raise ValueError("packed attention supports causal attention only")
    if query.device.type == "cuda" and query.dtype in (torch.float16, torch.bfloat16) and (found := _cuda_varlen_kernel()):
        q, k, v = (t[0].transpose(0, 1).contiguous() for t in (query, key, value))
        out = found[1](q, k, v, cu.to(torch.int32), int(kwargs["max_length_q"]), scaling)
        return out.unsqueeze(0), None
    bounds = cu.tolist()
    pieces = [
        sdpa_attention_forward(
            module, query[:, :, s:e], key[:, :, s:e], value[:, :, s:e], None, dropout=dropout, scaling=scaling, is_causal=True
        )[0]
        for s, e in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    return torch.cat(pieces, dim=1), None


def _packed_mask(*args: Any, attention_mask: torch.Tensor | None = None, **kwargs: Any) -> torch.Tensor | None:
    """transformers mask function: none for a packed row (the attention keeps sequences apart),
    SDPA's usual mask for a padded batch."""
    from transformers.masking_utils import sdpa_mask

    if attention_mask is None:
        return None
    return sdpa_mask(*args, attention_mask=attention_mask, **kwargs)


@functools.cache
def _register() -> None:
    """Make `rewardstack_packed` known to transformers (its registries are process-wide; once)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(ATTENTION, packed_attention)
    AttentionMaskInterface.register(ATTENTION, _packed_mask)


def enable_packing(model: Any, device: torch.device, dtype: torch.dtype) -> Layout:
    """Switch `model` to packed attention where it can take it; otherwise say why and leave it as is.

    The caller must still confirm with `agrees` that packed scores equal padded ones."""
    try:
        _register()
    except ImportError as exc:
        return Layout(False, f"padded: this transformers has no attention/mask registries for packed input ({exc})")
    config = model.config.get_text_config()
    if not getattr(model, "_supports_attention_backend", False):
        return Layout(False, f"padded: {type(model).__name__} does not take custom attention implementations")
    if "sliding_attention" in (getattr(config, "layer_types", None) or ()) or getattr(config, "use_sliding_window", False):
        return Layout(False, "padded: sliding-window attention layers (packed attention is plain causal)")
    if getattr(config, "attn_logit_softcapping", None) is not None:
        return Layout(False, "padded: attention logit soft-capping")
    model.set_attn_implementation(ATTENTION)
    if model.config._attn_implementation != ATTENTION:
        return Layout(False, f"padded: {type(model).__name__} kept attention {model.config._attn_implementation!r}")
    return Layout(True, f"packed: {kernel_name(device, dtype)}")


def agrees(packed: Sequence[float], padded: Sequence[float], dtype: torch.dtype) -> bool:
    """Whether packed probe scores equal padded ones: within 1e-4 in fp32, 5e-2 in bf16/fp16
    (relative to the score's size past 1). Meant to catch a wrong kernel, not rounding."""
    tolerance = 1e-4 if dtype == torch.float32 else 5e-2
    return len(packed) == len(padded) and all(
        abs(a - b) <= tolerance * max(1.0, abs(b)) for a, b in zip(packed, padded, strict=True)
    )


Probe = Callable[[], tuple[list[float], list[float]]]


def select_layout(model: Any, device: torch.device, dtype: torch.dtype, packing: str, probe: Probe) -> Layout:
    """The layout a backend serves with: packed when allowed (`packing` "auto"), possible for this
    model (`enable_packing`) and confirmed by `probe()` (packed and padded scores of the same probe
    sequences agreeing); padded otherwise, with the reason, and the model's attention restored."""
    if packing == "off":
        return Layout(False, "padded: packing is off in this model's batching config")
    before = model.config._attn_implementation
    layout = enable_packing(model, device, dtype)
    if not layout.packed:
        log.info("%s: %s", type(model).__name__, layout.detail)
        return layout
    try:
        packed, padded = probe()
        reason = None if agrees(packed, padded, dtype) else f"packed probe scores {packed} differ from padded {padded}"
    except Exception as exc:  # any failure of the packed path means: serve padded, and say why
        reason = f"a packed probe pass failed: {type(exc).__name__}: {exc}"
    if reason is None:
        log.info("%s: %s", type(model).__name__, layout.detail)
        return layout
    model.set_attn_implementation(before)
    log.warning("%s: serving padded passes; %s", type(model).__name__, reason)
    return Layout(False, f"padded: {reason}")
