"""Typed protocol objects: calls, Commands, Results, turns, parsed generations."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from moss_agent._call_syntax import format_call
from moss_agent.errors import ParseError
from moss_agent.protocol._strings import NO_CALL


@dataclass(frozen=True)
class ToolInvocation:
    """One tool call the model wrote in Commands.

    Attributes:
        name: The called API name, e.g. ``"Search"``.
        args: Positional arguments (MOSS calls have one string).
        kwargs: Keyword arguments (custom tools declared with several parameters).
        text: The call as written, e.g. ``'Search("上海 天气")'``; echoed in Results.
    """

    name: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    text: str = ""

    def __post_init__(self) -> None:
        if not self.text:
            object.__setattr__(self, "text", format_call(self.name, self.args, dict(self.kwargs)))

    @property
    def argument(self) -> str | None:
        """The single text argument of a MOSS call, when there is one."""
        if self.args:
            return str(self.args[0])
        if len(self.kwargs) == 1:
            return str(next(iter(self.kwargs.values())))
        return None

    @classmethod
    def call(cls, name: str, *args: Any, **kwargs: Any) -> ToolInvocation:
        """Build an invocation and its canonical text: ``ToolInvocation.call("Search", "q")``."""
        return cls(name, args, kwargs)


@dataclass(frozen=True)
class Commands:
    """A Commands section.

    Attributes:
        invocations: The calls read from it, in order.
        text: What the model wrote (verbatim); ``None`` renders as ``None``.
        errors: Parse errors for the parts that could not be read.
    """

    invocations: tuple[ToolInvocation, ...] = ()
    text: str | None = None
    errors: tuple[ParseError, ...] = ()

    def render_text(self) -> str:
        """The section's content: the verbatim text, else the canonical calls."""
        if self.text is not None:
            return self.text
        return ", ".join(inv.text for inv in self.invocations) if self.invocations else NO_CALL


class ResultLayout(str, Enum):
    """How one tool's output is laid out in Results (as in MOSS's data)."""

    INLINE = "inline"
    """``Calculate("1+1") => '2'``: one quoted value on the call line."""
    BLOCK = "block"
    """``Solve("…") =>`` then the output lines (``x = 26``…)."""
    HITS = "hits"
    """``Search("…") =>`` then numbered snippets ``<|1|>: '…'``."""


@dataclass(frozen=True)
class Snippet:
    """One search hit.

    Attributes:
        text: The snippet text.
        literal: Written as a Python string literal (``'…'``); ``False`` keeps ``text``
            as written (MOSS data has a few unquoted or broken snippets).
    """

    text: str
    literal: bool = True

    def render(self) -> str:
        """The snippet as it appears after ``<|n|>: ``."""
        return repr(self.text) if self.literal else self.text


@dataclass(frozen=True)
class ToolResult:
    """One tool's entry in Results.

    Attributes:
        call: The call text echoed before ``=>``.
        output: The output text, or the search snippets for the hits layout.
        layout: How it is written.
        error: Why the tool failed, when it did (not shown to the model).
    """

    call: str
    output: str | tuple[Snippet, ...]
    layout: ResultLayout = ResultLayout.BLOCK
    error: str | None = None

    @property
    def text(self) -> str:
        """The output as plain text (snippets joined by newlines)."""
        if isinstance(self.output, str):
            return self.output
        return "\n".join(s.text for s in self.output)


@dataclass(frozen=True)
class Results:
    """A Results section.

    Attributes:
        items: One entry per call; empty means no call (``None``).
        compact: Written on the tag's line: ``<|Results|>: None<eor>`` or
            ``<|Results|>: Image generated successfully.<eor>`` (both occur in MOSS data).
    """

    items: tuple[ToolResult, ...] = ()
    compact: bool = False


@dataclass(frozen=True)
class Turn:
    """One conversation turn; sections the model has not written yet are ``None``."""

    human: str
    thoughts: str | None = None
    commands: Commands | None = None
    results: Results | None = None
    reply: str | None = None


@dataclass(frozen=True)
class ParsedGeneration:
    """What the model wrote in one generation, read into typed parts.

    Attributes:
        thoughts: The inner thoughts, if written.
        commands: The Commands section, if written.
        reply: The reply, if written.
        errors: Everything that could not be read; never raised.
    """

    thoughts: str | None = None
    commands: Commands | None = None
    reply: str | None = None
    errors: tuple[ParseError, ...] = ()

    @property
    def invocations(self) -> tuple[ToolInvocation, ...]:
        """The tool calls, empty when there are none."""
        return self.commands.invocations if self.commands else ()
