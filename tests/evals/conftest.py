from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from moss_agent.testing import ScriptedMossLLM

SUITES = Path(__file__).resolve().parents[2] / "evals" / "suites"
SMOKE = SUITES / "smoke.jsonl"

#: What the scripted model does for each smoke question: (Commands text, reply).
#: Chosen so every error type but tool_error shows up once.
SMOKE_SCRIPT: dict[str, tuple[str, str]] = {
    "What is 1234 multiplied by 5678?": ('Calculate("1234*5678")', "1234 × 5678 = 7,006,652."),  # ok
    "请帮我算一下 (125 + 375) × 4 等于多少？": ('Calculate("(125+375)*4")', "结果是2000。"),  # ok
    "What is 15% of 240?": ('Calculate("240*0.2")', "It is 48."),  # wrong_args (and wrong answer)
    "A farm has chickens and rabbits with 35 heads and 94 legs in total. How many chickens and how many rabbits are there?": (
        'Solve("x+y=35, 2x+4y=94")',
        "There are 23 chickens and 12 rabbits.",
    ),  # ok
    "解方程 x^2 - 5x + 6 = 0": ('Calculate("x^2-5x+6")', "x=2 或 x=3"),  # wrong_tool
    "How tall is the Eiffel Tower?": ('Search("Eiffel Tower height")', "It is 330 metres tall."),  # ok
    "长江全长多少公里？": ("None", "长江全长约6300公里。"),  # missed_call
    "Draw a picture of a red fox sleeping in the snow.": (
        'Text2Image("a red fox sleeping in the snow")',
        "Here is your picture.",
    ),  # ok
    "Hello! Who are you?": ("None", "I am MOSS, an AI assistant."),  # ok
    "请写一句关于春天的诗。": ('Search("春天的诗"', "春眠不觉晓。"),  # format_error (unclosed call)
    "What is 88 times 77?": ('Calculate("88*77")', "It is 6776."),  # spurious_call (Calculate disabled)
    "If I buy 7 more at the same price, how much do those 7 cost?": (
        'Calculate("7*4.5")',
        "They cost 30 dollars.",
    ),  # wrong_answer
}

SMOKE_ERRORS = {
    "calc-en-01": "ok",
    "calc-zh-01": "ok",
    "calc-en-02": "wrong_args",
    "solve-en-01": "ok",
    "solve-zh-01": "wrong_tool",
    "search-en-01": "ok",
    "search-zh-01": "missed_call",
    "image-en-01": "ok",
    "none-en-01": "ok",
    "none-zh-01": "format_error",
    "disabled-en-01": "spurious_call",
    "multi-en-01": "wrong_answer",
}

_LAST_HUMAN = re.compile(r"<\|Human\|>: (.*?)<eoh>\n", re.S)


def last_human(prompt: str) -> str:
    return _LAST_HUMAN.findall(prompt)[-1]


def moss_responder(script: Callable[[str], tuple[str, str]]) -> Callable[[str], str]:
    """A ``respond`` function: first generation from Commands, then the reply."""

    def respond(prompt: str) -> str:
        commands, reply = script(last_human(prompt))
        if prompt.endswith("<eoh>\n"):
            return f"<|Inner Thoughts|>: Let me think.<eot>\n<|Commands|>: {commands}<eoc>\n"
        return f"<|MOSS|>: {reply}<eom>\n"

    return respond


@pytest.fixture
def smoke_suite() -> Path:
    return SMOKE


@pytest.fixture
def smoke_llm() -> ScriptedMossLLM:
    return ScriptedMossLLM(respond=moss_responder(lambda q: SMOKE_SCRIPT[q]))


class Helpers:
    """The scripted smoke plan, shared by the eval tests (conftest modules are not importable)."""

    script = SMOKE_SCRIPT
    errors = SMOKE_ERRORS
    last_human = staticmethod(last_human)
    moss_responder = staticmethod(moss_responder)

    @staticmethod
    def smoke_llm() -> ScriptedMossLLM:
        return ScriptedMossLLM(respond=moss_responder(lambda q: SMOKE_SCRIPT[q]))


@pytest.fixture
def h() -> type[Helpers]:
    return Helpers
