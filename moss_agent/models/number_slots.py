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

With ``"digit_slots": true``, single digits of the user and the tools get slots too (the
``7`` of "7 hours", the ``3`` of ``-3x+7y=51``), so the model copies them as it copies
longer numbers. As the model should still see what such a digit is (``5折`` is a 50 %
discount), a Human or Results section writes it as the slot followed by the digit
(``<num1>5折``); the model's own sections write the slot alone.

The encoding is a pure function of the text, decided left to right, so appending text
never changes how the earlier text encodes (the engine's KV-cache reuse depends on it),
and ``restore(encode(text)) == text`` for any text that holds no slot token.

Pure text, no torch: the generation engine and the fine-tuning script share it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from moss_agent.errors import UsageError
from moss_agent.protocol import COMMANDS_TAG, HUMAN_TAG, INNER_THOUGHTS_TAG, MOSS_TAG, RESULTS_TAG

__all__ = [
    "DIGIT_SLOTS_KEY",
    "NUMBER_ROUNDING_KEY",
    "NUMBER_SLOTS_KEY",
    "ROUND_TOKEN",
    "NumberSlots",
    "SlotScheme",
    "number_slots_of",
    "reply_rounding",
    "rounded",
    "slot_token",
    "slot_token_ids",
    "slot_tokens",
]

#: The key of a checkpoint's config.json that turns number slots on (its value: how many).
NUMBER_SLOTS_KEY = "number_slots"

#: The key of config.json that adds the rounding marker (:data:`ROUND_TOKEN`) to the slots.
NUMBER_ROUNDING_KEY = "number_rounding"

#: The key of config.json that gives single digits slots too.
DIGIT_SLOTS_KEY = "digit_slots"

#: Written before a slot: "that number, rounded as a reply writes it" (:func:`rounded`).
ROUND_TOKEN = "<round>"

#: Sections whose new numbers get a slot: what the user and the tools wrote.
_ASSIGNING_TAGS = frozenset({HUMAN_TAG, RESULTS_TAG})
_TAGS = (HUMAN_TAG, INNER_THOUGHTS_TAG, COMMANDS_TAG, RESULTS_TAG, MOSS_TAG)
_PIECES = re.compile(
    "(" + "|".join(re.escape(tag) for tag in _TAGS) + r")|<num(\d+)>|(\d+(?:\.\d+)?)",
)
_SLOT = re.compile(re.escape(ROUND_TOKEN) + r"(?:<num(\d+)>)?|<num(\d+)>(\d)?")


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


def slot_tokens(count: int) -> list[str]:
    """The tokens of ``count`` slots, in order."""
    return [slot_token(index) for index in range(1, count + 1)]


def _single_token_ids(tokenizer: Any, tokens: Sequence[str], what: str) -> list[int]:
    ids = []
    for token in tokens:
        encoded = tokenizer.encode(token, add_special_tokens=False)
        if len(encoded) != 1:
            raise UsageError(
                f"{what} but the tokenizer has no single token {token!r}; its tokenizer must be "
                "trained with them (build_tiny_tokenizer(..., number_slots=SlotScheme(...)))."
            )
        ids.append(int(encoded[0]))
    return ids


def slot_token_ids(tokenizer: Any, count: int) -> list[int]:
    """The token id of each of ``count`` number slots in ``tokenizer`` (slot 1 first).

    Raises:
        UsageError: The tokenizer has no single token for one of them.
    """
    return _single_token_ids(tokenizer, slot_tokens(count), f"{count} number slots are declared")


def _config_value(config: object, key: str) -> Any:
    value = getattr(config, key, None)
    if value is None and isinstance(config, dict):
        value = config.get(key)
    return value


def number_slots_of(config: object) -> int:
    """How many number slots a model config declares (0: none)."""
    return int(_config_value(config, NUMBER_SLOTS_KEY) or 0)


@dataclass(frozen=True)
class SlotScheme:
    """How a model reads and writes numbers: the number-slot keys of its config.json.

    Args:
        count: Number slots (0: none, numbers are digits).
        rounding: The rounding marker :data:`ROUND_TOKEN`.
        digits: Single digits get slots too.
    """

    count: int = 0
    rounding: bool = False
    digits: bool = False

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError(f"count must be at least 0, got {self.count}")

    def __bool__(self) -> bool:
        return self.count > 0

    @classmethod
    def of(cls, config: object) -> SlotScheme:
        """The scheme a model config (an object or a dict) declares."""
        count = number_slots_of(config)
        return cls(
            count,
            rounding=count > 0 and bool(_config_value(config, NUMBER_ROUNDING_KEY)),
            digits=count > 0 and bool(_config_value(config, DIGIT_SLOTS_KEY)),
        )

    @classmethod
    def coerce(cls, value: SlotScheme | int) -> SlotScheme:
        """``value`` itself, or ``SlotScheme(value)`` for a count."""
        return value if isinstance(value, SlotScheme) else cls(int(value))

    def config_entries(self) -> dict[str, Any]:
        """The config.json keys that declare this scheme (none without slots)."""
        if not self:
            return {}
        entries: dict[str, Any] = {NUMBER_SLOTS_KEY: self.count}
        if self.rounding:
            entries[NUMBER_ROUNDING_KEY] = True
        if self.digits:
            entries[DIGIT_SLOTS_KEY] = True
        return entries

    def tokens(self) -> list[str]:
        """The special tokens the tokenizer needs: the slots, then the rounding marker."""
        if not self:
            return []
        return slot_tokens(self.count) + ([ROUND_TOKEN] if self.rounding else [])

    def token_ids(self, tokenizer: Any) -> list[int]:
        """The slots' token ids in ``tokenizer`` (slot 1 first), after checking it carries all tokens.

        Raises:
            UsageError: The tokenizer lacks one of :meth:`tokens`.
        """
        ids = slot_token_ids(tokenizer, self.count)
        if self and self.rounding:
            _single_token_ids(tokenizer, [ROUND_TOKEN], "number rounding is declared")
        return ids

    def new(self) -> NumberSlots:
        """A fresh mapping for one conversation."""
        return NumberSlots(self.count, rounding=self.rounding, digits=self.digits)

    def encode(self, text: str) -> str:
        """One whole conversation's text as the model reads it (``text`` itself without slots)."""
        return self.new().encode(text) if self else text


class NumberSlots:
    """The number ↔ slot mapping of one conversation, built as its text is encoded.

    Feed the text in order (one call or many): :meth:`encode` remembers which section it
    is in and which numbers have slots. :meth:`restore` turns generated text back.

    Args:
        limit: Most slots; numbers past the limit stay digits.
        rounding: Write rounded copies as ``<round><numk>`` (see the module's docstring).
        digits: Single digits get slots too (see the module's docstring).
    """

    def __init__(self, limit: int, *, rounding: bool = False, digits: bool = False) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self.limit = limit
        self.rounding = rounding
        self.digits = digits
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
        single = number is not None and len(number) == 1
        if number is None or (single and not self.digits):
            return match.group(0)
        index = self._slots.get(number)
        if index is None and self._assigning and len(self.numbers) < self.limit:
            self.numbers.append(number)
            index = self._slots[number] = len(self.numbers)
            if self.rounding and (rounding := rounded(number)) != number:
                self._rounded.setdefault(rounding, index)
        if index is None:
            if not self._assigning and number in self._rounded:
                return ROUND_TOKEN + slot_token(self._rounded[number])
            return number
        if single and self._assigning:  # the user's and the tools' digits stay visible
            return slot_token(index) + number
        return slot_token(index)

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
        return _SLOT.sub(self._number, text)

    def _number(self, match: re.Match[str]) -> str:
        rounded_index, index, digit = match.groups()
        if match.group(0).startswith(ROUND_TOKEN):  # <round><numk> or a stray <round>
            if not self.rounding:
                return match.group(0)
            if rounded_index is None:
                return ""
            position = int(rounded_index)
            return (
                rounded(self.numbers[position - 1]) if position <= len(self.numbers) else slot_token(position)
            )
        position = int(index)
        if not 1 <= position <= len(self.numbers):
            return match.group(0)
        number = self.numbers[position - 1]
        # a single digit's slot that its own digit follows is how the user's text writes it
        return number + (digit if digit is not None and digit != number else "")

    def unassigned(self, slot_ids: Sequence[int]) -> list[int]:
        """The token ids (``slot_ids[k]`` is slot k+1's) of the slots no number has yet."""
        return list(slot_ids[len(self.numbers) :])
