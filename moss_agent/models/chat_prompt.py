"""LangChain messages and tools ↔ MOSS protocol text (no torch).

- ``tools_to_plugins``: any LangChain tool, pydantic model, function or OpenAI tool dict
  becomes a plugin line. One string argument → MOSS's ``Name(param)`` API and
  ``Name("text")`` calls; otherwise ``name(a, b)`` with keyword calls ``name(a=1, b="x")``.
- ``messages_to_prompt``: a message list becomes the MOSS prompt, ending where the model
  writes next (a new turn, or the reply after tool Results).
- ``invocations_to_tool_calls``: the model's calls become LangChain tool calls.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.messages.tool import ToolCall, invalid_tool_call, tool_call
from langchain_core.utils.function_calling import convert_to_openai_tool

from moss_agent.errors import UsageError
from moss_agent.models.call_constraint import literal_kinds
from moss_agent.protocol import (
    NO_CALL,
    Commands,
    PluginDeclaration,
    ResultLayout,
    Results,
    ToolInvocation,
    ToolResult,
    Turn,
    render_meta_instruction,
    render_results,
    render_section,
    render_turn,
)

__all__ = [
    "BoundTool",
    "ChatPrompt",
    "invocations_to_tool_calls",
    "messages_to_prompt",
    "tool_call_to_invocation",
    "tools_to_plugins",
]

MAX_LABEL_CHARS = 80


@dataclass(frozen=True)
class BoundTool:
    """A tool bound to the chat model.

    Attributes:
        declaration: Its plugin line.
        params: Parameter names, in order.
        single_text: Whether it takes exactly one string (MOSS call syntax).
        kinds: Each parameter's literal kinds from its JSON schema (``int``, ``str|null``,
            ``""`` for any), in the order of ``params``: constrained decoding types values by them.
    """

    declaration: PluginDeclaration
    params: tuple[str, ...]
    single_text: bool
    kinds: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The tool's name."""
        return self.declaration.name


def _label(name: str, description: str) -> str:
    first = re.split(r"(?<=[.!?。])\s|\n", description.strip(), maxsplit=1)[0] if description else ""
    label = re.sub(r"[:\n：]+", " ", first).strip().rstrip(".。") or name
    return label[:MAX_LABEL_CHARS]


def call_thought(names: Iterable[str]) -> str:
    """The Inner Thoughts given to an earlier call turn that records none (MOSS's kind of thought)."""
    called = ", ".join(dict.fromkeys(names))
    return f"The user's request matches the {called} tool, so I should call it."


def _api_parameter(name: str, schema: dict[str, Any], required: bool) -> str:
    """A parameter as its tool's API line writes it: ``name``, or ``name=default`` when optional.

    Constrained Commands decoding (``moss_agent.models.call_constraint``) keeps a call open
    until it has the parameters written without a default.
    """
    if required:
        return name
    default = schema.get("default")
    text = repr(default) if isinstance(default, (bool, int, float, str)) else "None"
    return f"{name}={text if len(text) <= 24 else 'None'}"


def tools_to_plugins(tools: Sequence[Any]) -> list[BoundTool]:
    """Turn LangChain tools / pydantic models / functions / tool dicts into plugins."""
    bound = []
    for tool in tools:
        spec = convert_to_openai_tool(tool)["function"]
        name = spec["name"]
        if not name.isidentifier():
            raise UsageError(f"tool name {name!r} must be a Python identifier for MOSS's call syntax")
        properties = spec.get("parameters", {}).get("properties", {})
        required = spec.get("parameters", {}).get("required", list(properties))
        params = tuple(properties)
        single_text = len(params) == 1 and properties[params[0]].get("type") == "string"
        api = f"{name}({', '.join(_api_parameter(p, properties[p], p in required) for p in params)})"
        declaration = PluginDeclaration(name, _label(name, spec.get("description", "")), api)
        kinds = tuple(literal_kinds(properties[p]) for p in params)
        bound.append(BoundTool(declaration, params, single_text, kinds))
    return bound


def call_types(tools: Sequence[BoundTool]) -> dict[str, dict[str, str]]:
    """Each bound tool's parameter kinds, for constrained decoding (``call_types`` of the engine)."""
    return {tool.name: dict(zip(tool.params, tool.kinds, strict=True)) for tool in tools if tool.kinds}


def tool_call_to_invocation(call: ToolCall, tools: dict[str, BoundTool]) -> ToolInvocation:
    """Write a LangChain tool call in the syntax the model uses for that tool."""
    bound = tools.get(call["name"])
    args = dict(call.get("args") or {})
    if bound is not None and bound.single_text and set(args) == set(bound.params):
        return ToolInvocation.call(call["name"], str(args[bound.params[0]]))
    return ToolInvocation.call(call["name"], **args)


def invocations_to_tool_calls(
    invocations: Sequence[ToolInvocation], tools: dict[str, BoundTool]
) -> tuple[list[ToolCall], list[Any]]:
    """Map the model's calls to LangChain tool calls; unreadable ones become invalid calls."""
    calls: list[ToolCall] = []
    invalid: list[Any] = []
    for inv in invocations:
        call_id = f"call_{uuid.uuid4().hex[:24]}"
        bound = tools.get(inv.name)
        if bound is None:
            invalid.append(
                invalid_tool_call(
                    name=inv.name, args=inv.text, id=call_id, error=f"tool {inv.name!r} is not bound"
                )
            )
            continue
        args: dict[str, Any] = dict(inv.kwargs)
        extra = list(inv.args)
        for param in bound.params:
            if param not in args and extra:
                args[param] = extra.pop(0)
        unknown = sorted(set(args) - set(bound.params))
        if extra or unknown:
            invalid.append(
                invalid_tool_call(
                    name=inv.name,
                    args=inv.text,
                    id=call_id,
                    error=f"arguments do not match {bound.declaration.api}",
                )
            )
            continue
        calls.append(tool_call(name=inv.name, args=args, id=call_id))
    return calls, invalid


@dataclass
class ChatPrompt:
    """The MOSS prompt for a message list.

    Attributes:
        text: The prompt.
        after_results: The prompt ends with tool Results: the model writes the reply next.
    """

    text: str
    after_results: bool = False
    turns: list[Turn] = field(default_factory=list)


def _text(message: BaseMessage) -> str:
    return message.text if isinstance(message.text, str) else str(message.content)


def _result_for(call_text: str, message: ToolMessage) -> ToolResult:
    artifact = message.artifact
    if isinstance(artifact, list) and artifact and all(isinstance(a, str) for a in artifact):
        from moss_agent.protocol import Snippet

        return ToolResult(call_text, tuple(Snippet(a) for a in artifact), ResultLayout.HITS)
    content = _text(message)
    layout = ResultLayout.INLINE if "\n" not in content else ResultLayout.BLOCK
    return ToolResult(call_text, content, layout)


def messages_to_prompt(
    messages: Sequence[BaseMessage],
    tools: Sequence[BoundTool] = (),
    *,
    enabled: Sequence[str] | None = None,
    inner_thoughts: bool = True,
) -> ChatPrompt:
    """Render a LangChain conversation as a MOSS prompt.

    Raises:
        UsageError: The conversation does not end with a human or tool message.
    """
    system = "\n".join(_text(m) for m in messages if isinstance(m, SystemMessage))
    names = [t.name for t in tools] if enabled is None else list(enabled)
    builtin_names = {"Search", "Calculate", "Solve", "Text2Image"}
    meta = render_meta_instruction(
        [n for n in names if n in builtin_names or n in {t.name for t in tools}],
        custom=[t.declaration for t in tools if t.name not in builtin_names],
        inner_thoughts=inner_thoughts,
        extra_instructions=system,
    )
    by_name = {t.name: t for t in tools}
    turns: list[Turn] = []
    current: Turn | None = None
    calls_by_id: dict[str, str] = {}
    pending: list[ToolResult] = []
    conversation = [m for m in messages if not isinstance(m, SystemMessage)]
    if not conversation or isinstance(conversation[-1], AIMessage):
        raise UsageError("the conversation must end with a human or tool message")

    def flush_results() -> None:
        nonlocal current
        if current is not None and pending:
            current = Turn(current.human, current.thoughts, current.commands, Results(tuple(pending)))
            pending.clear()

    for message in conversation:
        if isinstance(message, HumanMessage) or message.type == "human":
            flush_results()
            if current is not None:
                turns.append(current)
            current = Turn(human=_text(message))
        elif isinstance(message, AIMessage):
            flush_results()
            if current is None:
                current = Turn(human="")
            thoughts = str(message.additional_kwargs.get("reasoning_content") or "") or None
            if message.tool_calls:
                invocations = tuple(tool_call_to_invocation(c, by_name) for c in message.tool_calls)
                for call, inv in zip(message.tool_calls, invocations):
                    calls_by_id[call.get("id") or ""] = inv.text
                if not thoughts:  # a message MOSS did not write: give it MOSS's kind of thought
                    thoughts = call_thought(c["name"] for c in message.tool_calls)
                current = Turn(current.human, thoughts, Commands(invocations))
            elif current.commands is None:
                current = Turn(current.human, thoughts or NO_CALL, Commands(), Results(), _text(message))
            else:
                current = Turn(
                    current.human,
                    current.thoughts,
                    current.commands,
                    current.results or Results(),
                    _text(message),
                )
        elif isinstance(message, ToolMessage):
            call_text = calls_by_id.get(
                message.tool_call_id, ToolInvocation.call(message.name or "tool").text
            )
            pending.append(_result_for(call_text, message))
        else:
            raise UsageError(f"unsupported message type {message.type!r}")
    flush_results()
    assert current is not None
    turns.append(current)
    text = meta + "".join(render_turn(t) for t in turns)
    return ChatPrompt(text, after_results=current.results is not None, turns=turns)


def no_call_continuation(thoughts: str | None, commands_text: str = NO_CALL) -> str:
    """What follows a first generation that called no tool, up to where the reply starts."""
    return (
        render_section("Inner Thoughts", thoughts or NO_CALL)
        + render_section("Commands", commands_text)
        + render_results(Results())
    )


def args_json(args: dict[str, Any]) -> str:
    """Tool-call arguments as the JSON text of a tool-call chunk."""
    return json.dumps(args, ensure_ascii=False)
