"""New phrasings from old ones: the first clauses of one template, the last clauses of another.

With the data generator's ``mix_clauses`` option, 70 % of the training split's requests
(tools and custom tools; never chit-chat, never the valid or test split) are phrased, where
their family has a clause boundary and a fitting partner, by a template spliced from two
training families of the same request kind (16.7 % of all training turns of the
``--more-phrasings --wrap-requests`` data), e.g.
``"一辆车{t}小时行驶了{d}公里，"`` + ``"每小时走多少公里？"``. A splice is kept only when it
has exactly the placeholders of the family drawn, so every slot is filled once and the call
stays right. Held-out families are never used, so the test split stays unseen.
"""

from __future__ import annotations

import functools
import random
import re
from collections import Counter
from collections.abc import Sequence

__all__ = ["clause_cuts", "splice_template"]

_DELIMITERS = "，,；;。.！!？?：:"
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def clause_cuts(template: str) -> list[int]:
    """Offsets where a clause starts: after a delimiter (and its spaces), never at either end.

    A full stop between digits or inside a placeholder is not a delimiter.
    """
    cuts = []
    depth = 0
    for index, char in enumerate(template):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif depth == 0 and char in _DELIMITERS:
            if char == "." and index + 1 < len(template) and not template[index + 1].isspace():
                continue  # "3.5", "e.g."
            end = index + 1
            while end < len(template) and template[end] == " ":
                end += 1
            if 0 < end < len(template):
                cuts.append(end)
    return cuts


@functools.lru_cache(maxsize=4096)
def _cached_cuts(template: str) -> tuple[int, ...]:
    """:func:`clause_cuts`, computed once per template (the data generator asks for the same few)."""
    return tuple(clause_cuts(template))


def _slots(text: str) -> Counter[str]:
    return Counter(_PLACEHOLDER.findall(text))


def splice_template(rng: random.Random, first: str, others: Sequence[str], tries: int = 8) -> str | None:
    """A template made of ``first``'s opening clauses and another's closing ones, or None.

    The splice has exactly ``first``'s placeholders (each as often) and differs from every
    template it could be confused with (``first`` and the donor).
    """
    heads = _cached_cuts(first)
    if not heads:
        return None
    want = _slots(first)
    donors = [t for t in others if t != first and _cached_cuts(t)]
    for _ in range(tries if donors else 0):
        donor = rng.choice(donors)
        head = first[: rng.choice(heads)]
        tail = donor[rng.choice(_cached_cuts(donor)) :]
        spliced = head + tail
        if _slots(spliced) == want and spliced not in (first, donor):
            return spliced
    return None
