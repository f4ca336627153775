"""Start a MOSS/CodeGen model with a working induction circuit: "copy what followed it before".

A plugin call is mostly copied text: the numbers of ``Calculate("1234*5678")``, the names of
``Search("…")``, a custom tool's name from the meta instruction, the result that the answer
repeats. Transformers copy with an *induction circuit*: a head that attends to the previous
token and writes its identity into the residual stream, then a head in a later layer whose
query (the current token) matches those keys and whose value (the token found there) is the
prediction. Gradient descent finds this circuit only after a long plateau: the 6M-parameter
recipe model trained from a random init for 2,200 steps (70 CPU minutes) still copied the
first digit of a number and guessed the rest.

:func:`install_induction_circuit` writes the circuit into a freshly initialised model,
in the standard CodeGen parameters (nothing about the architecture changes):

* reserved residual directions (orthogonal to each other, to the all-ones vector that
  LayerNorm removes, and to every token embedding): ``A`` carries the previous token,
  ``B`` the copied token;
* a previous-token head: dimension 0 of the first LayerNorm's output is made a constant
  (weight 0, bias 1), and the head's query and key read it with the key pre-rotated by one
  position, so the rotary embedding makes ``score(i, j)`` peak at ``j = i - 1``; its value
  projects the token's embedding onto ``A``;
* induction heads in the next layer: query = the current token projected as above, key =
  what ``A`` holds, value = the token's embedding projected onto ``B``;
* the unembedding reads ``B`` as "the copied token", and the other residual branches start
  small (× ``damp``), as GPT-2 style inits do, so the circuit is not drowned at the start.

On random token sequences, such a model copies a repeated span at init (about 3 in 4
tokens of a 6,000-word vocabulary; digits less, a one-token match being ambiguous over ten
symbols); fine-tuning then keeps and sharpens the circuit because copying lowers the loss.
Every weight stays trainable.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moss_agent.errors import UsageError

__all__ = [
    "CircuitHeads",
    "check_circuit_shape",
    "install_induction_circuit",
    "min_circuit_width",
    "protect_induction_circuit",
]


@dataclass(frozen=True)
class CircuitHeads:
    """Where the circuit lives in the model."""

    previous_token: tuple[int, int]
    """(layer, head) of the previous-token head."""
    induction: tuple[tuple[int, int], ...]
    """(layer, head) of each induction head."""
    second_previous: tuple[int, int] | None = None
    """(layer, head) of the head that attends two tokens back (only with bigram heads)."""
    bigram: tuple[tuple[int, int], ...] = ()
    """(layer, head) of each two-token induction head."""

    def to_config(self) -> dict[str, Any]:
        """The JSON form kept in config.json."""
        data: dict[str, Any] = {
            "previous_token": list(self.previous_token),
            "induction": [list(h) for h in self.induction],
        }
        if self.second_previous is not None:
            data["second_previous"] = list(self.second_previous)
            data["bigram"] = [list(h) for h in self.bigram]
        return data

    @classmethod
    def from_config(cls, data: dict[str, Any]) -> CircuitHeads:
        """Read :meth:`to_config`'s form."""
        layer, head = data["previous_token"]
        second = data.get("second_previous")
        return cls(
            (int(layer), int(head)),
            tuple((int(a), int(b)) for a, b in data["induction"]),
            (int(second[0]), int(second[1])) if second else None,
            tuple((int(a), int(b)) for a, b in data.get("bigram", ())),
        )

    @property
    def positional(self) -> tuple[tuple[int, int], ...]:
        """The heads that attend a fixed number of tokens back."""
        return (self.previous_token,) + ((self.second_previous,) if self.second_previous else ())


def _head_rows(attn: Any, head: int) -> tuple[int, int, int]:
    """First row of ``head``'s query, value and key in CodeGen's fused, 4-way interleaved qkv_proj."""
    head_dim = attn.head_dim
    # CodeGen always splits qkv 4 ways; transformers < 5.20 kept the 4 in forward(), not on the module.
    local = attn.embed_dim // getattr(attn, "mp_num", 4)
    per_chunk = local // head_dim
    base = (head // per_chunk) * 3 * local + (head % per_chunk) * head_dim
    return base, base + local, base + 2 * local


def _positional_head(
    block: Any, head: int, offset: int, strength: float, reads: Any, writes: Any, sigma: float
) -> None:
    """A head that attends ``offset`` tokens back and writes ``reads`` of that token into ``writes``.

    Its query and key read ln_1's constant dim 0, the key pre-rotated by ``offset`` positions;
    its value projects the token's embedding with ``reads`` (rows), its output puts the result
    on the residual directions ``writes`` (columns), scaled like an embedding.
    """
    attn = block.attn
    weight, out = attn.qkv_proj.weight, attn.out_proj.weight
    head_dim, rotary = attn.head_dim, attn.rotary_dim
    q0, v0, k0 = _head_rows(attn, head)
    for start in (q0, v0, k0):
        weight[start : start + head_dim].zero_()
    for pair in range(rotary // 2):
        theta = offset * 10000 ** (-2 * pair / rotary)
        weight[q0 + 2 * pair, 0] = strength
        weight[k0 + 2 * pair, 0] = strength * math.cos(theta)
        weight[k0 + 2 * pair + 1, 0] = strength * math.sin(theta)
    weight[v0 : v0 + reads.shape[0]] = reads
    columns = head * head_dim
    out[:, columns : columns + head_dim] = 0.0
    out[:, columns : columns + writes.shape[1]] = writes * sigma


def min_circuit_width(n_head: int, rotary_dim: int) -> int:
    """The smallest hidden size whose heads keep the 4 non-rotary dimensions the circuit matches on."""
    return (rotary_dim + 4) * n_head


def check_circuit_shape(
    *,
    n_layer: int,
    n_embd: int,
    n_head: int,
    rotary_dim: int,
    previous_layer: int = 0,
    induction_layer: int = 1,
    induction_heads: int = 2,
    bigram_heads: int = 0,
) -> None:
    """Refuse a model shape the circuit cannot be written into (before any model exists).

    Raises:
        UsageError: Which rule the shape breaks.
    """
    if not 0 <= previous_layer < induction_layer < n_layer:
        raise UsageError(f"need 0 <= previous_layer < induction_layer < n_layer ({n_layer})")
    head_dim = n_embd // n_head
    pass_dims = head_dim - rotary_dim
    if rotary_dim < 2 or pass_dims < 4:
        raise UsageError("the circuit needs rotary_dim >= 2 and at least 4 non-rotary dims per head")
    if not 1 <= induction_heads <= n_head:
        raise UsageError(f"induction_heads must be 1…{n_head}, got {induction_heads}")
    if induction_heads * pass_dims > head_dim:
        widest = None
        if induction_heads > 1:  # h * (d - rotary) <= d for d dims per head
            widest = induction_heads * rotary_dim // (induction_heads - 1) * n_head
        raise UsageError(
            f"hidden size {n_embd} gives {head_dim} dims per head, {pass_dims} of them not rotary; "
            f"{induction_heads} induction heads need {induction_heads} x {pass_dims} of one head's dims"
            + (f": use a hidden size of at most {widest}" if widest else "")
        )
    half = pass_dims // 2
    if (
        bigram_heads < 0
        or induction_heads + bigram_heads > n_head
        or (bigram_heads * half > induction_heads * pass_dims)
    ):
        raise UsageError("too many bigram_heads for the model's heads")
    if induction_heads * pass_dims + head_dim + bigram_heads * half + 2 > n_embd // 2:
        raise UsageError("hidden size too small for the circuit's reserved directions")


def install_induction_circuit(
    model: Any,
    *,
    previous_layer: int = 0,
    induction_layer: int = 1,
    induction_heads: int = 2,
    bigram_heads: int = 0,
    position_strength: float = 12.0,
    match_strength: float = 4.0,
    damp: float = 0.1,
    seed: int = 0,
) -> CircuitHeads:
    """Write a previous-token head and induction heads into a freshly initialised CodeGen/MOSS model.

    Args:
        model: A ``CodeGenForCausalLM`` (what moss-agent loads MOSS checkpoints as), in place.
        previous_layer: Layer of the previous-token head (its head 0).
        induction_layer: Layer of the induction heads (heads 0…n-1); after ``previous_layer``.
        induction_heads: How many induction heads; each matches on a different projection.
        bigram_heads: How many two-token induction heads (the next heads of ``induction_layer``):
            they match the current *and* the previous token, which settles the ambiguous
            one-token matches of numbers (after the first ``4`` of ``445``, a one-token head
            cannot tell whether ``4`` or ``5`` comes next). They need a second positional head
            (head 1 of ``previous_layer``, attending two tokens back).
        position_strength: Query/key scale of the positional heads (their sharpness).
        match_strength: Query/key scale of the induction heads.
        damp: Factor on every other residual branch's output projection at the start.
        seed: Seed of the reserved directions and projections.

    Returns:
        Where the heads are.

    Raises:
        UsageError: The model is not CodeGen-shaped or too small for the circuit.
    """
    import torch

    transformer: Any = getattr(model, "transformer", None)
    blocks = getattr(transformer, "h", None)
    if blocks is None or not hasattr(blocks[0].attn, "qkv_proj") or not hasattr(model, "lm_head"):
        raise UsageError("the induction circuit needs a CodeGen/MOSS model (transformer.h[i].attn.qkv_proj)")
    shape = blocks[0].attn  # every layer has the same shape
    check_circuit_shape(
        n_layer=len(blocks),
        n_embd=shape.embed_dim,
        n_head=shape.num_attention_heads,
        rotary_dim=shape.rotary_dim or 0,
        previous_layer=previous_layer,
        induction_layer=induction_layer,
        induction_heads=induction_heads,
        bigram_heads=bigram_heads,
    )
    attn = blocks[previous_layer].attn
    dim, head_dim, rotary = attn.embed_dim, attn.head_dim, attn.rotary_dim or 0
    pass_dims = head_dim - rotary
    half = pass_dims // 2
    a_dims, b_dims, c_dims = induction_heads * pass_dims, head_dim, bigram_heads * half

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        # An orthonormal basis orthogonal to e_0 (the constant) and to the all-ones vector.
        ones = torch.ones(dim, 1) / math.sqrt(dim)
        raw = torch.randn(dim, dim, generator=generator)
        q, _ = torch.linalg.qr(torch.cat([torch.eye(dim)[:, :1], ones, raw[:, 2:]], 1))
        basis = q[:, 2:]
        prev_dirs, copy_dirs = basis[:, :a_dims], basis[:, a_dims : a_dims + b_dims]
        second_dirs = basis[:, a_dims + b_dims : a_dims + b_dims + c_dims]
        content = basis[:, a_dims + b_dims + c_dims :]
        pick = torch.randperm(content.shape[1], generator=generator)
        match_proj = content[:, pick[:a_dims]].T  # (a_dims, dim)
        value_proj = content[:, pick[a_dims : a_dims + b_dims]].T  # (b_dims, dim)
        reserved = torch.cat([torch.eye(dim)[:, :1], prev_dirs, copy_dirs, second_dirs], 1)
        keep = torch.eye(dim) - reserved @ reserved.T

        embeddings = transformer.wte.weight
        embeddings.copy_(embeddings @ keep)
        sigma = float(embeddings.std())
        for block in blocks:
            block.attn.out_proj.weight.copy_(damp * keep @ block.attn.out_proj.weight)
            block.mlp.fc_out.weight.copy_(damp * keep @ block.mlp.fc_out.weight)
            block.mlp.fc_out.bias.copy_(damp * keep @ block.mlp.fc_out.bias)

        # Layer 0: head 0 writes the previous token into A; head 1 (bigram only) the one before into C.
        block = blocks[previous_layer]
        block.ln_1.weight[0] = 0.0
        block.ln_1.bias.zero_()
        block.ln_1.bias[0] = 1.0
        _positional_head(block, 0, 1, position_strength, match_proj, prev_dirs, sigma)
        if bigram_heads:
            _positional_head(block, 1, 2, position_strength, match_proj[:c_dims], second_dirs, sigma)

        # Layer 1: induction heads; each writes the token it finds into B, which the unembedding reads.
        block = blocks[induction_layer]
        weight, out = block.attn.qkv_proj.weight, block.attn.out_proj.weight
        for head in range(induction_heads + bigram_heads):
            q0, v0, k0 = _head_rows(block.attn, head)
            for start in (q0, v0, k0):
                weight[start : start + head_dim].zero_()
            if head < induction_heads:  # the current token against the token before each key
                rows = slice(head * pass_dims, (head + 1) * pass_dims)
                weight[q0 + rotary : q0 + head_dim] = match_proj[rows] * match_strength
                weight[k0 + rotary : k0 + head_dim] = prev_dirs[:, rows].T * match_strength
            else:  # … and also the previous token against the one two before each key
                rows = slice((head - induction_heads) * half, (head - induction_heads + 1) * half)
                mid = q0 + rotary + half
                weight[q0 + rotary : mid] = match_proj[rows] * match_strength
                weight[k0 + rotary : k0 + rotary + half] = prev_dirs[:, rows].T * match_strength
                weight[mid : q0 + rotary + 2 * half] = prev_dirs[:, rows].T * match_strength
                weight[k0 + rotary + half : k0 + rotary + 2 * half] = second_dirs[:, rows].T * match_strength
            weight[v0 : v0 + head_dim] = value_proj
            out[:, head * head_dim : (head + 1) * head_dim] = copy_dirs * sigma

        model.lm_head.weight.add_((embeddings / sigma) @ value_proj.T @ copy_dirs.T / math.sqrt(b_dims))
    return CircuitHeads(
        previous_token=(previous_layer, 0),
        induction=tuple((induction_layer, head) for head in range(induction_heads)),
        second_previous=(previous_layer, 1) if bigram_heads else None,
        bigram=tuple(
            (induction_layer, head) for head in range(induction_heads, induction_heads + bigram_heads)
        ),
    )


def protect_induction_circuit(model: Any, heads: CircuitHeads) -> Callable[[], None]:
    """Keep the circuit working while the rest of the model trains.

    Without this, the first hundred steps of SFT, dominated by the template text, turn the
    induction heads into no-op heads before copying pays off. Protected by gradient hooks:
    the LayerNorms in front of the circuit, the previous-token head, and the query and key
    rows of the induction heads (where they look); their values and outputs train, so the
    model can learn how loudly to copy. The returned function, called after every optimizer
    step, keeps the directions the circuit reads clean: the token embeddings stay out of
    the previous-token directions, and the other writers of the previous-token layer stay
    out of those and of the directions the induction heads match on, and what the hooks fix
    is restored (an optimizer's weight decay moves weights without a gradient). Everything else
    (embeddings, unembedding, other heads, MLPs) trains freely.

    Returns:
        ``enforce()``: re-project the weights; call it after each optimizer step.
    """
    import torch

    blocks = model.transformer.h
    masks: dict[Any, Any] = {}

    def mask_for(parameter: Any) -> Any:
        if parameter not in masks:
            masks[parameter] = torch.ones_like(parameter)
        return masks[parameter]

    prev_layer = heads.previous_token[0]
    for layer in {prev_layer, *(layer for layer, _ in heads.induction + heads.bigram)}:
        mask_for(blocks[layer].ln_1.weight).zero_()
        mask_for(blocks[layer].ln_1.bias).zero_()
    for layer, head in heads.positional + heads.induction + heads.bigram:
        attn = blocks[layer].attn
        head_dim = attn.head_dim
        query, value, key = _head_rows(attn, head)
        for start in (query, key):
            mask_for(attn.qkv_proj.weight)[start : start + head_dim] = 0.0
        if (layer, head) in heads.positional:  # what they write is what the keys read
            mask_for(attn.qkv_proj.weight)[value : value + head_dim] = 0.0
            mask_for(attn.out_proj.weight)[:, head * head_dim : (head + 1) * head_dim] = 0.0
    frozen = {}
    for parameter, mask in masks.items():
        parameter.register_hook(lambda grad, mask=mask: grad * mask.to(grad.device))
        frozen[parameter] = (mask.to(parameter.device).bool(), parameter.detach().clone())

    attn = blocks[prev_layer].attn
    head_dim = attn.head_dim
    others = torch.ones(attn.out_proj.weight.shape[1], dtype=torch.bool)
    written_parts, matched_parts = [], []
    with torch.no_grad():
        for _, head in heads.positional:
            columns = slice(head * head_dim, (head + 1) * head_dim)
            others[columns] = False
            _, v0, _ = _head_rows(attn, head)
            written = attn.out_proj.weight[:, columns].detach().float()
            written_parts.append(written[:, written.norm(dim=0) > 0])
            matched = attn.qkv_proj.weight[v0 : v0 + head_dim].detach().float()
            matched_parts.append(matched[matched.norm(dim=1) > 0].T)
        written = torch.cat(written_parts, 1)
        prev_dirs = torch.linalg.qr(written)[0]
        reserved = torch.linalg.qr(torch.cat([written, *matched_parts], 1))[0]
        device = attn.out_proj.weight.device
        eye = torch.eye(written.shape[0], device=device)
        keep_embedding = eye - prev_dirs @ prev_dirs.T
        keep_writers = eye - reserved @ reserved.T
    embeddings = model.transformer.wte.weight
    out_proj, mlp = attn.out_proj.weight, blocks[prev_layer].mlp

    def enforce() -> None:
        with torch.no_grad():
            for parameter, (trainable, value) in frozen.items():  # undo weight decay on what is fixed
                parameter.copy_(torch.where(trainable, parameter, value))
            embeddings.copy_(embeddings @ keep_embedding.to(embeddings.dtype))
            keep = keep_writers.to(out_proj.dtype)
            out_proj[:, others] = keep @ out_proj[:, others]
            mlp.fc_out.weight.copy_(keep @ mlp.fc_out.weight)
            mlp.fc_out.bias.copy_(keep @ mlp.fc_out.bias)

    enforce()
    return enforce
