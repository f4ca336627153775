"""Number slots: a small model copies a number as one token instead of digit by digit.

Most argument errors of the embedded model were copies: ``144*144/2`` for a triangle of
base 144 and height 177, ``Calculate("39*0.5")`` for "427 yuan each, 29 of them". A model
whose config.json says ``"number_slots": N`` never reads the digits of a multi-digit number
that the user or a tool wrote. Reading a conversation left to right, the k-th distinct
such number (two or more characters, e.g. ``23``, ``3298.15``) that appears in a Human or a
Results section is written as the single token ``<numk>``; later occurrences of the same
number, in any section, are written with the same token. The model writes ``<numk>`` where
it means that number, and :meth:`NumberSlots.restore` writes it back. Single digits (the
``2`` and ``4`` of ``2x+4y``, the ``5`` of 5折) and numbers the model makes up stay digits.

With ``"number_rounding": true`` as well, the model can also write a number rounded as a
reply writes it (:func:`rounded`: integral values whole, others to at most 2 decimals),
without seeing its digits: a number of the model's own sections that is no slot's number
but is :func:`rounded` of one (``12.57`` after the calculator said ``12.566370614359172``,
``217`` after ``217.0``) is written ``<round><numk>``, the first such slot. A ``<round>``
that no slot follows writes nothing.

The encoding is a pure function of the text, decided left to right, so appending text
never changes how the earlier text encodes (the engine's KV-cache reuse depends on it),
and ``restore(encode(text)) == text`` for any text that holds no slot token.

Pure text, no torch: the generation engine and the fine-tuning script share it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from moss_agent.errors import UsageError
from moss_agent.protocol import COMMANDS_TAG, HUMAN_TAG, INNER_THOUGHTS_TAG, MOSS_TAG, RESULTS_TAG

__all__ = [
    "NUMBER_ROUNDING_KEY",
    "NUMBER_SLOTS_KEY",
    "ROUND_TOKEN",
    "NumberSlots",
    "number_rounding_of",
    "number_slots_of",
    "reply_rounding",
    "round_token_id",
    "rounded",
    "slot_token",
    "slot_token_ids",
    "slot_tokens",
]

#: The key of a checkpoint's config.json that turns number slots on (its value: how many).
NUMBER_SLOTS_KEY = "number_slots"

#: The key of config.json that adds the rounding marker (:data:`ROUND_TOKEN`) to the slots.
NUMBER_ROUNDING_KEY = "number_rounding"

#: Written before a slot: "that number, rounded as a reply writes it" (:func:`rounded`).
ROUND_TOKEN = "<round>"

#: Sections whose new numbers get a slot: what the user and the tools wrote.
_ASSIGNING_TAGS = frozenset({HUMAN_TAG, RESULTS_TAG})
_TAGS = (HUMAN_TAG, INNER_THOUGHTS_TAG, COMMANDS_TAG, RESULTS_TAG, MOSS_TAG)
_PIECES = re.compile(
    "(" + "|".join(re.escape(tag) for tag in _TAGS) + r")|<num(\d+)>|(\d+(?:\.\d+)?)",
)
_SLOT = re.compile(r"<num(\d+)>")
_ROUNDED_SLOT = re.compile(re.escape(ROUND_TOKEN) + r"(?:<num(\d+)>)?|<num(\d+)>")


def reply_rounding(value: float) -> str:
    """``value`` as a reply writes it: whole if integral, else to at most 2 decimals."""
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{round(value, 2):.2f}".rstrip("0").rstrip(".")


def rounded(number: str) -> str:
    """A plain decimal number as a reply writes it (:func:`reply_rounding`; integers stay).

    ``217.0`` → ``217``, ``12.566370614359172`` → ``12.57``, ``468.29999999999995`` → ``468.3``.
    """
    return number if "." not in number else reply_rounding(float(number))


def slot_token(index: int) -> str:
    """The token of the ``index``-th number (from 1)."""
    return f"<num{index}>"


def slot_tokens(count: int, *, rounding: bool = False) -> list[str]:
    """The tokens of ``count`` slots, in order, then :data:`ROUND_TOKEN` with ``rounding``."""
    tokens = [slot_token(index) for index in range(1, count + 1)]
    return tokens + [ROUND_TOKEN] if rounding and count > 0 else tokens


def slot_token_ids(tokenizer: Any, count: int) -> list[int]:
    """The token id of each of ``count`` number slots in ``tokenizer`` (slot 1 first).

    Raises:
        UsageError: The tokenizer has no single token for one of them.
    """
    ids = []
    for token in slot_tokens(count):
        encoded = tokenizer.encode(token, add_special_tokens=False)
        if len(encoded) != 1:
            raise UsageError(
                f"{count} number slots are declared but the tokenizer has no single token {token!r}; "
                "its tokenizer must be trained with the slots (build_tiny_tokenizer(..., number_slots=N))."
            )
        ids.append(int(encoded[0]))
    return ids


def round_token_id(tokenizer: Any) -> int:
    """The token id of :data:`ROUND_TOKEN` in ``tokenizer``.

    Raises:
        UsageError: The tokenizer has no single token for it.
    """
    encoded = tokenizer.encode(ROUND_TOKEN, add_special_tokens=False)
    if len(encoded) != 1:
        raise UsageError(
            f"number rounding is declared but the tokenizer has no single token {ROUND_TOKEN!r}; "
            "its tokenizer must be trained with it (build_tiny_tokenizer(..., number_rounding=True))."
        )
    return int(encoded[0])


def _config_value(config: object, key: str) -> Any:
    value = getattr(config, key, None)
    if value is None and isinstance(config, dict):
        value = config.get(key)
    return value


def number_slots_of(config: object) -> int:
    """How many number slots a model config declares (0: none)."""
    return int(_config_value(config, NUMBER_SLOTS_KEY) or 0)


def number_rounding_of(config: object) -> bool:
    """Whether a model config declares the rounding marker (only with number slots)."""
    return bool(_config_value(config, NUMBER_ROUNDING_KEY)) and number_slots_of(config) > 0


class NumberSlots:
    """The number ↔ slot mapping of one conversation, built as its text is encoded.

    Feed the text in order (one call or many): :meth:`encode` remembers which section it
    is in and which numbers have slots. :meth:`restore` turns generated text back.

    Args:
        limit: Most slots; numbers past the limit stay digits.
        rounding: Write rounded copies as ``<round><numk>`` (see the module's docstring).
    """

    def __init__(self, limit: int, *, rounding: bool = False) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self.limit = limit
        self.rounding = rounding
        self.numbers: list[str] = []
        """The number of each slot, slot 1 first."""
        self._slots: dict[str, int] = {}
        self._rounded: dict[str, int] = {}
        self._assigning = False
        self._round_next = False

    def encode(self, text: str) -> str:
        """``text`` with every number that has (or, in a Human or Results section, gets) a slot replaced."""
        return _PIECES.sub(self._replace, text)

    def _replace(self, match: re.Match[str]) -> str:
        tag, _slot, number = match.groups()
        if tag is not None:
            self._assigning = tag in _ASSIGNING_TAGS
            return tag
        if number is None or len(number) < 2:
            return match.group(0)
        index = self._slots.get(number)
        if index is None and self._assigning and len(self.numbers) < self.limit:
            self.numbers.append(number)
            index = self._slots[number] = len(self.numbers)
            if self.rounding and rounded(number) != number:
                self._rounded.setdefault(rounded(number), index)
        if index is None and not self._assigning and number in self._rounded:
            return ROUND_TOKEN + slot_token(self._rounded[number])
        return number if index is None else slot_token(index)

    def restore(self, text: str) -> str:
        """Generated text with each assigned slot token written back as its number.

        Text may come piece by piece (one token at a time): a :data:`ROUND_TOKEN` that ends
        one piece rounds the slot that starts the next.
        """
        if self._round_next:
            text, self._round_next = ROUND_TOKEN + text, False
        if "<num" not in text and ROUND_TOKEN not in text:
            return text
        if self.rounding and text.endswith(ROUND_TOKEN):
            text, self._round_next = text[: -len(ROUND_TOKEN)], True
        if not self.rounding:
            return _SLOT.sub(self._number, text)
        return _ROUNDED_SLOT.sub(self._number, text)

    def _number(self, match: re.Match[str]) -> str:
        if match.group(0).startswith(ROUND_TOKEN):  # <round><numk> or a stray <round>
            if match.group(1) is None:
                return ""
            index = int(match.group(1))
            return rounded(self.numbers[index - 1]) if index <= len(self.numbers) else slot_token(index)
        index = int(match.group(match.lastindex or 1))
        return self.numbers[index - 1] if 1 <= index <= len(self.numbers) else match.group(0)

    def unassigned(self, slot_ids: Sequence[int]) -> list[int]:
        """The token ids (``slot_ids[k]`` is slot k+1's) of the slots no number has yet."""
        return list(slot_ids[len(self.numbers) :])
