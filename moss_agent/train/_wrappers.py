"""Words around a request that do not change it: greetings, fillers, thanks (training data only).

With the data generator's ``wrap_requests`` option, about half of the training requests for a
tool (never chit-chat, never the held-out test split) get a prefix, a suffix or both, so the
model learns to find the numbers and the operation wherever they sit in the message instead of
keying on a template's first words.
"""

from __future__ import annotations

import random

__all__ = ["wrap_request"]

_PREFIX: dict[str, tuple[str, ...]] = {
    "zh": (
        "你好，",
        "MOSS，",
        "问一下，",
        "请问，",
        "打扰一下，",
        "嗨，",
        "我有个问题：",
        "帮个忙，",
        "麻烦你，",
        "想请教一下：",
        "在吗？",
        "急！",
    ),
    "en": (
        "Hi, ",
        "Hey MOSS, ",
        "Quick question: ",
        "Excuse me, ",
        "MOSS, ",
        "I have a question. ",
        "Please help: ",
        "Sorry to bother you, ",
        "OK so ",
    ),
}
_SUFFIX: dict[str, tuple[str, ...]] = {
    "zh": ("谢谢！", "谢谢。", "麻烦了。", "在线等。", "多谢", "谢谢啦~", "辛苦了！"),
    "en": (" Thanks!", " Thank you.", " Thanks in advance.", " Please.", " Cheers.", " Thx"),
}


def _join_prefix(prefix: str, text: str, lang: str) -> str:
    if lang == "en" and text[:1].isupper() and text[1:2].islower() and not text.startswith("I "):
        text = text[0].lower() + text[1:]  # "Hey MOSS, what's …" (keeps "I bought …")
    return prefix + text


def wrap_request(rng: random.Random, lang: str, text: str, rate: float = 0.5) -> str:
    """``text`` unchanged (probability ``1 - rate``) or with a prefix, a suffix or both."""
    if rng.random() >= rate:
        return text
    where = rng.choice(("prefix", "suffix", "both"))
    if where in ("prefix", "both"):
        text = _join_prefix(rng.choice(_PREFIX[lang]), text, lang)
    if where in ("suffix", "both"):
        text = text + rng.choice(_SUFFIX[lang])
    return text
