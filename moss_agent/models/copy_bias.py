"""Copy bias: inside Commands, favour the token that continues what the call is copying.

A call's arguments are mostly copied from the conversation: the equations of
``Solve("-3x+2y=-25, 4x+3y=107")``, a city, a quoted word. A small model copies the
right span but slips on a single token, most often a coefficient taken from the wrong
equation (``4x+2y=107`` after ``4x+``). :class:`CopyBias` finds the longest span of the
user's turns that the Commands text written so far ends with (at least ``shortest``
tokens) and adds ``bias`` to the score of the token that follows that span there, so a
near tie between copying and slipping goes to copying.

- It acts only between ``<|Commands|>`` and ``<eoc>``; thoughts and replies are free.
- It copies only from the user's turns (``<|Human|>: … <eoh>``): not from the meta
  instruction, and not from an earlier turn's Commands, whose ``Search("`` would otherwise be
  the span a new call starts with and carry the old query into it.
- Each position of those turns is copied at most once per Commands section, so a copy
  cannot loop back over the text it has already taken, and a copy ends where its turn ends.
- It adds to scores; it never forbids a token. A token the model rates more than
  ``bias`` below its favourite still loses.

It is built from the prompt alone, so it works for any model that speaks the protocol.
Off (0) by default; a model folder's ``generation_config.json`` may set ``copy_bias`` (every
member's, for an ensemble), as the embedded model does. transformers drops keys it does not
know from a ``GenerationConfig``, so moss-agent reads the file itself
(:func:`model_copy_bias`).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from moss_agent.errors import UsageError
from moss_agent.protocol import COMMANDS_TAG, END_OF_COMMANDS

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

__all__ = [
    "GENERATION_CONFIG_KEY",
    "CopyBias",
    "find_tokens",
    "human_spans",
    "model_copy_bias",
    "set_copy_bias",
]

#: The ``generation_config.json`` key holding a model's default copy bias.
GENERATION_CONFIG_KEY = "copy_bias"


class CopyBias:
    """The copy bias of one generation.

    Args:
        prompt_ids: The prompt's token ids.
        bias: What to add to the score of a copying token (log-probability units).
        spans: The ``[start, end)`` ranges of ``prompt_ids`` that may be copied (the user's
            turns); None: the whole prompt.
        commands_from: Index in ``prompt_ids`` just after the ``<|Commands|>`` tag when the
            prompt ends inside an open Commands section (a forced call's ``name(``); the
            Commands text then starts there and the copying starts at once. None: it starts
            when the generated text writes the tag.
        shortest: Fewest tokens of a span the Commands text must end with.
        longest: Longest span looked for.
    """

    def __init__(
        self,
        prompt_ids: list[int],
        bias: float,
        *,
        spans: Sequence[tuple[int, int]] | None = None,
        commands_from: int | None = None,
        shortest: int = 3,
        longest: int = 16,
    ) -> None:
        if bias < 0:
            raise ValueError(f"bias must be >= 0, got {bias}")
        if shortest < 1:
            raise ValueError(f"shortest must be at least 1, got {shortest}")
        self.bias = bias
        self._prompt = list(prompt_ids)
        self._shortest = shortest
        self._longest = max(longest, shortest)
        # token -> (its position, the start of its span), for each copyable position
        self._where: dict[int, list[tuple[int, int]]] = defaultdict(list)
        until = len(self._prompt) if commands_from is None else min(commands_from, len(self._prompt))
        for start, end in spans if spans is not None else [(0, until)]:
            # a span's last token has nothing after it to offer: the copy ends with the span
            for at in range(max(start, 0), min(end, until) - 1):
                self._where[self._prompt[at]].append((at, max(start, 0)))
        self._start: int | None = commands_from
        self._open = commands_from is not None
        self._used: set[int] = set()
        self._offered: dict[int, set[int]] = {}

    def following(self, written: list[int]) -> set[int]:
        """Tokens that continue the longest copyable span ``written`` ends with."""
        self._offered = {}
        if len(written) < self._shortest:
            return set()
        best = 0
        offered: dict[int, set[int]] = {}
        for end, start in self._where.get(written[-1], ()):
            if end + 1 in self._used:
                continue
            size = 1
            while (
                size < self._longest
                and size < len(written)
                and end - size >= start
                and self._prompt[end - size] == written[-1 - size]
            ):
                size += 1
            if size < self._shortest or size < best:
                continue
            if size > best:
                best, offered = size, {}
            offered.setdefault(self._prompt[end + 1], set()).add(end + 1)
        self._offered = offered
        return set(offered)

    def apply(self, scores: torch.Tensor, row: int, text: str, history: list[int]) -> None:
        """Add the bias to ``scores[row]`` in place.

        ``history`` is the row's token ids (prompt and generated), ``text`` its generated text.
        """
        if self._start is None:
            if COMMANDS_TAG not in text:
                return
            self._start = len(history)
        elif self._offered and history:
            self._used |= self._offered.get(history[-1], set())
        if self._open and COMMANDS_TAG not in text:
            section = text
        else:
            section = text[text.rfind(COMMANDS_TAG) :]
        if END_OF_COMMANDS in section:
            self._offered = {}
            return
        tokens = [t for t in self.following(history[self._start :]) if t < scores.shape[-1]]
        if tokens:
            import torch

            with torch.inference_mode():
                scores[row, tokens] += self.bias


def human_spans(
    prompt_ids: list[int], human_tag: list[int], end_of_human: list[int]
) -> list[tuple[int, int]]:
    """The ``[start, end)`` token ranges of the user's turns.

    Each starts after a ``<|Human|>`` tag and ends at its ``<eoh>`` (or the end of the prompt).
    """
    spans = []
    at = find_tokens(prompt_ids, human_tag)
    while at is not None:
        start = at + len(human_tag)
        end = find_tokens(prompt_ids, end_of_human, start=start)
        spans.append((start, len(prompt_ids) if end is None else end))
        if end is None:
            break
        at = find_tokens(prompt_ids, human_tag, start=end)
    return spans


def find_tokens(haystack: list[int], needle: list[int], *, last: bool = False, start: int = 0) -> int | None:
    """Index of the first (or last) occurrence of ``needle`` in ``haystack[start:]``."""
    if not needle:
        return None
    stop = len(haystack) - len(needle)
    starts = range(stop, start - 1, -1) if last else range(start, stop + 1)
    for at in starts:
        if haystack[at] == needle[0] and haystack[at : at + len(needle)] == needle:
            return at
    return None


def _generation_configs(folder: Path) -> list[Path]:
    """The generation_config.json files of a checkpoint folder (every member's for an ensemble).

    Raises:
        UsageError: The folder's ``ensemble.json`` is malformed (``ensemble_members``).
    """
    from moss_agent.models.ensemble import ensemble_members

    return [member / "generation_config.json" for member in ensemble_members(folder) or [folder]]


def set_copy_bias(model: str | Path, bias: float) -> None:
    """Make ``bias`` the default copy bias of the checkpoint folder ``model`` (0 removes it).

    Written to its ``generation_config.json`` (every member's for an ensemble).
    """
    import json

    if not bias >= 0:
        raise ValueError(f"bias must be >= 0, got {bias}")
    for config in _generation_configs(Path(model)):
        values = json.loads(config.read_text(encoding="utf-8")) if config.is_file() else {}
        if bias:
            values[GENERATION_CONFIG_KEY] = bias
        else:
            values.pop(GENERATION_CONFIG_KEY, None)
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(json.dumps(values, indent=2) + "\n", encoding="utf-8")


def model_copy_bias(model: str) -> float:
    """The default copy bias a model folder declares; 0 for anything else.

    Read from its ``generation_config.json``, or its first member's for an ensemble.
    """
    import json

    try:
        configs = _generation_configs(Path(model))
        config = configs[0]
        if not config.is_file():
            return 0.0
        value = json.loads(config.read_text(encoding="utf-8")).get(GENERATION_CONFIG_KEY)
        if value is None:
            return 0.0
        bias = float(value)
    except (OSError, ValueError, TypeError, UsageError):
        logger.warning(
            "%s: ignoring an unreadable %s in its generation_config.json", model, GENERATION_CONFIG_KEY
        )
        return 0.0
    if not bias >= 0:
        logger.warning(
            "%s: ignoring %s=%r in its generation_config.json (below 0)", model, GENERATION_CONFIG_KEY, value
        )
        return 0.0
    return bias
