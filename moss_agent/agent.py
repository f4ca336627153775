"""The MOSS plugin loop over any LangChain language model that speaks the protocol.

Per user turn: generate until ``<eoc>``; read the inner thoughts and Commands; run the
enabled tools (at most four calls, concurrently); append the Results; generate the reply
until ``<eom>``. Everything the model writes is untrusted: unreadable text becomes a
recorded parse error and the turn goes on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from langchain_core.language_models import BaseLanguageModel

from moss_agent.errors import UsageError
from moss_agent.protocol import (
    DEFAULT_PLUGINS,
    FIRST_STOPS,
    REPLY_STOPS,
    Commands,
    ParsedGeneration,
    ReplyStreamFilter,
    Results,
    ToolInvocation,
    Turn,
    builtin_plugins,
    parse_generation,
    render_meta_instruction,
    render_turn,
    results_for,
)
from moss_agent.tools.registry import ToolCallRecord, ToolRegistry

__all__ = [
    "AgentEvent",
    "CommandEvent",
    "MossAgent",
    "ReplyTokenEvent",
    "ResultEvent",
    "ThoughtsEvent",
    "TurnEndEvent",
    "TurnRecord",
    "run_batch",
]

MAX_COMMANDS = 4
MAX_QUERY_CHARS = 20_000


@dataclass(frozen=True)
class TurnRecord:
    """Everything that happened in one user turn.

    Attributes:
        query: The user's message.
        thoughts: The model's inner thoughts, if any.
        invocations: The tool calls read from Commands (at most four are run).
        tool_calls: What each run call returned, in order.
        results: The Results section the model read.
        reply: The final reply.
        parse_errors: What could not be read in the model's text.
        generations: The raw texts of the model's generations.
        timings: Seconds spent per phase (``first_generation``, ``tools``, ``reply``, ``total``).
        turn: The turn as kept in the conversation history.
    """

    query: str
    thoughts: str | None
    invocations: tuple[ToolInvocation, ...]
    tool_calls: tuple[ToolCallRecord, ...]
    results: Results
    reply: str
    parse_errors: tuple[str, ...]
    generations: tuple[str, ...]
    timings: dict[str, float]
    turn: Turn

    @property
    def tools_used(self) -> list[str]:
        """Names of the tools called, in order."""
        return [inv.name for inv in self.invocations]


@dataclass(frozen=True)
class ThoughtsEvent:
    """The model's inner thoughts of this turn."""

    text: str


@dataclass(frozen=True)
class CommandEvent:
    """A tool call the model made."""

    invocation: ToolInvocation


@dataclass(frozen=True)
class ResultEvent:
    """A tool call finished."""

    record: ToolCallRecord


@dataclass(frozen=True)
class ReplyTokenEvent:
    """A piece of the reply as it is generated."""

    text: str


@dataclass(frozen=True)
class TurnEndEvent:
    """The turn is complete."""

    record: TurnRecord


AgentEvent = ThoughtsEvent | CommandEvent | ResultEvent | ReplyTokenEvent | TurnEndEvent


@dataclass
class _TurnState:
    """Mutable state of the turn being run."""

    query: str
    prompt: str
    started: float = field(default_factory=time.perf_counter)
    timings: dict[str, float] = field(default_factory=dict)
    generations: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    first: ParsedGeneration | None = None
    invocations: tuple[ToolInvocation, ...] = ()
    records: list[ToolCallRecord] = field(default_factory=list)
    results: Results = field(default_factory=Results)


def _text_of(output: Any) -> str:
    """The text of an LLM (str) or chat model (message) output."""
    if isinstance(output, str):
        return output
    content = getattr(output, "content", output)
    return content if isinstance(content, str) else str(content)


class MossAgent:
    """A MOSS plugin agent over any LangChain LLM (or chat model) that speaks the protocol.

    Args:
        llm: The model. ``MossLLM`` for local MOSS checkpoints; any LangChain LLM whose
            ``invoke(prompt, stop=…)`` continues MOSS-format text works.
        tools: The plugin registry; :func:`~moss_agent.tools.registry.default_registry`
            when omitted.
        plugins: API names of the enabled plugins; calls to others read ``No result.``.
        inner_thoughts: Whether the meta instruction enables inner thoughts.
        system: Extra instructions appended to the meta instruction.
        compress_history: Replace earlier turns' Results with ``None`` to save context,
            as MOSS's production backend did.
        max_context_tokens: The model's context length; the oldest turns are dropped
            to keep the prompt under ``max_context_tokens - reserve_tokens``.
        reserve_tokens: Room kept for the model's generations.
    """

    def __init__(
        self,
        llm: BaseLanguageModel,
        *,
        tools: ToolRegistry | None = None,
        plugins: Sequence[str] = DEFAULT_PLUGINS,
        inner_thoughts: bool = True,
        system: str = "",
        compress_history: bool = True,
        max_context_tokens: int = 2048,
        reserve_tokens: int = 512,
    ) -> None:
        if tools is None:
            from moss_agent.tools.registry import default_registry

            tools = default_registry()
        self.llm = llm
        self.tools = tools
        self.plugins = tuple(plugins)
        missing = [p for p in self.plugins if p not in tools]
        if missing:
            raise UsageError(
                f"plugins {missing} are enabled but not registered; registered: {list(tools.plugins)}"
            )
        self.meta_instruction = render_meta_instruction(
            self.plugins,
            custom=tools.declarations(self.plugins),
            inner_thoughts=inner_thoughts,
            extra_instructions=system,
        )
        self.call_types = _call_types(tools, self.plugins)
        """The enabled custom tools' parameter kinds, which constrained decoding types values by
        (a ``MossLLM`` gets them as ``call_types``)."""
        self.compress_history = compress_history
        self.max_context_tokens = max_context_tokens
        self.reserve_tokens = reserve_tokens
        self.history: list[Turn] = []

    # --- prompt -------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget the conversation."""
        self.history.clear()

    def _history_for_prompt(self) -> list[Turn]:
        if not self.compress_history:
            return list(self.history)
        return [replace(t, results=Results()) if t.results and t.results.items else t for t in self.history]

    def build_prompt(self, query: str) -> str:
        """The prompt for a new user turn, history trimmed from the oldest turn to fit."""
        history = self._history_for_prompt()
        human = render_turn(Turn(human=query))
        budget = self.max_context_tokens - self.reserve_tokens
        while True:
            prompt = self.meta_instruction + "".join(render_turn(t) for t in history) + human
            if not history or self.llm.get_num_tokens(prompt) <= budget:
                return prompt
            history.pop(0)

    # --- the turn, step by step (shared by sync and async paths) -------------------------

    def _start(self, query: str) -> _TurnState:
        if not isinstance(query, str) or not query.strip():
            raise UsageError("the query must be a non-empty string")
        if len(query) > MAX_QUERY_CHARS:
            raise UsageError(f"the query is longer than {MAX_QUERY_CHARS} characters")
        return _TurnState(query=query, prompt=self.build_prompt(query))

    def _after_first(self, state: _TurnState, text: str) -> None:
        state.generations.append(text)
        state.timings["first_generation"] = time.perf_counter() - state.started
        first = parse_generation(text)
        state.first = first
        state.errors.extend(str(e) for e in first.errors)
        if first.commands is None and first.reply is None:
            state.errors.append("no Commands section")
        invocations = first.invocations
        if len(invocations) > MAX_COMMANDS:
            state.errors.append(f"{len(invocations)} commands; only the first {MAX_COMMANDS} are run")
            invocations = invocations[:MAX_COMMANDS]
        state.invocations = invocations

    def _after_tools(self, state: _TurnState, records: list[ToolCallRecord], seconds: float) -> None:
        state.records = records
        state.timings["tools"] = seconds
        state.results = results_for([r.result for r in records])
        for record in records:
            if record.error and record.error != "no result":
                state.errors.append(f"{record.invocation.name}: {record.error}")

    def _partial_turn(self, state: _TurnState) -> Turn:
        first = state.first
        commands = first.commands if first and first.commands else Commands()
        thoughts = first.thoughts if first and first.thoughts is not None else None
        return Turn(human=state.query, thoughts=thoughts, commands=commands, results=state.results)

    def _reply_prompt(self, state: _TurnState) -> str:
        partial = self._partial_turn(state)
        return state.prompt + render_turn(partial)[len(render_turn(Turn(human=state.query))) :]

    def _finish(self, state: _TurnState, reply_text: str | None) -> TurnRecord:
        first = state.first
        assert first is not None
        if reply_text is None:
            reply = first.reply or ""
        else:
            state.generations.append(reply_text)
            state.timings["reply"] = time.perf_counter() - state.started - sum(state.timings.values())
            parsed = parse_generation(reply_text)
            reply = parsed.reply if parsed.reply is not None else reply_text.strip()
            if parsed.reply is None and reply_text.strip():
                state.errors.append("reply has no MOSS tag")
        state.timings["total"] = time.perf_counter() - state.started
        turn = replace(self._partial_turn(state), reply=reply)
        self.history.append(turn)
        return TurnRecord(
            query=state.query,
            thoughts=first.thoughts,
            invocations=first.invocations,
            tool_calls=tuple(state.records),
            results=state.results,
            reply=reply,
            parse_errors=tuple(state.errors),
            generations=tuple(state.generations),
            timings=state.timings,
            turn=turn,
        )

    def _first_kwargs(self, llm_kwargs: dict[str, Any]) -> dict[str, Any]:
        from moss_agent.models.llm import with_call_types

        return with_call_types(self.llm, llm_kwargs, self.call_types)

    def _needs_reply_generation(self, state: _TurnState) -> bool:
        return state.first is None or state.first.reply is None

    # --- public API ----------------------------------------------------------------------

    def run(self, query: str, **llm_kwargs: Any) -> TurnRecord:
        """Run one user turn to completion and return its record."""
        record: TurnRecord | None = None
        for event in self.stream(query, **llm_kwargs):
            if isinstance(event, TurnEndEvent):
                record = event.record
        assert record is not None
        return record

    def stream(self, query: str, **llm_kwargs: Any) -> Iterator[AgentEvent]:
        """Run one user turn, yielding thoughts, commands, results and reply tokens."""
        state = self._start(query)
        first_kwargs = self._first_kwargs(llm_kwargs)
        first_text = _text_of(self.llm.invoke(state.prompt, stop=list(FIRST_STOPS), **first_kwargs))
        self._after_first(state, first_text)
        yield from self._first_events(state)
        tools_started = time.perf_counter()
        records = self.tools.run_all(state.invocations, self.plugins)
        self._after_tools(state, records, time.perf_counter() - tools_started)
        for record in records:
            yield ResultEvent(record)
        reply_text = None
        if self._needs_reply_generation(state):
            stream = ReplyStreamFilter()
            for chunk in self.llm.stream(self._reply_prompt(state), stop=list(REPLY_STOPS), **llm_kwargs):
                piece = stream.feed(_text_of(chunk))
                if piece:
                    yield ReplyTokenEvent(piece)
            reply_text = stream.raw
        elif state.first and state.first.reply:
            yield ReplyTokenEvent(state.first.reply)
        yield TurnEndEvent(self._finish(state, reply_text))

    def _first_events(self, state: _TurnState) -> Iterator[AgentEvent]:
        if state.first and state.first.thoughts:
            yield ThoughtsEvent(state.first.thoughts)
        for invocation in state.invocations:
            yield CommandEvent(invocation)

    async def arun(self, query: str, **llm_kwargs: Any) -> TurnRecord:
        """Async :meth:`run`."""
        record: TurnRecord | None = None
        async for event in self.astream(query, **llm_kwargs):
            if isinstance(event, TurnEndEvent):
                record = event.record
        assert record is not None
        return record

    async def astream(self, query: str, **llm_kwargs: Any) -> AsyncIterator[AgentEvent]:
        """Async :meth:`stream`; tools run in a worker thread."""
        state = self._start(query)
        first_kwargs = self._first_kwargs(llm_kwargs)
        first_text = _text_of(await self.llm.ainvoke(state.prompt, stop=list(FIRST_STOPS), **first_kwargs))
        self._after_first(state, first_text)
        for event in self._first_events(state):
            yield event
        tools_started = time.perf_counter()
        records = await asyncio.to_thread(self.tools.run_all, state.invocations, self.plugins)
        self._after_tools(state, records, time.perf_counter() - tools_started)
        for record in records:
            yield ResultEvent(record)
        reply_text = None
        if self._needs_reply_generation(state):
            stream = ReplyStreamFilter()
            async for chunk in self.llm.astream(
                self._reply_prompt(state), stop=list(REPLY_STOPS), **llm_kwargs
            ):
                piece = stream.feed(_text_of(chunk))
                if piece:
                    yield ReplyTokenEvent(piece)
            reply_text = stream.raw
        elif state.first and state.first.reply:
            yield ReplyTokenEvent(state.first.reply)
        yield TurnEndEvent(self._finish(state, reply_text))


def run_batch(turns: Sequence[tuple[MossAgent, str]], **llm_kwargs: Any) -> list[TurnRecord]:
    """Run one user turn for each ``(agent, query)``, batching the model's generations.

    The agents must share one LLM (``agents[i].llm``); their histories, plugins and tools
    may differ. The first generations of all turns run as one batch (``llm.batch``: the
    local engine pads and decodes them together), then the tools, then the replies.

    Args:
        turns: Pairs of an agent and its next user message.
        **llm_kwargs: Generation options passed to the LLM.
    """
    if not turns:
        return []
    llm = turns[0][0].llm
    if any(agent.llm is not llm for agent, _ in turns):
        raise UsageError("run_batch needs agents that share one LLM")
    states = [agent._start(query) for agent, query in turns]
    prompts: list[Any] = [s.prompt for s in states]
    from moss_agent.models.llm import with_call_types

    types = {name: kinds for agent, _ in turns for name, kinds in agent.call_types.items()}
    firsts = llm.batch(prompts, stop=list(FIRST_STOPS), **with_call_types(llm, llm_kwargs, types))
    for (agent, _), state, text in zip(turns, states, firsts):
        agent._after_first(state, _text_of(text))
        started = time.perf_counter()
        agent._after_tools(
            state, agent.tools.run_all(state.invocations, agent.plugins), time.perf_counter() - started
        )
    pending = [
        i for i, ((agent, _), state) in enumerate(zip(turns, states)) if agent._needs_reply_generation(state)
    ]
    replies: dict[int, str] = {}
    if pending:
        prompts = [turns[i][0]._reply_prompt(states[i]) for i in pending]
        outputs = llm.batch(prompts, stop=list(REPLY_STOPS), **llm_kwargs)
        replies = {i: _text_of(out) for i, out in zip(pending, outputs)}
    return [agent._finish(state, replies.get(i)) for i, ((agent, _), state) in enumerate(zip(turns, states))]


def _call_types(tools: ToolRegistry, enabled: Sequence[str]) -> dict[str, dict[str, str]]:
    """Each enabled custom tool's parameters' literal kinds, from its LangChain argument schema."""
    from moss_agent.models.call_constraint import literal_kinds

    builtin = {plugin.name for plugin in builtin_plugins()}
    return {
        name: {param: literal_kinds(schema) for param, schema in plugin.tool.args.items()}
        for name, plugin in tools.plugins.items()
        if name in enabled and name not in builtin and plugin.tool.args
    }
