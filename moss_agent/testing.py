"""Test doubles: language models that replay scripted MOSS text.

``ScriptedMossLLM`` lets the agent, the evals and your own chains run offline and
deterministically. It honours ``stop`` like a real model: a scripted generation is cut
at the first stop string, so a whole turn can be scripted as one text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.llms import LLM
from langchain_core.outputs import GenerationChunk
from pydantic import ConfigDict, Field, PrivateAttr

from moss_agent.protocol import render_section

__all__ = ["ScriptedMossLLM", "cut_at_stop", "turn_generations"]


def cut_at_stop(text: str, stop: Sequence[str] | None) -> str:
    """Cut ``text`` before the earliest occurrence of any stop string."""
    cut = len(text)
    for s in stop or ():
        index = text.find(s)
        if 0 <= index < cut:
            cut = index
    return text[:cut]


def turn_generations(thoughts: str, commands: str, reply: str) -> list[str]:
    """The two generations a MOSS model writes in one plugin turn.

    Args:
        thoughts: Inner thoughts text.
        commands: Commands text, e.g. ``'Calculate("1+1")'`` or ``"None"``.
        reply: The reply text.
    """
    first = render_section("Inner Thoughts", thoughts) + render_section("Commands", commands)
    return [first, render_section("MOSS", reply)]


class ScriptedMossLLM(LLM):
    """A LangChain LLM that replays scripted generations in order (or computes them).

    Args:
        responses: Texts returned one per call, cut at the call's stop strings.
        respond: Alternatively a function ``prompt -> text`` called on every call.
        chunk_size: Characters per streamed chunk.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    responses: list[str] = Field(default_factory=list)
    respond: Callable[[str], str] | None = None
    chunk_size: int = 3
    prompts: list[str] = Field(default_factory=list)
    """Every prompt received, in order."""
    stops: list[list[str] | None] = Field(default_factory=list)
    """The stop list of every call, in order."""
    _next: int = PrivateAttr(default=0)

    @property
    def _llm_type(self) -> str:
        return "scripted-moss"

    def _next_text(self, prompt: str, stop: list[str] | None) -> str:
        self.prompts.append(prompt)
        self.stops.append(stop)
        if self.respond is not None:
            text = self.respond(prompt)
        else:
            if self._next >= len(self.responses):
                raise IndexError(f"ScriptedMossLLM ran out of responses after {len(self.responses)} calls")
            text = self.responses[self._next]
            self._next += 1
        return cut_at_stop(text, stop)

    def _call(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> str:
        return self._next_text(prompt, stop)

    def _stream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[GenerationChunk]:
        text = self._next_text(prompt, stop)
        for start in range(0, len(text), self.chunk_size):
            piece = text[start : start + self.chunk_size]
            if run_manager:
                run_manager.on_llm_new_token(piece)
            yield GenerationChunk(text=piece)

    def get_num_tokens(self, text: str) -> int:
        """A crude, deterministic count: one token per four characters."""
        return len(text) // 4 + 1
