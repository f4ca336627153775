"""Decoding helpers of the generation engine: stops, incremental detokenization, token picking.

Internal to :mod:`moss_agent.models.engine`; nothing here is public API.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from moss_agent.models.engine import SamplingParams
    from moss_agent.models.loading import LoadedModel

__all__ = ["_IncrementalDecoder", "_Stops", "_TokenPicker", "_eos_token_ids"]


def _eos_token_ids(loaded: LoadedModel) -> set[int]:
    ids: set[int] = set()
    for source in (loaded.config, getattr(loaded.model, "generation_config", None)):
        value = getattr(source, "eos_token_id", None)
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    if loaded.tokenizer.eos_token_id is not None:
        ids.add(int(loaded.tokenizer.eos_token_id))
    return ids


class _Stops:
    """Stop strings and stop token ids of one call."""

    def __init__(self, tokenizer: Any, stops: Sequence[str], eos_ids: set[int]) -> None:
        if isinstance(stops, str):
            stops = [stops]
        self.strings = tuple(dict.fromkeys(s for s in stops if s))
        self.token_stops: dict[int, str] = {}
        atomic = set(getattr(tokenizer, "added_tokens_decoder", {}) or {}) | set(tokenizer.all_special_ids)
        for text in self.strings:
            ids = tokenizer.encode(text, add_special_tokens=False)
            if len(ids) == 1 and ids[0] in atomic:
                self.token_stops[ids[0]] = text
        for eos in eos_ids:
            self.token_stops.setdefault(eos, tokenizer.decode([eos]))
        self._longest = max((len(s) for s in self.strings), default=0)

    def find(self, text: str, new_from: int) -> tuple[int, str] | None:
        """The earliest stop in ``text`` that overlaps the text after ``new_from``."""
        if not self.strings:
            return None
        start = max(0, new_from - self._longest + 1)
        best: tuple[int, str] | None = None
        for stop in self.strings:
            at = text.find(stop, start)
            if at >= 0 and (best is None or at < best[0]):
                best = (at, stop)
        return best

    def holdback(self, text: str) -> int:
        """Length of the longest tail of ``text`` that is the start of a stop string."""
        longest = 0
        for stop in self.strings:
            for size in range(min(len(stop) - 1, len(text)), longest, -1):
                if stop.startswith(text[-size:]):
                    longest = size
                    break
        return longest


class _IncrementalDecoder:
    """Token-by-token detokenization that never splits a UTF-8 character.

    Decodes a short window of recent tokens twice (without and with the new token) and
    emits the difference once it does not end in a replacement character, which is how
    byte-level BPE shows an unfinished multi-byte character.
    """

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self._ids: list[int] = []
        self._prefix = 0
        self._read = 0

    def _decode(self, ids: list[int]) -> str:
        return str(self._tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False))

    def push(self, token: int) -> str:
        self._ids.append(token)
        before = self._decode(self._ids[self._prefix : self._read])
        after = self._decode(self._ids[self._prefix :])
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self._prefix, self._read = self._read, len(self._ids)
            return after[len(before) :]
        return ""

    def flush(self) -> str:
        """Whatever is held back (an unfinished character decodes as U+FFFD)."""
        before = self._decode(self._ids[self._prefix : self._read])
        after = self._decode(self._ids[self._prefix :])
        self._prefix = self._read = len(self._ids)
        return after[len(before) :]


class _TokenPicker:
    """Repetition penalty, then greedy argmax or temperature / top-k / top-p sampling."""

    def __init__(self, params: SamplingParams, vocab_limit: int, device: torch.device) -> None:
        import torch
        from transformers import (
            LogitsProcessorList,
            RepetitionPenaltyLogitsProcessor,
            TemperatureLogitsWarper,
            TopKLogitsWarper,
            TopPLogitsWarper,
        )

        self._greedy = params.greedy
        self._vocab_limit = vocab_limit
        self._penalty = (
            RepetitionPenaltyLogitsProcessor(params.repetition_penalty)
            if params.repetition_penalty != 1.0
            else None
        )
        warpers = LogitsProcessorList()
        if not self._greedy:
            if params.temperature != 1.0:
                warpers.append(TemperatureLogitsWarper(params.temperature))
            if params.top_k is not None:
                warpers.append(TopKLogitsWarper(params.top_k))
            if params.top_p < 1.0:
                warpers.append(TopPLogitsWarper(params.top_p))
        self._warpers = warpers
        self._generator = None
        if params.seed is not None and not self._greedy:
            self._generator = torch.Generator(device=device).manual_seed(params.seed)

    def pick(self, logits: torch.Tensor, histories: list[list[int]]) -> list[int]:
        import torch

        with torch.inference_mode():
            scores = logits
            if scores.shape[-1] > self._vocab_limit:  # embedding rows past the tokenizer are never used
                scores = scores.clone()
                scores[:, self._vocab_limit :] = -float("inf")
            if self._penalty is not None:
                # Rows have different lengths; repeating a row's own first token pads it
                # without changing the set of penalized tokens.
                width = max(len(h) for h in histories)
                ids = torch.tensor([h + [h[0]] * (width - len(h)) for h in histories], device=scores.device)
                scores = self._penalty(ids, scores)
            if self._greedy:
                return [int(t) for t in scores.argmax(dim=-1).tolist()]
            scores = self._warpers(None, scores)  # type: ignore[arg-type]
            probs = torch.softmax(scores, dim=-1)
            return [int(t) for t in torch.multinomial(probs, 1, generator=self._generator)[:, 0].tolist()]
