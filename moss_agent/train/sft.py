"""Supervised fine-tuning of any causal LM on MOSS-format conversations.

Data: files in the MOSS SFT schema (``.json``, ``.jsonl`` or folders of them). The loss
is masked as MOSS's own ``finetune_moss.py`` does: no loss on the meta instruction nor
on the content of Results (the program writes them); the Results tags keep their loss.
Conversations longer than ``max_length`` keep their first turns that fit.

Training goes through accelerate, so ``accelerate launch -m moss_agent.cli finetune …``
scales to several GPUs. On one process, the token prefix shared by the examples of a batch
(MOSS's meta instruction) is encoded once per step and its keys/values broadcast over the
batch: identical loss and gradients, about half the compute for short plugin dialogues.

Checkpoints (model, optimizer, scheduler, RNG, step) are written every ``save_steps`` to
``OUT/checkpoints/step-N``; a re-run of the same command resumes from the latest one.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from moss_agent.conversations import TURN_FIELDS, iter_conversation_files, load_conversations
from moss_agent.errors import UsageError
from moss_agent.models.number_slots import SlotScheme
from moss_agent.models.tiny import CIRCUIT_CONFIG_KEY
from moss_agent.protocol import END_OF_RESULTS, RESULTS_TAG

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

__all__ = [
    "EncodedExample",
    "SFTConfig",
    "SectionLoss",
    "MIXED_PRECISIONS",
    "check_loss_weights",
    "encode_conversation",
    "finetune",
    "load_examples",
    "loss_weight_items",
    "parse_loss_weights",
    "resolve_mixed_precision",
    "section_losses",
]

IGNORE_INDEX = -100


@dataclass
class SFTConfig:
    """Options of a fine-tuning run."""

    model: str
    """The model to start from: a checkpoint folder or hub id."""
    data: list[str]
    """MOSS SFT conversation files or folders."""
    output_dir: str
    """Where checkpoints and the final model go."""
    eval_data: list[str] = field(default_factory=list)
    """Held-out conversations: loss reported at every save (or every ``eval_steps``)."""
    max_length: int = 1024
    """Most tokens of one example; later turns are dropped to fit."""
    batch_size: int = 8
    """Examples per step and process."""
    grad_accum: int = 1
    """Steps of gradient accumulation."""
    learning_rate: float = 2e-5
    """Peak learning rate (cosine decay after a linear warm-up)."""
    min_lr_ratio: float = 0.1
    """The learning rate decays to this fraction of the peak."""
    warmup_ratio: float = 0.03
    """Fraction of the steps spent warming up."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    epochs: float = 1.0
    """Passes over the data (fractions allowed); ignored when ``max_steps`` is set."""
    max_steps: int | None = None
    """Stop after this many optimizer steps."""
    max_minutes: float | None = None
    """Stop (and save) after this much wall time."""
    save_steps: int = 200
    """Checkpoint every this many steps."""
    eval_steps: int | None = None
    """Report the eval loss at the checkpoints of every this many steps and at the last step;
    None: at every checkpoint. Evaluating changes nothing the training does (no RNG, no state)."""
    log_steps: int = 20
    """Log the loss every this many steps."""
    seed: int = 0
    """Seed of data order and initialisation."""
    mask_human: bool = False
    """Also mask the user's messages (MOSS's script keeps their loss)."""
    loss_weights: dict[str, float] = field(default_factory=dict)
    """Loss weight of each turn section's tokens (``Human``, ``Inner Thoughts``, ``Commands``,
    ``Tool Responses``, ``MOSS``; 1 where not named). The loss is the weighted mean over the
    labelled tokens; the reported eval loss stays unweighted."""
    protect_circuit: bool = True
    """Keep a hand-written induction circuit (named in config.json) fixed while training."""
    share_prefix: bool = True
    """Encode the shared prompt prefix once per step (single process only)."""
    mixed_precision: str = "no"
    """accelerate's mixed precision: no, fp16 or bf16; or auto (:func:`resolve_mixed_precision`)."""
    resume: bool = True
    """Resume from the latest checkpoint in ``output_dir``."""
    trust_remote_code: bool = False
    """Allow code shipped in the starting checkpoint to run."""


@dataclass(frozen=True)
class EncodedExample:
    """Token ids and labels of one conversation (labels are ``-100`` where masked)."""

    input_ids: list[int]
    labels: list[int]
    weights: list[float] | None = None
    """Loss weight of each token; ``None``: all 1."""


def _masked_spans(
    data: dict[str, Any], mask_human: bool, number_slots: SlotScheme | int = 0
) -> tuple[str, list[tuple[int, int]], list[int], list[tuple[int, int, str]]]:
    """The conversation text, its masked spans, turn ends and named section spans.

    Masked spans and section spans are character ranges; section spans carry the section's
    name (one of ``TURN_FIELDS``). With ``number_slots``, numbers are written as the
    generation engine writes them for such a model (:mod:`moss_agent.models.number_slots`).
    """
    scheme = SlotScheme.coerce(number_slots)
    slots = scheme.new() if scheme else None

    def encoded(value: str) -> str:
        return value if slots is None else slots.encode(value)

    text = encoded(str(data["meta_instruction"]))
    spans = [(0, len(text))]
    turn_ends = []
    sections: list[tuple[int, int, str]] = []
    keys = sorted(data["chat"], key=lambda k: int(str(k).rsplit("_", 1)[-1]))
    for key in keys:
        turn = data["chat"][key]
        for name in TURN_FIELDS:
            value = encoded(str(turn[name]))
            if name == "Tool Responses":
                head = value.find(RESULTS_TAG) + len(RESULTS_TAG) + 1  # keep "<|Results|>:" learnt
                tail = value.rfind(END_OF_RESULTS)
                if head > len(RESULTS_TAG) and tail >= head:
                    spans.append((len(text) + head, len(text) + tail))
            elif name == "Human" and mask_human:
                spans.append((len(text), len(text) + len(value)))
            sections.append((len(text), len(text) + len(value), name))
            text += value
        turn_ends.append(len(text))
    return text, spans, turn_ends, sections


def encode_conversation(
    data: dict[str, Any],
    tokenizer: PreTrainedTokenizerBase,
    *,
    max_length: int = 1024,
    mask_human: bool = False,
    loss_weights: Mapping[str, float] | None = None,
    number_slots: SlotScheme | int = 0,
) -> EncodedExample | None:
    """Tokenize one conversation with MOSS's loss mask; ``None`` if not even a turn fits.

    ``loss_weights`` (section name to weight, 1 where not named) gives every token the
    weight of the turn section it starts in. ``number_slots``: the model's
    (:meth:`moss_agent.models.number_slots.SlotScheme.of` its config; a count N is
    ``SlotScheme(N)``); its numbers are written as slots.
    """
    tokenized = _tokenize(
        data,
        tokenizer,
        max_length=max_length,
        mask_human=mask_human,
        number_slots=number_slots,
    )
    if tokenized is None:
        return None
    ids, labels, offsets, sections = tokenized
    weights = None
    if loss_weights and any(w != 1.0 for w in loss_weights.values()):
        weights = _section_weights(offsets, sections, loss_weights)
    return EncodedExample(ids, labels, weights)


def _tokenize(
    data: dict[str, Any],
    tokenizer: PreTrainedTokenizerBase,
    *,
    max_length: int,
    mask_human: bool,
    number_slots: SlotScheme | int = 0,
) -> tuple[list[int], list[int], list[tuple[int, int]], list[tuple[int, int, str]]] | None:
    """Token ids, labels and character offsets of the turns that fit, and the turn sections.

    ``None`` if not even a turn fits.
    """
    text, spans, turn_ends, sections = _masked_spans(data, mask_human, number_slots)
    encoding = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
    ids: list[int] = encoding["input_ids"]
    offsets: list[tuple[int, int]] = encoding["offset_mapping"]
    keep = len(ids)
    if keep > max_length:
        fitting = [end for end in turn_ends if _tokens_before(offsets, end) <= max_length]
        if not fitting:
            return None
        keep = _tokens_before(offsets, fitting[-1])
    labels = []
    for token_id, (start, _end) in zip(ids[:keep], offsets[:keep]):
        masked = any(a <= start < b for a, b in spans)
        labels.append(IGNORE_INDEX if masked else token_id)
    return ids[:keep], labels, offsets[:keep], sections


def _section_weights(
    offsets: Sequence[tuple[int, int]],
    sections: Sequence[tuple[int, int, str]],
    loss_weights: Mapping[str, float],
) -> list[float]:
    """The weight of the section each token starts in (1 outside every section)."""
    return [
        1.0 if name is None else float(loss_weights.get(name, 1.0))
        for name in _token_sections(offsets, sections)
    ]


def _token_sections(
    offsets: Sequence[tuple[int, int]], sections: Sequence[tuple[int, int, str]]
) -> list[str | None]:
    """The name of the section each token starts in (``None`` outside every section).

    One pass: token offsets and sections both run left to right.
    """
    names: list[str | None] = []
    index = 0
    for start, _end in offsets:
        while index < len(sections) and sections[index][1] <= start:
            index += 1
        inside = index < len(sections) and sections[index][0] <= start
        names.append(sections[index][2] if inside else None)
    return names


def _tokens_before(offsets: Sequence[tuple[int, int]], char_end: int) -> int:
    return sum(1 for start, _ in offsets if start < char_end)


#: The command-line name of each turn section for :func:`parse_loss_weights`.
SECTION_FLAG_NAMES = {
    "Human": "human",
    "Inner Thoughts": "thoughts",
    "Commands": "commands",
    "Tool Responses": "results",
    "MOSS": "reply",
}


def loss_weight_items(loss_weights: Mapping[str, float]) -> list[str]:
    """``{"Commands": 4.0}`` → ``["commands=4"]``: the inverse of :func:`parse_loss_weights`."""
    return [f"{SECTION_FLAG_NAMES[name]}={weight:g}" for name, weight in loss_weights.items()]


def parse_loss_weights(items: Sequence[str]) -> dict[str, float]:
    """``["commands=4", "human=0.5"]`` → ``{"Commands": 4.0, "Human": 0.5}``.

    Section names are matched without regard to case, spaces, dashes or underscores; the
    short names of ``SECTION_FLAG_NAMES`` (``thoughts``, ``results``, ``reply``) also work.

    Raises:
        UsageError: An item that is not ``SECTION=WEIGHT``, or a bad name or weight.
    """

    def key(name: str) -> str:
        return "".join(ch for ch in name.lower() if ch.isalnum())

    names = {key(name): name for name in TURN_FIELDS} | {key(v): k for k, v in SECTION_FLAG_NAMES.items()}
    weights: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or key(name) not in names:
            raise UsageError(
                f"bad loss weight {item!r}: write SECTION=WEIGHT with SECTION one of "
                "human, thoughts, commands, results, reply"
            )
        try:
            weights[names[key(name)]] = float(value)
        except ValueError:
            raise UsageError(f"bad loss weight {item!r}: {value!r} is not a number") from None
    check_loss_weights(weights)
    return weights


#: The values of ``SFTConfig.mixed_precision``.
MIXED_PRECISIONS = ("no", "fp16", "bf16", "auto")


def resolve_mixed_precision(value: str, device: str = "cpu") -> str:
    """``value`` checked, and ``auto`` decided for ``device`` ("cpu" or "cuda").

    ``auto`` is bf16 where the hardware computes it natively (a CPU with AVX-512 BF16 or AMX, a
    GPU that supports it) and ``no`` elsewhere: emulated bf16 is slower than float32. On this
    project's 2-core CPU, bf16 (with float32 attention, :func:`_float32_attention`) made an SFT
    step of the recipe 1.5x faster at the same loss curve.

    Raises:
        UsageError: An unknown value.
    """
    if value not in MIXED_PRECISIONS:
        raise UsageError(f"mixed precision must be one of {', '.join(MIXED_PRECISIONS)}, got {value!r}")
    if value != "auto":
        return value
    import torch

    if device == "cuda":
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"
    try:  # oneDNN's own check (AVX-512 BF16, AMX); private, so guarded
        native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        native = False
    return "bf16" if native else "no"


def check_loss_weights(loss_weights: Mapping[str, float]) -> None:
    """Refuse unknown section names and weights that are negative, not finite, or all zero.

    Raises:
        UsageError: A bad name or weight.
    """
    for name, weight in loss_weights.items():
        if name not in TURN_FIELDS:
            raise UsageError(f"unknown loss-weight section {name!r}; choose from {', '.join(TURN_FIELDS)}")
        if not math.isfinite(weight) or weight < 0:
            raise UsageError(f"loss weight of {name} must be a finite number >= 0, not {weight}")
    if loss_weights and all(loss_weights.get(name, 1.0) == 0 for name in TURN_FIELDS):
        raise UsageError("every loss weight is 0: nothing would be learnt")


def load_examples(
    paths: Sequence[str],
    tokenizer: PreTrainedTokenizerBase,
    *,
    max_length: int,
    mask_human: bool,
    loss_weights: Mapping[str, float] | None = None,
    number_slots: SlotScheme | int = 0,
) -> list[EncodedExample]:
    """Encode every conversation under ``paths`` (see :func:`encode_conversation`).

    Raises:
        UsageError: No conversations were found, or a file is not valid JSON.
    """
    examples = []
    for path in iter_conversation_files([Path(p) for p in paths]):
        for source, data in load_conversations(path):
            if isinstance(data, Exception):
                raise UsageError(f"{source}: {data}")
            example = encode_conversation(
                data,
                tokenizer,
                max_length=max_length,
                mask_human=mask_human,
                loss_weights=loss_weights,
                number_slots=number_slots,
            )
            if example is not None and any(label != IGNORE_INDEX for label in example.labels):
                examples.append(example)
    if not examples:
        raise UsageError(f"no trainable conversations found in {list(paths)}")
    return examples


def common_prefix_length(examples: Sequence[EncodedExample]) -> int:
    """Tokens shared by every example at its start and masked in all of them."""
    first = examples[0]
    length = len(first.input_ids) - 1
    for example in examples[1:]:
        length = min(length, len(example.input_ids) - 1)
        i = 0
        while i < length and example.input_ids[i] == first.input_ids[i]:
            i += 1
        length = i
    for example in examples:
        unmasked = next((i for i in range(length) if example.labels[i] != IGNORE_INDEX), length)
        length = min(length, unmasked)
    return length


def _batches(examples: Sequence[EncodedExample], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Indices grouped by similar length (less padding), batches shuffled.

    Only within windows of ``50 * batch_size`` shuffled examples, so batches stay mixed: grouping
    them by meta instruction too (so that whole instructions are shared) or by length over
    windows ten times larger padded less and ran 12 % faster per step, but learnt less per step
    (validation loss 0.751 against 0.621 after 600 steps of the recipe).
    """
    order = list(range(len(examples)))
    rng.shuffle(order)
    chunk = batch_size * 50
    batches = []
    for start in range(0, len(order), chunk):
        window = sorted(order[start : start + chunk], key=lambda i: len(examples[i].input_ids))
        batches += [window[i : i + batch_size] for i in range(0, len(window), batch_size)]
    rng.shuffle(batches)
    return batches


def _collate(
    examples: Sequence[EncodedExample], skip: int, pad_id: int, *, weighted: bool = False
) -> dict[str, torch.Tensor]:
    """A padded batch; with ``weighted`` and weighted examples, also their ``weights``."""
    import torch

    width = max(len(ex.input_ids) for ex in examples) - skip
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    weighted = weighted and any(ex.weights is not None for ex in examples)
    weights = torch.ones((len(examples), width)) if weighted else None
    for row, ex in enumerate(examples):
        n = len(ex.input_ids) - skip
        ids[row, :n] = torch.tensor(ex.input_ids[skip:])
        labels[row, :n] = torch.tensor(ex.labels[skip:])
        mask[row, :n] = 1
        if weights is not None and ex.weights is not None:
            weights[row, :n] = torch.tensor(ex.weights[skip:])
    batch = {"input_ids": ids, "labels": labels, "attention_mask": mask}
    if weights is not None:
        batch["weights"] = weights
    return batch


def _step_inputs(
    chosen: Sequence[EncodedExample], pad_id: int, *, share: bool = True, device: Any = "cpu"
) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
    """A training step's shared prompt prefix (None: not shared) and padded batch, for :func:`_loss`."""
    import torch

    skip = common_prefix_length(chosen) if share else 0
    skip = skip if skip >= 8 else 0  # too short to be worth a pass of its own
    prefix = torch.tensor([chosen[0].input_ids[:skip]], device=device) if skip else None
    batch = _collate(chosen, skip, pad_id, weighted=True)
    return prefix, {k: v.to(device) for k, v in batch.items()}


def _loss(model: Any, batch: dict[str, torch.Tensor], prefix: torch.Tensor | None) -> torch.Tensor:
    """Causal LM loss; with a shared prefix, its keys/values are computed once.

    Where it is safe (see :func:`_head_and_body`), the LM head runs only at the positions
    that have a label: with MOSS's mask most positions have none, and the head is about a
    quarter of a small model's compute.
    """
    import torch

    weights = batch.get("weights")
    parts = _head_and_body(model)
    if prefix is None:
        inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        if parts is None:
            if weights is None:
                return cast("torch.Tensor", model(**inputs, labels=batch["labels"]).loss)
            logits = model(**inputs).logits[:, :-1]
            return _labelled_loss(None, logits, batch["labels"][:, 1:], weights[:, 1:])
        body, head = parts
        hidden = body(**inputs)[0][:, :-1]
        shifted = None if weights is None else weights[:, 1:]
        return _labelled_loss(head, hidden, batch["labels"][:, 1:], shifted)
    from transformers import DynamicCache

    from moss_agent.models.engine import cache_keyword

    rows = batch["input_ids"].shape[0]
    body = parts[0] if parts is not None else model
    cache_kwarg = cache_keyword(body)
    start_cache: Any = DynamicCache()  # filled in place by the prefix's forward pass
    start = body(input_ids=prefix, use_cache=True, **{cache_kwarg: start_cache})
    cache = DynamicCache()
    for index, layer in enumerate(start_cache.layers):
        cache.update(layer.keys.expand(rows, -1, -1, -1), layer.values.expand(rows, -1, -1, -1), index)
    p = prefix.shape[1]
    width = batch["input_ids"].shape[1]
    positions = torch.arange(p, p + width, device=prefix.device).unsqueeze(0).expand(rows, -1)
    mask = torch.cat(
        [torch.ones(rows, p, dtype=torch.long, device=prefix.device), batch["attention_mask"]], 1
    )
    out = body(
        input_ids=batch["input_ids"], position_ids=positions, attention_mask=mask, **{cache_kwarg: cache}
    )
    if parts is None:  # logits straight from the model
        states, last, head = out.logits, start.logits, None
    else:
        states, last, head = out[0], start[0], parts[1]
    states = torch.cat([last[:, -1:].expand(rows, -1, -1), states[:, :-1]], 1)
    return _labelled_loss(head, states, batch["labels"], weights)


#: Models whose LM head is a plain linear map of the base model's last hidden state.
_PLAIN_HEAD_TYPES = frozenset({"moss", "codegen", "gpt2", "gptj", "gpt_neox", "llama", "mistral", "qwen2"})


def _head_and_body(model: Any) -> tuple[Any, Any] | None:
    """(base model, LM head) when logits are ``head(base(...)[0])``; None otherwise.

    Only for an unwrapped model (a DistributedDataParallel wrapper must see the whole
    forward pass) of a known architecture with no logit scaling.
    """
    from transformers import PreTrainedModel

    config = getattr(model, "config", None)
    if not isinstance(model, PreTrainedModel) or config is None:
        return None
    if config.model_type not in _PLAIN_HEAD_TYPES or getattr(config, "final_logit_softcapping", None):
        return None
    head = model.get_output_embeddings()
    body = getattr(model, model.base_model_prefix, None)
    if head is None or body is None or body is model:
        return None
    return body, head


def _labelled_loss(
    head: Any, states: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Cross entropy at the labelled positions (their weighted mean with ``weights``).

    ``states`` are hidden states (or logits without a head).
    """
    import torch.nn.functional as F  # noqa: N812

    keep = labels != IGNORE_INDEX
    if weights is not None:
        keep = keep & (weights > 0)
    if not bool(keep.any()):  # nothing to learn in this batch: a zero that still has a graph
        return states.sum() * 0.0
    selected = states[keep]
    logits = head(selected) if head is not None else selected
    if weights is None:
        return F.cross_entropy(logits.float(), labels[keep])
    losses = F.cross_entropy(logits.float(), labels[keep], reduction="none")
    kept = weights[keep].to(losses.dtype)
    return (losses * kept).sum() / kept.sum()


def _fuse_activations(model: Any) -> int:
    """Swap the Python ``gelu_new`` of CodeGen/MOSS blocks for PyTorch's fused tanh GELU.

    The same function (they differ by float rounding, about 1e-7), with one kernel instead of
    eight element-wise ones each way: about a tenth of a small model's training step on a CPU.
    Only modules change; the saved config keeps ``gelu_new``. Returns how many were swapped.
    """
    import torch
    from transformers.activations import NewGELUActivation

    class FusedTanhGELU(torch.nn.Module):  # transformers' own name for it changed across versions
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.gelu(x, approximate="tanh")

    swapped = 0
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if type(child) is NewGELUActivation:
                setattr(module, name, FusedTanhGELU())
                swapped += 1
    return swapped


#: The attention implementation of a mixed-precision run on the CPU (:func:`_float32_attention`).
FLOAT32_SDPA = "sdpa_float32"


def _float32_attention(model: Any) -> str | None:
    """Run a model's SDPA attention in float32 inside a CPU autocast; return the implementation it had.

    Under ``torch.autocast("cpu", dtype=torch.bfloat16)`` the matrix products of the tiny model
    ran 3x faster, but SDPA's backward ran slower than in float32. Measured on this project's
    2-core CPU (``bench/sft_precision.py``, 30 steps of the recipe's model and batches): float32
    0.48 s a step, bf16 0.36 s, bf16 with float32 attention 0.33 s. Returns None (and changes
    nothing) for a model without SDPA attention.
    """
    import torch
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

    config = getattr(model, "config", None)
    before = getattr(config, "_attn_implementation", None)
    if before != "sdpa" or not hasattr(model, "set_attn_implementation"):
        return None

    def attention(module: Any, query: Any, key: Any, value: Any, mask: Any, **kwargs: Any) -> Any:
        dtype = query.dtype
        with torch.autocast("cpu", enabled=False):
            out, weights = sdpa_attention_forward(
                module, query.float(), key.float(), value.float(), mask, **kwargs
            )
        return out.to(dtype), weights

    AttentionInterface.register(FLOAT32_SDPA, attention)
    # the masks SDPA takes: without a mask function of its own, transformers would pass no mask
    # and SDPA's is_causal aligns a query block after a cached prefix wrongly (top left)
    AttentionMaskInterface.register(FLOAT32_SDPA, ALL_MASK_ATTENTION_FUNCTIONS["sdpa"])
    model.set_attn_implementation(FLOAT32_SDPA)
    return str(before)


def _latest_checkpoint(output_dir: Path) -> Path | None:
    folder = output_dir / "checkpoints"
    candidates = (
        [p for p in folder.glob("step-*") if (p / "trainer_state.json").is_file()] if folder.is_dir() else []
    )
    return max(candidates, key=lambda p: int(p.name.split("-")[1]), default=None)


def _eval_loss(model: Any, examples: Sequence[EncodedExample], batch_size: int, pad_id: int) -> float:
    """Mean cross entropy per labelled token of ``examples`` (no gradients).

    Batches group examples of similar length (the mean does not depend on the order) and the LM
    head runs only where there is a label, as in training. Measured on the 300 validation
    conversations of a ``--wide-phrasings --context-turns`` recipe run (2-core CPU): 11 s a pass,
    against 32 s in file order with full logits, about 6 minutes over the recipe's 17 passes.
    """
    import torch

    model.eval()
    ordered = sorted(examples, key=lambda ex: len(ex.input_ids))
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(ordered), batch_size):
            batch = _collate(ordered[start : start + batch_size], 0, pad_id)
            batch = {k: v.to(model.device) for k, v in batch.items()}
            n = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
            if n:
                total += float(_loss(model, batch, None)) * n
                count += n
    model.train()
    return total / max(count, 1)


@dataclass(frozen=True)
class SectionLoss:
    """Teacher-forced loss of one turn section over a set of conversations."""

    mean: float
    """Mean cross entropy per labelled token (nats)."""
    tokens: int
    """Labelled tokens it averages over."""


def section_losses(
    model: Any,
    tokenizer: PreTrainedTokenizerBase,
    conversations: Iterable[dict[str, Any]],
    *,
    max_length: int = 1024,
) -> dict[str, SectionLoss]:
    """Teacher-forced loss of each turn section (``human``, ``thoughts``, ``commands``, ``reply``…).

    The tokens are those training learns (MOSS's mask), each counted in the section it starts
    in, so the per-token mean over all sections is the training loss of these conversations.
    A quick measure of what a checkpoint has learnt, e.g. the loss on the calls of a held-out
    split, without generating.
    """
    import torch

    totals: dict[str, float] = {}
    counts: dict[str, int] = {}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for data in conversations:
                tokenized = _tokenize(
                    data,
                    tokenizer,
                    max_length=max_length,
                    mask_human=False,
                    number_slots=SlotScheme.of(model.config),
                )
                if tokenized is None:
                    continue
                token_ids, labels, offsets, sections = tokenized
                names = _token_sections(offsets, sections)
                ids = torch.tensor([token_ids], device=model.device)
                logits = model(input_ids=ids).logits[0, :-1].float()
                losses = torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="none").tolist()
                for position in range(1, len(token_ids)):
                    name = names[position]
                    if labels[position] == IGNORE_INDEX or name is None:
                        continue
                    key = SECTION_FLAG_NAMES[name]
                    totals[key] = totals.get(key, 0.0) + losses[position - 1]
                    counts[key] = counts.get(key, 0) + 1
    finally:
        model.train(was_training)
    return {key: SectionLoss(totals[key] / counts[key], counts[key]) for key in counts}


def finetune(config: SFTConfig, *, progress: bool = True) -> Path:
    """Run SFT; return the folder of the final model (``OUT/final``).

    Raises:
        UsageError: Bad options or data.
    """
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm

    from moss_agent.models.ensemble import ensemble_members
    from moss_agent.models.loading import load_model

    if config.batch_size < 1 or config.grad_accum < 1 or config.max_length < 16:
        raise UsageError("batch_size and grad_accum must be >= 1 and max_length >= 16")
    if ensemble_members(config.model) is not None:
        raise UsageError(
            f"{config.model} is an ensemble of several models (ensemble.json); fine-tune one of its "
            "member folders (member-0, ...) instead."
        )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    config = replace(config, mixed_precision=resolve_mixed_precision(config.mixed_precision, device))
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    # bf16 needs no loss scaling: its autocast is ours (below), so accelerate's process-wide state
    # keeps "no" and one process can fine-tune in float32 and in bf16 one after the other
    accelerator = Accelerator(
        gradient_accumulation_steps=config.grad_accum,
        mixed_precision="fp16" if config.mixed_precision == "fp16" else "no",
    )
    set_seed(config.seed)
    loaded = load_model(
        config.model,
        dtype="float32",
        device="cpu" if accelerator.device.type == "cpu" else "auto",
        trust_remote_code=config.trust_remote_code,
    )
    model, tokenizer = loaded.model, loaded.tokenizer
    model.train()
    _fuse_activations(model)
    restore_attention = (
        _float32_attention(model)
        if config.mixed_precision != "no" and accelerator.device.type == "cpu"
        else None
    )

    def precision() -> Any:
        if config.mixed_precision == "bf16":
            return torch.autocast(accelerator.device.type, dtype=torch.bfloat16)
        return accelerator.autocast()  # fp16 as accelerate sets it up; nothing for "no"

    circuit = getattr(model.config, CIRCUIT_CONFIG_KEY, None)
    enforce_circuit: Callable[[], None] | None
    if circuit and config.protect_circuit:
        from moss_agent.train.induction import CircuitHeads, protect_induction_circuit

        enforce_circuit = protect_induction_circuit(model, CircuitHeads.from_config(circuit))
    else:
        enforce_circuit = None
    check_loss_weights(config.loss_weights)
    slots = SlotScheme.of(model.config)
    examples = load_examples(
        config.data,
        tokenizer,
        max_length=config.max_length,
        mask_human=config.mask_human,
        loss_weights=config.loss_weights,
        number_slots=slots,
    )
    eval_examples = (
        load_examples(
            config.eval_data,
            tokenizer,
            max_length=config.max_length,
            mask_human=config.mask_human,
            number_slots=slots,
        )
        if config.eval_data
        else []
    )
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    share = config.share_prefix and accelerator.num_processes == 1
    steps_per_epoch = math.ceil(
        len(examples) / config.batch_size / accelerator.num_processes / config.grad_accum
    )
    total_steps = config.max_steps or max(1, math.ceil(steps_per_epoch * config.epochs))
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay, betas=(0.9, 0.95)
    )
    warmup = max(1, int(total_steps * config.warmup_ratio))

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress_ratio = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (
            1 + math.cos(math.pi * progress_ratio)
        )

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    step = 0
    latest = _latest_checkpoint(output_dir) if config.resume else None
    if latest is not None:
        accelerator.load_state(str(latest))
        step = json.loads((latest / "trainer_state.json").read_text())["step"]
        accelerator.print(f"resumed from {latest} at step {step}")
    (output_dir / "sft_config.json").write_text(json.dumps(asdict(config), indent=2))
    log_path = output_dir / "train_log.jsonl"
    bar = tqdm(
        total=total_steps,
        initial=step,
        disable=not (progress and accelerator.is_main_process),
        desc="finetune",
        unit="step",
    )
    started = time.monotonic()
    rank, world = accelerator.process_index, accelerator.num_processes

    def batch_stream() -> Iterator[list[int]]:
        epoch = 0
        while True:
            batches = _batches(examples, config.batch_size, random.Random(config.seed + epoch))
            yield from batches[rank::world]
            epoch += 1

    stream = batch_stream()
    for _ in range(step * config.grad_accum):  # resume: skip the batches already trained on
        next(stream)
    running = 0.0
    while step < total_steps:
        for _ in range(config.grad_accum):
            chosen = [examples[i] for i in next(stream)]
            prefix, batch = _step_inputs(chosen, pad_id, share=share, device=accelerator.device)
            with accelerator.accumulate(model):
                with precision():  # the loss calls the body and head, not the model's forward
                    loss = _loss(model, batch, prefix)
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                if enforce_circuit is not None:
                    enforce_circuit()
                scheduler.step()
                optimizer.zero_grad()
            running += float(loss.detach()) / config.grad_accum
        step += 1
        bar.update(1)
        out_of_time = config.max_minutes is not None and time.monotonic() - started > config.max_minutes * 60
        if step % config.log_steps == 0 or step == total_steps or out_of_time:
            record = {
                "step": step,
                "loss": running / (config.log_steps if step % config.log_steps == 0 else 1),
                "lr": scheduler.get_last_lr()[0],
                "elapsed_s": round(time.monotonic() - started, 1),
            }
            bar.set_postfix(loss=f"{record['loss']:.4f}")
            if accelerator.is_main_process:
                with log_path.open("a") as log:
                    log.write(json.dumps(record) + "\n")
            running = 0.0
        last = step == total_steps or out_of_time
        if step % config.save_steps == 0 or last:
            evaluate = last or config.eval_steps is None or step % config.eval_steps == 0
            scored = eval_examples if evaluate else []
            _save_checkpoint(accelerator, output_dir, step, scored, model, config, pad_id)
        if out_of_time:
            accelerator.print(f"stopping at step {step}: max_minutes reached")
            break
    bar.close()
    final = output_dir / "final"
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        unwrapped = accelerator.unwrap_model(model)
        if restore_attention is not None:
            unwrapped.set_attn_implementation(restore_attention)
        unwrapped.save_pretrained(final, safe_serialization=True)
        tokenizer.save_pretrained(final)
        _restore_moss_config(Path(config.model), final)
    return final


def _save_checkpoint(
    accelerator: Any,
    output_dir: Path,
    step: int,
    eval_examples: Sequence[EncodedExample],
    model: Any,
    config: SFTConfig,
    pad_id: int,
) -> None:
    folder = output_dir / "checkpoints" / f"step-{step}"
    accelerator.save_state(str(folder))
    state: dict[str, Any] = {"step": step}
    if eval_examples:
        state["eval_loss"] = _eval_loss(
            accelerator.unwrap_model(model), eval_examples, config.batch_size, pad_id
        )
        accelerator.print(f"step {step}: eval loss {state['eval_loss']:.4f}")
    if accelerator.is_main_process:
        (folder / "trainer_state.json").write_text(json.dumps(state))
        with (output_dir / "train_log.jsonl").open("a") as log:
            log.write(json.dumps({"checkpoint": folder.name, **state}) + "\n")
        checkpoints = sorted(
            (output_dir / "checkpoints").glob("step-*"), key=lambda p: int(p.name.split("-")[1])
        )
        for old in checkpoints[:-2]:  # keep the last two
            import shutil

            shutil.rmtree(old, ignore_errors=True)


def _restore_moss_config(source: Path, final: Path) -> None:
    """Keep ``model_type: moss`` (and MOSS's auto_map) in the saved config."""
    source_config = source / "config.json"
    if not source_config.is_file():
        return
    original = json.loads(source_config.read_text())
    saved = json.loads((final / "config.json").read_text())
    for key in ("model_type", "architectures", "auto_map"):
        if key in original:
            saved[key] = original[key]
    (final / "config.json").write_text(json.dumps(saved, indent=2, sort_keys=True))
