"""The generation engine: a decoding loop with token-level stops, streaming, KV-cache reuse and batching.

The loop is written here rather than through ``model.generate`` because the engine
needs per-token control: it stops the moment a MOSS end token is sampled, checks stop
strings on the decoded tail, holds back text that may be the start of a stop while
streaming, and keeps the keys/values of the last sequence so that the next prompt
(the second call of a plugin turn, the next turn of a conversation) only encodes what
is new. For a model with number slots (:mod:`moss_agent.models.number_slots`) it encodes
the prompt with slots, writes generated slots back as numbers, and never lets the model
write a slot that no number has.
"""

from __future__ import annotations

import dataclasses
import inspect
import threading
import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from moss_agent.errors import UsageError
from moss_agent.models._decoding import _eos_token_ids, _IncrementalDecoder, _Stops, _TokenPicker
from moss_agent.models.number_slots import NumberSlots, SlotScheme
from moss_agent.protocol import COMMANDS_TAG, END_OF_COMMANDS, END_OF_HUMAN, HUMAN_TAG

if TYPE_CHECKING:
    import torch

    from moss_agent.models.call_constraint import CallConstraint
    from moss_agent.models.copy_bias import CopyBias
    from moss_agent.models.loading import LoadedModel

__all__ = [
    "FinishReason",
    "Generation",
    "GenerationEngine",
    "SamplingParams",
    "TextStream",
    "Timings",
    "cache_keyword",
]

FinishReason = Literal["stop", "length"]

#: Kinds of literal a declared tool's parameters take: tool → parameter → kinds (``"int|null"``).
CallTypes = Mapping[str, Mapping[str, str]]


def cache_keyword(model: Any) -> str:
    """The keyword under which ``model.forward`` takes a KV cache.

    transformers 5.2x renamed ``past_key_values`` to ``cache`` (the old name is removed in 5.40).
    """
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


@dataclass(frozen=True)
class SamplingParams:
    """How to pick tokens; the defaults are MOSS's own (its demo and CLI)."""

    max_new_tokens: int = 512
    """Most tokens to generate."""
    temperature: float = 0.7
    """Softmax temperature; 0 means greedy."""
    top_p: float = 0.8
    """Nucleus sampling: keep the most likely tokens up to this total probability."""
    top_k: int | None = None
    """Keep only the k most likely tokens (None: no limit)."""
    repetition_penalty: float = 1.02
    """Divide the logits of tokens already in the sequence by this (CTRL-style); 1 turns it off."""
    do_sample: bool = True
    """Sample; False (or temperature 0) picks the most likely token (greedy)."""
    seed: int | None = None
    """Seed of the sampler, for reproducible samples."""
    copy_bias: float | None = None
    """Inside Commands, add this to the score of the token that continues the span of the user's
    turns a call is copying (:mod:`moss_agent.models.copy_bias`); 0 turns it off; None: the
    model's own default (``copy_bias`` in its folder's generation_config.json, else 0)."""

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise UsageError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}.")
        if self.temperature < 0:
            raise UsageError(f"temperature must be >= 0, got {self.temperature}.")
        if not 0 < self.top_p <= 1:
            raise UsageError(f"top_p must be in (0, 1], got {self.top_p}.")
        if self.top_k is not None and self.top_k < 1:
            raise UsageError(f"top_k must be at least 1 (or None), got {self.top_k}.")
        if self.repetition_penalty <= 0:
            raise UsageError(f"repetition_penalty must be > 0, got {self.repetition_penalty}.")
        if self.copy_bias is not None and not self.copy_bias >= 0:
            raise UsageError(f"copy_bias must be >= 0 (or None), got {self.copy_bias}.")

    @property
    def greedy(self) -> bool:
        """Whether tokens are picked by argmax."""
        return not self.do_sample or self.temperature == 0

    def replace(self, **changes: Any) -> SamplingParams:
        """A copy with some fields changed; ``None`` values are ignored except for top_k and seed.

        Raises:
            UsageError: A name that is not a sampling parameter.
        """
        names = {field.name for field in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise UsageError(f"Unknown sampling parameter(s) {unknown}; use {sorted(names)}.")
        kept = {k: v for k, v in changes.items() if v is not None or k in ("top_k", "seed")}
        return dataclasses.replace(self, **kept)


@dataclass(frozen=True)
class Timings:
    """Wall-clock seconds of one generation."""

    prefill_s: float
    """Encoding the prompt (the part not taken from the cache) up to the first logits."""
    decode_s: float
    """Generating the tokens after the first."""

    @property
    def total_s(self) -> float:
        """Prefill plus decode."""
        return self.prefill_s + self.decode_s


@dataclass(frozen=True)
class Generation:
    """The result of one generation."""

    text: str
    """Generated text, the stop and anything after it removed."""
    stop: str | None
    """The stop string or end token that ended generation; None when it ran out of tokens."""
    finish_reason: FinishReason
    """``"stop"`` (a stop or the end-of-sequence token) or ``"length"`` (the token budget)."""
    prompt_tokens: int
    """Tokens in the prompt."""
    completion_tokens: int
    """Tokens generated, the stopping token included."""
    cached_tokens: int
    """Prompt tokens whose keys/values came from the cache instead of being encoded."""
    timings: Timings
    """Where the time went."""

    @property
    def tokens_per_s(self) -> float:
        """Generated tokens per second, prefill included."""
        return self.completion_tokens / self.timings.total_s if self.timings.total_s > 0 else 0.0


class TextStream(Iterator[str]):
    """Text deltas of a generation; :attr:`generation` is set once it is exhausted."""

    def __init__(self, steps: Generator[str, None, Generation]) -> None:
        self._steps = steps
        self.generation: Generation | None = None
        """The finished generation, once iteration has ended."""

    def __iter__(self) -> TextStream:
        return self

    def __next__(self) -> str:
        try:
            return next(self._steps)
        except StopIteration as done:
            self.generation = done.value
            raise StopIteration from None

    def close(self) -> None:
        """Stop generating; the engine keeps the cache of what was generated so far."""
        self._steps.close()


class GenerationEngine:
    """Generates text from a loaded causal LM; thread-safe (one generation at a time).

    Args:
        loaded: What :func:`~moss_agent.models.loading.load_model` returned.
        params: Default sampling parameters (MOSS's by default).
        reuse_cache: Keep the keys/values of the last sequence and reuse them for the
            shared token prefix of the next prompt.
    """

    def __init__(
        self, loaded: LoadedModel, *, params: SamplingParams | None = None, reuse_cache: bool = True
    ) -> None:
        self.loaded = loaded
        self.params = params or SamplingParams()
        self.reuse_cache = reuse_cache
        self.reused_tokens = 0
        """Prompt tokens taken from the cache since the engine was made."""
        self._lock = threading.Lock()
        self._owner: int | None = None
        self._cache: Any = None
        self._cached_ids: list[int] = []
        tokenizer = loaded.tokenizer
        self._vocab_limit = len(tokenizer)
        self._eos_ids = _eos_token_ids(loaded)
        params_of_forward = inspect.signature(loaded.model.forward).parameters
        # transformers 5 renamed num_logits_to_keep to logits_to_keep.
        self._cache_kwarg = cache_keyword(loaded.model)
        self._keep_kwarg = next(
            (name for name in ("logits_to_keep", "num_logits_to_keep") if name in params_of_forward), None
        )
        config = loaded.config
        self.max_positions: int | None = getattr(config, "n_positions", None) or getattr(
            config, "max_position_embeddings", None
        )
        self.default_copy_bias = _default_copy_bias(loaded)
        """The copy bias of generations whose parameters leave it None (the model's default)."""
        self._human_ids = list(tokenizer.encode(HUMAN_TAG, add_special_tokens=False))
        self._commands_ids = list(tokenizer.encode(COMMANDS_TAG, add_special_tokens=False))
        self._end_of_human_ids = list(tokenizer.encode(END_OF_HUMAN, add_special_tokens=False))
        self._slot_scheme = SlotScheme.of(config)
        self._slot_ids = self._slot_scheme.token_ids(tokenizer)
        self._token_texts: list[str] | None = None
        self._constraint_cache: dict[Any, Any] = {}
        # the token ids that end a Commands section (<eoc> when it is one token, end of text)
        self._commands_end_ids = sorted(_Stops(tokenizer, [END_OF_COMMANDS], self._eos_ids).token_stops)

    @classmethod
    def from_pretrained(
        cls, model: str, *, reuse_cache: bool = True, **load_options: Any
    ) -> GenerationEngine:
        """Load ``model`` with :func:`~moss_agent.models.loading.load_model` and wrap it."""
        from moss_agent.models.loading import load_model

        return cls(load_model(model, **load_options), reuse_cache=reuse_cache)

    # --- public API ------------------------------------------------------------------

    def generate(
        self,
        prompt: str,
        *,
        stop: Sequence[str] = (),
        params: SamplingParams | None = None,
        reuse_cache: bool | None = None,
        constrain_calls: bool = False,
        call_types: CallTypes | None = None,
    ) -> Generation:
        """Generate a continuation of ``prompt``.

        Args:
            prompt: The full prompt text.
            stop: Stop strings; generation ends at the first and it is removed with
                anything after it. A stop that is one special token (``<eoc>``, ``<eom>``)
                is matched on the token id the moment it is sampled. The model's
                end-of-sequence token always stops.
            params: Sampling parameters for this call (default: the engine's).
            reuse_cache: Override the engine's ``reuse_cache`` for this call.
            constrain_calls: In a Commands section, let through only enabled tool names,
                declared parameter names and literal values
                (:mod:`moss_agent.models.call_constraint`).
            call_types: With ``constrain_calls``, the kinds of literal each declared tool's
                parameters take (tool → parameter → :func:`~moss_agent.models.call_constraint.literal_kinds`,
                e.g. ``{"add": {"a": "int"}}``); a parameter not named takes any literal.

        Returns:
            The generation.
        """
        steps = self._run(prompt, stop, params, reuse_cache, constrain_calls, call_types)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return done.value

    def stream(
        self,
        prompt: str,
        *,
        stop: Sequence[str] = (),
        params: SamplingParams | None = None,
        reuse_cache: bool | None = None,
        constrain_calls: bool = False,
        call_types: CallTypes | None = None,
    ) -> TextStream:
        """Generate like :meth:`generate`, yielding text deltas as tokens come.

        A delta never ends inside a UTF-8 character, and text that could be the start
        of a stop string is held back until it is known not to be one, so the
        concatenated deltas equal :attr:`Generation.text`. Finish (or ``close()``) the
        stream before starting another generation on the same thread.
        """
        return TextStream(self._run(prompt, stop, params, reuse_cache, constrain_calls, call_types))

    def generate_batch(
        self,
        prompts: Sequence[str],
        *,
        stop: Sequence[str] = (),
        params: SamplingParams | None = None,
        batch_size: int | None = None,
        constrain_calls: bool = False,
        call_types: CallTypes | None = None,
    ) -> list[Generation]:
        """Generate for many prompts at once (left padding); the results are in prompt order.

        Greedy output equals one-by-one :meth:`generate`. Rows that stop leave the batch.
        The engine's single-sequence cache is not used.

        Args:
            prompts: The prompts.
            stop: Stop strings, for every row.
            params: Sampling parameters (default: the engine's).
            batch_size: Most rows per forward pass (default: all). Prompts are grouped
                by length to limit padding.
            constrain_calls: As in :meth:`generate`, row by row.
            call_types: As in :meth:`generate`, for every row.
        """
        params = params or self.params
        stops = _Stops(self.loaded.tokenizer, stop, self._eos_ids)
        results: list[Generation | None] = [None] * len(prompts)
        with self._locked():
            encoded = [self._encode(prompt) for prompt in prompts]
            constraints = [
                self._call_constraint(prompt, call_types) if constrain_calls else None for prompt in prompts
            ]
            order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i][0]))
            size = batch_size or max(len(prompts), 1)
            for begin in range(0, len(order), size):
                chunk = order[begin : begin + size]
                for index, generation in zip(
                    chunk,
                    self._run_batch(
                        [encoded[i][0] for i in chunk],
                        [encoded[i][1] for i in chunk],
                        stops,
                        params,
                        [constraints[i] for i in chunk],
                        [self._copy_bias(prompts[i], encoded[i][0], params) for i in chunk],
                    ),
                ):
                    results[index] = generation
        return [generation for generation in results if generation is not None]

    def clear_cache(self) -> None:
        """Forget the cached keys/values."""
        with self._locked():
            self._cache, self._cached_ids = None, []

    @property
    def cached_tokens(self) -> int:
        """How many tokens the cache holds keys/values for."""
        return len(self._cached_ids)

    # --- single sequence -------------------------------------------------------------

    def _run(
        self,
        prompt: str,
        stop: Sequence[str],
        params: SamplingParams | None,
        reuse_cache: bool | None,
        constrain_calls: bool = False,
        call_types: CallTypes | None = None,
    ) -> Generator[str, None, Generation]:
        params = params or self.params
        constraint = self._call_constraint(prompt, call_types) if constrain_calls else None
        reuse = self.reuse_cache if reuse_cache is None else reuse_cache
        stops = _Stops(self.loaded.tokenizer, stop, self._eos_ids)
        with self._locked():
            started = time.perf_counter()
            prompt_ids, slots = self._encode(prompt)
            budget = self._budget(len(prompt_ids), params)
            cache, reused = self._take_cache(prompt_ids, reuse)
            self.reused_tokens += reused
            fed = list(prompt_ids[:reused])
            consistent = True
            try:
                consistent = False
                logits = self._ban_free_slots(
                    self._forward([prompt_ids[reused:]], cache, past=reused), [slots]
                )
                consistent = True
                fed.extend(prompt_ids[reused:])
                prefilled = time.perf_counter()
                picker = _TokenPicker(params, self._vocab_limit, logits.device)
                history = [list(prompt_ids)]
                decoder = _IncrementalDecoder(self.loaded.tokenizer)
                text, emitted, stop_hit, finish = "", 0, None, "length"
                completion = 0
                copy = self._copy_bias(prompt, prompt_ids, params)
                for step in range(budget):
                    if copy is not None:
                        copy.apply(logits, 0, text, history[0])
                    if constraint is not None:
                        _restrict(logits, 0, constraint.allowed(text))
                    token = picker.pick(logits, history)[0]
                    completion += 1
                    history[0].append(token)
                    if token in stops.token_stops:
                        stop_hit, finish = stops.token_stops[token], "stop"
                        break
                    before = len(text)
                    text += _restore(slots, decoder.push(token))
                    found = stops.find(text, before)
                    if found is not None:
                        text, stop_hit, finish = text[: found[0]], found[1], "stop"
                        break
                    safe = len(text) - stops.holdback(text)
                    if safe > emitted:
                        yield text[emitted:safe]
                        emitted = safe
                    if step + 1 == budget:
                        break
                    consistent = False
                    logits = self._ban_free_slots(self._forward([[token]], cache, past=len(fed)), [slots])
                    consistent = True
                    fed.append(token)
                if finish == "length":
                    before = len(text)
                    text += _restore(slots, decoder.flush())
                    found = stops.find(text, before)
                    if found is not None:
                        text, stop_hit, finish = text[: found[0]], found[1], "stop"
                if len(text) > emitted:
                    yield text[emitted:]
                finished = time.perf_counter()
            finally:
                if reuse and consistent:
                    self._cache, self._cached_ids = cache, fed
                else:
                    self._cache, self._cached_ids = None, []
        return Generation(
            text=text,
            stop=stop_hit,
            finish_reason=finish,  # type: ignore[arg-type]
            prompt_tokens=len(prompt_ids),
            completion_tokens=completion,
            cached_tokens=reused,
            timings=Timings(prefill_s=prefilled - started, decode_s=finished - prefilled),
        )

    def _take_cache(self, prompt_ids: list[int], reuse: bool) -> tuple[Any, int]:
        """A cache holding the longest reusable prefix of ``prompt_ids``, and its length."""
        cached, self._cache = self._cache, None
        if reuse and cached is not None:
            shared = 0
            for old, new in zip(self._cached_ids, prompt_ids):
                if old != new:
                    break
                shared += 1
            # The last prompt token is always encoded again: its logits pick the first new token.
            keep = min(shared, len(prompt_ids) - 1)
            if keep > 0:
                surplus = len(self._cached_ids) - keep
                if surplus > 0:
                    cached.crop(-surplus)
                return cached, keep
        self._cached_ids = []
        return self._new_cache(), 0

    # --- batch -----------------------------------------------------------------------

    def _run_batch(
        self,
        rows: list[list[int]],
        slot_maps: list[NumberSlots | None],
        stops: _Stops,
        params: SamplingParams,
        constraints: Sequence[CallConstraint | None] = (),
        copies: Sequence[CopyBias | None] = (),
    ) -> list[Generation]:
        import torch

        started = time.perf_counter()
        device = self.loaded.device
        width = max(len(row) for row in rows)
        pad = self._pad_id()
        budgets = [self._budget(len(row), params) for row in rows]
        input_ids = torch.tensor([[pad] * (width - len(row)) + row for row in rows], device=device)
        mask = torch.tensor([[0] * (width - len(row)) + [1] * len(row) for row in rows], device=device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = self._new_cache()
        logits = self._forward(input_ids, cache, attention_mask=mask, position_ids=positions)
        logits = self._ban_free_slots(logits, slot_maps)
        prefilled = time.perf_counter()
        picker = _TokenPicker(params, self._vocab_limit, logits.device)
        history = [list(row) for row in rows]  # unpadded, for the repetition penalty
        decoders = [_IncrementalDecoder(self.loaded.tokenizer) for _ in rows]
        texts = [""] * len(rows)
        done: dict[int, tuple[str, str | None, str, int, float]] = {}
        active = list(range(len(rows)))
        next_positions = positions[:, -1] + 1
        step = 0
        while active:
            for slot, row in enumerate(active):
                if row < len(copies) and (copy := copies[row]) is not None:
                    copy.apply(logits, slot, texts[row], history[row])
                if row < len(constraints) and (constraint := constraints[row]) is not None:
                    _restrict(logits, slot, constraint.allowed(texts[row]))
            tokens = picker.pick(logits, [history[row] for row in active])
            step += 1
            still = []
            for slot, (row, token) in enumerate(zip(active, tokens)):
                history[row].append(token)
                outcome = self._advance_row(token, decoders[row], texts[row], stops, slot_maps[row])
                texts[row] = outcome[0]
                if outcome[1] is not None:
                    done[row] = (outcome[0], outcome[1], "stop", step, time.perf_counter())
                elif step >= budgets[row]:
                    text = texts[row] + _restore(slot_maps[row], decoders[row].flush())
                    found = stops.find(text, len(texts[row]))
                    if found is not None:
                        done[row] = (text[: found[0]], found[1], "stop", step, time.perf_counter())
                    else:
                        done[row] = (text, None, "length", step, time.perf_counter())
                else:
                    still.append(slot)
            if not still:
                break
            if len(still) < len(active):
                keep = torch.tensor(still, device=device)
                cache.batch_select_indices(keep)
                mask, next_positions = mask[keep], next_positions[keep]
                tokens = [tokens[slot] for slot in still]
                active = [active[slot] for slot in still]
            mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=-1)
            logits = self._forward(
                torch.tensor(tokens, device=device)[:, None],
                cache,
                attention_mask=mask,
                position_ids=next_positions[:, None],
            )
            logits = self._ban_free_slots(logits, [slot_maps[row] for row in active])
            next_positions = next_positions + 1
        results = []
        for row, ids in enumerate(rows):
            text, stop_hit, finish, completion, ended = done[row]
            results.append(
                Generation(
                    text=text,
                    stop=stop_hit,
                    finish_reason=finish,  # type: ignore[arg-type]
                    prompt_tokens=len(ids),
                    completion_tokens=completion,
                    cached_tokens=0,
                    timings=Timings(prefill_s=prefilled - started, decode_s=ended - prefilled),
                )
            )
        return results

    @staticmethod
    def _advance_row(
        token: int, decoder: _IncrementalDecoder, text: str, stops: _Stops, slots: NumberSlots | None
    ) -> tuple[str, str | None]:
        """Add ``token`` to a row's text; return the text and the stop that fired, if any."""
        if token in stops.token_stops:
            return text, stops.token_stops[token]
        before = len(text)
        text += _restore(slots, decoder.push(token))
        found = stops.find(text, before)
        if found is not None:
            return text[: found[0]], found[1]
        return text, None

    # --- model plumbing ----------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        me = threading.get_ident()
        if self._owner == me:
            raise UsageError(
                "This thread is already generating with this engine (an unfinished stream?). "
                "Finish or close() the stream before starting another generation."
            )
        with self._lock:
            self._owner = me
            try:
                yield
            finally:
                self._owner = None

    def _with_slots(self, text: str) -> tuple[str, NumberSlots | None]:
        """``text`` as the model reads it and, for a model with number slots, the slot mapping."""
        if not self._slot_ids:
            return text, None
        slots = self._slot_scheme.new()
        return slots.encode(text), slots

    def _encode(self, prompt: str) -> tuple[list[int], NumberSlots | None]:
        """The prompt's token ids and, for a model with number slots, its slot mapping."""
        text, slots = self._with_slots(prompt)
        ids = list(self.loaded.tokenizer(text)["input_ids"])
        if not ids:
            raise UsageError("The prompt is empty; give the model some text to continue.")
        return ids, slots

    def token_texts(self) -> list[str]:
        """The text of every token id the tokenizer has (special tokens as their text); cached."""
        if self._token_texts is None:
            tokenizer = self.loaded.tokenizer
            self._token_texts = [
                str(tokenizer.decode([i], skip_special_tokens=False, clean_up_tokenization_spaces=False))
                for i in range(self._vocab_limit)
            ]
        return self._token_texts

    def _copy_bias(self, prompt: str, prompt_ids: list[int], params: SamplingParams) -> CopyBias | None:
        """The copy bias of one generation, or None when it is off."""
        bias = self.default_copy_bias if params.copy_bias is None else params.copy_bias
        if not bias:
            return None
        from moss_agent.models.copy_bias import CopyBias, find_tokens, human_spans

        spans = human_spans(prompt_ids, self._human_ids, self._end_of_human_ids) or None
        commands_from = None
        tail = prompt[prompt.rfind(COMMANDS_TAG) :] if COMMANDS_TAG in prompt else None
        if tail is not None and END_OF_COMMANDS not in tail and "<|" not in tail[len(COMMANDS_TAG) :]:
            at = find_tokens(prompt_ids, self._commands_ids, last=True)
            commands_from = None if at is None else at + len(self._commands_ids)
        return CopyBias(prompt_ids, bias, spans=spans, commands_from=commands_from)

    def _call_constraint(self, prompt: str, call_types: CallTypes | None = None) -> CallConstraint | None:
        from moss_agent.models.call_constraint import CallConstraint

        return CallConstraint.for_prompt(
            prompt, self.token_texts(), self._commands_end_ids, self._constraint_cache, types=call_types
        )

    def count_tokens(self, text: str) -> int:
        """How many tokens the model reads for ``text`` (number slots applied)."""
        encoded, _ = self._with_slots(text)
        return len(self.loaded.tokenizer(encoded, add_special_tokens=False)["input_ids"])

    def _ban_free_slots(self, logits: torch.Tensor, slot_maps: Sequence[NumberSlots | None]) -> torch.Tensor:
        """``logits`` with the slots that no number has yet made impossible, row by row."""
        if not self._slot_ids:
            return logits
        import torch

        with torch.inference_mode():
            for row, slots in enumerate(slot_maps):
                if slots is not None and len(slots.numbers) < len(self._slot_ids):
                    logits[row, slots.unassigned(self._slot_ids)] = -float("inf")
        return logits

    def _budget(self, prompt_tokens: int, params: SamplingParams) -> int:
        if self.max_positions is None:
            return params.max_new_tokens
        room = self.max_positions - prompt_tokens
        if room < 1:
            raise UsageError(
                f"The prompt has {prompt_tokens} tokens and the model reads at most {self.max_positions}; "
                "shorten it (fewer turns or shorter tool results)."
            )
        return min(params.max_new_tokens, room)

    def _pad_id(self) -> int:
        tokenizer = self.loaded.tokenizer
        for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id, *self._eos_ids, 0):
            if candidate is not None:
                return int(candidate)
        return 0

    def _new_cache(self) -> Any:
        from transformers import DynamicCache

        new_cache = getattr(self.loaded.model, "new_cache", None)
        if new_cache is not None:  # an ensemble: one cache per member
            return new_cache()

        try:
            return DynamicCache(config=self.loaded.config)
        except TypeError:  # transformers < 4.56
            return DynamicCache()

    def _forward(
        self,
        input_ids: Any,
        cache: Any,
        *,
        past: int = 0,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Run the model on new tokens with the cache; the float32 logits of each row's last token."""
        import torch

        device = self.loaded.device
        if not isinstance(input_ids, torch.Tensor):
            input_ids = torch.tensor(input_ids, device=device)
        length = input_ids.shape[1]
        if attention_mask is None:
            attention_mask = torch.ones((input_ids.shape[0], past + length), dtype=torch.long, device=device)
        if position_ids is None:
            position_ids = torch.arange(past, past + length, device=device)[None, :]
        kwargs: dict[str, Any] = {self._cache_kwarg: cache}
        if self._keep_kwarg is not None:
            kwargs[self._keep_kwarg] = 1
        with torch.inference_mode():
            output = self.loaded.model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=position_ids,
                use_cache=True,
                **kwargs,
            )
        return output.logits[:, -1, :].float()


def _default_copy_bias(loaded: LoadedModel) -> float:
    """The copy bias the loaded model's folder declares (0 when it declares none)."""
    from moss_agent.models.copy_bias import model_copy_bias

    return model_copy_bias(loaded.name) if loaded.name else 0.0


def _restrict(logits: torch.Tensor, row: int, allowed: torch.Tensor | None) -> None:
    """Make every token of ``logits[row]`` but the ``allowed`` ids impossible (in place)."""
    if allowed is None:
        return
    import torch

    with torch.inference_mode():
        ids = allowed.to(logits.device)
        kept = logits[row, ids].clone()
        logits[row] = -float("inf")
        logits[row, ids] = kept


def _restore(slots: NumberSlots | None, text: str) -> str:
    """Generated text with number slots written back as numbers."""
    return text if slots is None or not text else slots.restore(text)
