"""The MOSS plugin protocol: every MOSS string, rendering and parsing.

Pure text, no torch. This module is the single source of truth for the tags, end
tokens and layouts that moss-moon-003-sft-plugin was trained on.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from importlib import resources
from typing import Any

from moss_agent._call_syntax import format_call, scan_commands
from moss_agent.errors import ParseError, UsageError

# --- Tags and end tokens -------------------------------------------------------------

HUMAN_TAG = "<|Human|>"
INNER_THOUGHTS_TAG = "<|Inner Thoughts|>"
COMMANDS_TAG = "<|Commands|>"
RESULTS_TAG = "<|Results|>"
MOSS_TAG = "<|MOSS|>"

END_OF_HUMAN = "<eoh>"
END_OF_THOUGHTS = "<eot>"
END_OF_COMMANDS = "<eoc>"
END_OF_RESULTS = "<eor>"
END_OF_MESSAGE = "<eom>"
END_OF_TEXT = "<|endoftext|>"

#: Every special token of the MOSS tokenizer that the protocol uses, in a stable order.
SPECIAL_TOKENS: tuple[str, ...] = (
    END_OF_TEXT,
    END_OF_HUMAN,
    END_OF_THOUGHTS,
    END_OF_COMMANDS,
    END_OF_RESULTS,
    END_OF_MESSAGE,
    HUMAN_TAG,
    INNER_THOUGHTS_TAG,
    COMMANDS_TAG,
    RESULTS_TAG,
    MOSS_TAG,
)

#: Where the model stops in the first generation of a plugin turn.
STOPS_AFTER_COMMANDS: tuple[str, ...] = (END_OF_COMMANDS,)
#: Where the model stops in the second generation (the reply).
STOPS_AFTER_REPLY: tuple[str, ...] = (END_OF_MESSAGE,)
#: End tokens that end a section wrongly; generation stops there too.
MISPLACED_ENDS: tuple[str, ...] = (END_OF_THOUGHTS, END_OF_RESULTS, END_OF_HUMAN)
#: Stops of a plugin turn's first generation: the end of Commands, or a section ended wrongly.
FIRST_STOPS: tuple[str, ...] = (END_OF_COMMANDS, END_OF_MESSAGE, RESULTS_TAG, HUMAN_TAG)
#: Stops of the reply generation.
REPLY_STOPS: tuple[str, ...] = (END_OF_MESSAGE, HUMAN_TAG, END_OF_RESULTS, END_OF_THOUGHTS)

#: The sentence after which the plugin switch block starts.
CAPABILITIES_HEADER = "Capabilities and tools that MOSS can possess.\n"
INNER_THOUGHTS_LABEL = "Inner thoughts"
#: What a turn with no tool call writes in Commands and in Results.
NO_CALL = "None"
#: The Results text of a failed tool, as MOSS was trained.
NO_RESULT = "No result."
#: The Results text of a successful Text2Image call.
IMAGE_GENERATED = "Image generated successfully."

#: Section name → (tag, end token), in the order the sections appear in a turn.
SECTIONS: dict[str, tuple[str, str]] = {
    "Human": (HUMAN_TAG, END_OF_HUMAN),
    "Inner Thoughts": (INNER_THOUGHTS_TAG, END_OF_THOUGHTS),
    "Commands": (COMMANDS_TAG, END_OF_COMMANDS),
    "Results": (RESULTS_TAG, END_OF_RESULTS),
    "MOSS": (MOSS_TAG, END_OF_MESSAGE),
}

# --- Plugins and the meta instruction ---------------------------------------------------


@dataclass(frozen=True)
class PluginDeclaration:
    """A line of the plugin switch block.

    Attributes:
        name: The API name the model calls, e.g. ``"Calculate"``.
        label: The switch-line label, e.g. ``"Calculator"``.
        api: The API text shown when enabled, e.g. ``"Calculate(expression)"``; ``None``
            for MOSS's built-in plugins that have no public API (image edition, speech).
    """

    name: str
    label: str
    api: str | None

    def switch_line(self, enabled: bool) -> str:
        """The line as the model was trained on it, with its trailing newline."""
        if enabled and self.api:
            return f"- {self.label}: enabled. API: {self.api}\n"
        return f"- {self.label}: disabled.\n"


def _read_prompt(name: str) -> str:
    return resources.files("moss_agent.prompts").joinpath(name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def default_meta_preamble() -> str:
    """MOSS's meta instruction up to the capabilities sentence."""
    return _read_prompt("meta_instruction.txt")


@lru_cache(maxsize=1)
def builtin_plugins() -> tuple[PluginDeclaration, ...]:
    """The six plugins of the switch block, in the trained order."""
    return tuple(PluginDeclaration(**p) for p in json.loads(_read_prompt("plugins.json")))


#: MOSS API names of the four plugins moss-agent runs.
DEFAULT_PLUGINS: tuple[str, ...] = ("Search", "Calculate", "Solve", "Text2Image")


def render_meta_instruction(
    enabled: Iterable[str] = DEFAULT_PLUGINS,
    *,
    custom: Sequence[PluginDeclaration] = (),
    inner_thoughts: bool = True,
    preamble: str | None = None,
    extra_instructions: str = "",
) -> str:
    """Build the meta instruction with the plugin switch block exactly as trained.

    Args:
        enabled: API names of the enabled plugins (built-in or custom).
        custom: Extra plugins, declared after the six built-in lines.
        inner_thoughts: Whether the ``- Inner thoughts: enabled.`` line says enabled.
        preamble: Text before the capabilities sentence; MOSS's own by default.
        extra_instructions: Text appended after the switch block (e.g. a system message);
            a trailing newline is added when missing.

    Raises:
        UsageError: An enabled name is neither built in nor declared in ``custom``.
    """
    enabled_set = set(enabled)
    known = {p.name for p in builtin_plugins()} | {p.name for p in custom}
    unknown = sorted(enabled_set - known)
    if unknown:
        raise UsageError(
            f"unknown plugin(s) {unknown}; built-in ones are {list(DEFAULT_PLUGINS)}, "
            "declare others with custom=[PluginDeclaration(...)]"
        )
    lines = [default_meta_preamble() if preamble is None else preamble, CAPABILITIES_HEADER]
    lines.append(f"- {INNER_THOUGHTS_LABEL}: {'enabled' if inner_thoughts else 'disabled'}.\n")
    for plugin in (*builtin_plugins(), *custom):
        lines.append(plugin.switch_line(plugin.name in enabled_set))
    if extra_instructions:
        lines.append(extra_instructions if extra_instructions.endswith("\n") else extra_instructions + "\n")
    return "".join(lines)


@dataclass(frozen=True)
class MetaInstruction:
    """A parsed meta instruction.

    Attributes:
        preamble: The text before the capabilities sentence.
        inner_thoughts: Whether inner thoughts are enabled.
        plugins: Every declared plugin line, in order.
        enabled: API names of the enabled plugins.
        extra_instructions: Text after the switch block.
    """

    preamble: str
    inner_thoughts: bool
    plugins: tuple[PluginDeclaration, ...]
    enabled: frozenset[str]
    extra_instructions: str = ""

    def render(self) -> str:
        """Render back to text; equal to the parsed text for well-formed input."""
        builtin = {p.name for p in builtin_plugins()}
        return render_meta_instruction(
            self.enabled,
            custom=[p for p in self.plugins if p.name not in builtin],
            inner_thoughts=self.inner_thoughts,
            preamble=self.preamble,
            extra_instructions=self.extra_instructions,
        )


_SWITCH_LINE = re.compile(
    r"- (?P<label>[^:\n]+): (?:(?P<on>enabled)\.(?: API: (?P<api>[^\n]*))?|disabled\.)\n"
)


def parse_meta_instruction(text: str) -> MetaInstruction:
    """Parse a meta instruction with a plugin switch block.

    Raises:
        ParseError: The capabilities sentence or the switch lines are missing.
    """
    head, sep, rest = text.partition(CAPABILITIES_HEADER)
    if not sep:
        raise ParseError("meta instruction has no capabilities sentence", text=text[:200], section="meta")
    by_label = {p.label: p for p in builtin_plugins()}
    inner_thoughts = True
    plugins: list[PluginDeclaration] = []
    enabled: set[str] = set()
    pos = 0
    seen_thoughts = False
    while m := _SWITCH_LINE.match(rest, pos):
        label, on, api = m.group("label"), bool(m.group("on")), m.group("api")
        if label == INNER_THOUGHTS_LABEL:
            inner_thoughts, seen_thoughts = on, True
        else:
            if label in by_label:
                plugin = by_label[label]
            else:
                name = (api or label).split("(")[0].strip()
                plugin = PluginDeclaration(name=name, label=label, api=api)
            plugins.append(plugin)
            if on:
                enabled.add(plugin.name)
        pos = m.end()
    if not seen_thoughts:
        raise ParseError(
            "meta instruction has no inner-thoughts switch line", text=rest[:200], section="meta"
        )
    return MetaInstruction(head, inner_thoughts, tuple(plugins), frozenset(enabled), rest[pos:])


# --- Typed protocol objects ------------------------------------------------------------


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


# --- Rendering ---------------------------------------------------------------------------


def render_section(name: str, content: str) -> str:
    r"""One section line as trained: ``<|Human|>: {content}<eoh>\\n``."""
    tag, end = SECTIONS[name]
    return f"{tag}: {content}{end}\n"


def _render_tool_result(item: ToolResult, first_hit: int) -> tuple[str, int]:
    if item.layout is ResultLayout.INLINE:
        return f"{item.call} => {item.text!r}\n", first_hit
    if item.layout is ResultLayout.HITS and not isinstance(item.output, str):
        lines = [f"{item.call} =>\n"]
        for offset, snippet in enumerate(item.output):
            lines.append(f"<|{first_hit + offset}|>: {snippet.render()}\n")
        return "".join(lines), first_hit + len(item.output)
    return f"{item.call} =>\n{item.text}\n", first_hit


def render_results(results: Results) -> str:
    """The Results section, numbering search hits across the searches of the turn."""
    if results.compact:
        body = "\n".join(item.text for item in results.items) if results.items else NO_CALL
        return f"{RESULTS_TAG}: {body}{END_OF_RESULTS}\n"
    if not results.items:
        return f"{RESULTS_TAG}:\n{NO_CALL}\n{END_OF_RESULTS}\n"
    parts = [f"{RESULTS_TAG}:\n"]
    next_hit = 1
    for item in results.items:
        text, next_hit = _render_tool_result(item, next_hit)
        parts.append(text)
    parts.append(f"{END_OF_RESULTS}\n")
    return "".join(parts)


def render_turn(turn: Turn) -> str:
    """Render the sections of a turn that are present, in protocol order."""
    parts = [render_section("Human", turn.human)]
    if turn.thoughts is not None:
        parts.append(render_section("Inner Thoughts", turn.thoughts))
    if turn.commands is not None:
        parts.append(render_section("Commands", turn.commands.render_text()))
    if turn.results is not None:
        parts.append(render_results(turn.results))
    if turn.reply is not None:
        parts.append(render_section("MOSS", turn.reply))
    return "".join(parts)


def render_conversation(meta_instruction: str, turns: Iterable[Turn]) -> str:
    """The full prompt text: meta instruction followed by every turn."""
    return meta_instruction + "".join(render_turn(t) for t in turns)


def result_for(invocation: ToolInvocation, output: str | Sequence[str], layout: ResultLayout) -> ToolResult:
    """Build the Results entry for a tool's output, in the layout MOSS data uses."""
    if layout is ResultLayout.HITS:
        if isinstance(output, str) or not output:
            return ToolResult(invocation.text, output if isinstance(output, str) else NO_RESULT)
        return ToolResult(invocation.text, tuple(Snippet(s) for s in output), ResultLayout.HITS)
    text = output if isinstance(output, str) else "\n".join(output)
    return ToolResult(invocation.text, text, layout)


def results_for(items: Sequence[ToolResult]) -> Results:
    """Wrap entries in a Results section; Text2Image-only turns use the compact form."""
    compact = bool(items) and all(i.call.startswith("Text2Image(") for i in items)
    return Results(tuple(items), compact=compact)


# --- Parsing -----------------------------------------------------------------------------

_MODEL_TAGS = {INNER_THOUGHTS_TAG: "Inner Thoughts", COMMANDS_TAG: "Commands", MOSS_TAG: "MOSS"}
_ANY_TAG = re.compile(
    "(" + "|".join(re.escape(t) for t in (*_MODEL_TAGS, HUMAN_TAG, RESULTS_TAG)) + r")[ \t]*[:：][ \t]?"
)
_END_TOKENS = re.compile(
    "|".join(
        re.escape(t)
        for t in (END_OF_HUMAN, END_OF_THOUGHTS, END_OF_COMMANDS, END_OF_RESULTS, END_OF_MESSAGE, END_OF_TEXT)
    )
)


def parse_section(text: str, name: str) -> str:
    r"""Read one well-formed section line (as in SFT data) and return its content.

    Raises:
        ParseError: The text is not ``{tag}: {content}{end}\\n``.
    """
    tag, end = SECTIONS[name]
    head, tail = f"{tag}: ", f"{end}\n"
    if not (text.startswith(head) and text.endswith(tail)) or len(text) < len(head) + len(tail):
        raise ParseError(f"not a {name} section", text=text[:200], section=name)
    return text[len(head) : -len(tail)]


def parse_commands(text: str) -> Commands:
    """Read a Commands section's content into typed invocations; never raises.

    Args:
        text: The content between ``<|Commands|>:`` and ``<eoc>``.
    """
    scan = scan_commands(text)
    invocations = tuple(ToolInvocation(c.name, c.args, c.kwargs, c.text) for c in scan.calls)
    errors = [ParseError(message, text=text[:500], section="Commands") for message in scan.errors]
    if not invocations and not scan.saw_none and not errors:
        errors.append(ParseError("empty Commands section", text=text, section="Commands"))
    return Commands(invocations, text, tuple(errors))


def parse_generation(text: str) -> ParsedGeneration:
    """Read model text (any prefix of a turn after Human) into thoughts, commands, reply.

    Tolerant of missing end tokens, full-width colons, extra whitespace and a model that
    writes no tags at all (its text becomes the reply). Text after a ``<|Human|>`` or
    ``<|Results|>`` tag (the model writing the program's part) is dropped with an error.
    Never raises.
    """
    errors: list[ParseError] = []
    found: dict[str, str] = {}
    matches = list(_ANY_TAG.finditer(text))
    if not matches:
        stripped = _END_TOKENS.split(text, maxsplit=1)[0].strip()
        if stripped:
            errors.append(ParseError("no protocol tags; text taken as the reply", text=text[:200]))
        return ParsedGeneration(reply=stripped or None, errors=tuple(errors))
    if text[: matches[0].start()].strip():
        errors.append(ParseError("text before the first tag ignored", text=text[:200]))
    for index, m in enumerate(matches):
        tag = m.group(1)
        if tag not in _MODEL_TAGS:
            errors.append(
                ParseError(
                    f"model wrote the program's {tag} section; ignored from there",
                    text=text[m.start() : m.start() + 200],
                )
            )
            break
        name = _MODEL_TAGS[tag]
        stop = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        content = _END_TOKENS.split(text[m.end() : stop], maxsplit=1)[0].strip()
        if name in found:
            errors.append(ParseError(f"{name} written twice; the first is kept", section=name))
            continue
        found[name] = content
    commands = parse_commands(found["Commands"]) if "Commands" in found else None
    if commands is not None:
        errors.extend(commands.errors)
    return ParsedGeneration(found.get("Inner Thoughts"), commands, found.get("MOSS"), tuple(errors))


_HIT_LINE = re.compile(r"<\|(\d+)\|>: ")
_LITERAL = re.compile(r"'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\"", re.S)


def _decode_literal(raw: str) -> str | None:
    """Decode a quoted Python string literal; ``None`` unless it re-renders identically."""
    if len(raw) > 100_000 or not _LITERAL.fullmatch(raw):
        return None
    try:
        value = ast.literal_eval(raw)  # a single string literal: builds a str, runs nothing
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, str) and repr(value) == raw else None


def _header(line: str, names: set[str]) -> tuple[str, str | None] | None:
    """Split a Results call line into (call, inline value or None)."""
    name = line.split("(", 1)[0]
    if names and name not in names:
        return None
    if line.endswith(" =>"):
        return line[:-3], None
    call, sep, value = line.rpartition(" => ")
    if sep and _decode_literal(value) is not None:
        return call, value
    return None


def parse_results(text: str, invocations: Sequence[ToolInvocation] = ()) -> Results:
    """Read a Results section written by a program (the SFT data, our own agent).

    Args:
        text: The whole section, from ``<|Results|>:`` to ``<eor>`` and its newline.
        invocations: The turn's calls; their names tell call lines from output lines.

    Raises:
        ParseError: The section is not laid out as MOSS Results are.
    """
    head = f"{RESULTS_TAG}:"
    tail = f"{END_OF_RESULTS}\n"
    if not text.startswith(head) or not text.endswith(tail):
        raise ParseError("not a Results section", text=text[:200], section="Results")
    body = text[len(head) : -len(tail)]
    if body == f" {NO_CALL}":
        return Results((), compact=True)
    if body == f"\n{NO_CALL}\n":
        return Results(())
    if body.startswith(" "):
        lines = body[1:].split("\n")
        if len(lines) != len(invocations):
            raise ParseError("compact Results do not match the calls", text=text[:200], section="Results")
        return Results(
            tuple(ToolResult(inv.text, line) for inv, line in zip(invocations, lines)), compact=True
        )
    if not body.startswith("\n") or not body.endswith("\n"):
        raise ParseError("Results body must start and end with a newline", text=text[:200], section="Results")
    names = {inv.name for inv in invocations}
    entries: list[tuple[str, str | None, list[str]]] = []
    for line in body[1:-1].split("\n"):
        header = _header(line, names)
        if header is not None:
            entries.append((header[0], header[1], []))
        elif entries and entries[-1][1] is None:
            entries[-1][2].append(line)
        else:
            raise ParseError(f"unexpected Results line: {line[:80]!r}", text=text[:200], section="Results")
    return Results(tuple(_entry(call, value, lines) for call, value, lines in entries))


def _entry(call: str, value: str | None, lines: list[str]) -> ToolResult:
    if value is not None:
        return ToolResult(call, _decode_literal(value) or "", ResultLayout.INLINE)
    if lines and _HIT_LINE.match(lines[0]):
        raw_hits: list[str] = []
        for line in lines:
            m = _HIT_LINE.match(line)
            if m:
                raw_hits.append(line[m.end() :])
            else:
                raw_hits[-1] += "\n" + line
        snippets = []
        for raw in raw_hits:
            decoded = _decode_literal(raw)
            snippets.append(Snippet(decoded) if decoded is not None else Snippet(raw, literal=False))
        return ToolResult(call, tuple(snippets), ResultLayout.HITS)
    return ToolResult(call, "\n".join(lines), ResultLayout.BLOCK)


class ReplyStreamFilter:
    """Strips the leading ``<|MOSS|>:`` tag from a reply streamed in pieces.

    Feed it each piece; it returns the text to show (possibly empty while the start of
    the stream could still be the tag). ``raw`` keeps everything fed.
    """

    def __init__(self) -> None:
        self.raw = ""
        self._emitted = 0
        self._started = False

    def feed(self, piece: str) -> str:
        """Add a piece; return the new visible text."""
        self.raw += piece
        if not self._started:
            stripped = self.raw.lstrip()
            prefix = f"{MOSS_TAG}:"
            if len(stripped) <= len(prefix) and prefix.startswith(stripped):
                return ""  # still (possibly) the tag: wait for the next piece
            self._started = True
            self._emitted = len(self.raw) - len(stripped)
            if stripped.startswith(prefix):
                self._emitted += len(prefix) + (stripped[len(prefix)] == " ")
        out = self.raw[self._emitted :]
        self._emitted = len(self.raw)
        return out
