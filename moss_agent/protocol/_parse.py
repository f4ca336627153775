"""Reading model text and program-written Results into typed objects."""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence

from moss_agent._call_syntax import scan_commands
from moss_agent.errors import ParseError
from moss_agent.protocol._objects import (
    Commands,
    ParsedGeneration,
    ResultLayout,
    Results,
    Snippet,
    ToolInvocation,
    ToolResult,
)
from moss_agent.protocol._strings import (
    COMMANDS_TAG,
    END_OF_COMMANDS,
    END_OF_HUMAN,
    END_OF_MESSAGE,
    END_OF_RESULTS,
    END_OF_TEXT,
    END_OF_THOUGHTS,
    HUMAN_TAG,
    INNER_THOUGHTS_TAG,
    MOSS_TAG,
    NO_CALL,
    RESULTS_TAG,
    SECTIONS,
)

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


def parse_commands(text: str, *, close_open_string: bool = False) -> Commands:
    """Read a Commands section's content into typed invocations; never raises.

    Args:
        text: The content between ``<|Commands|>:`` and ``<eoc>``.
        close_open_string: Read a last call whose text ends inside one of its string
            arguments as closed there (``Search("5" screen`` → ``Search('5" screen')``).
            Model output is read so: constrained decoding lets a model end Commands inside
            a string rather than run on; a written suite or dataset is read strictly.
    """
    scan = scan_commands(text, close_open_string=close_open_string)
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
    A last call whose Commands end inside one of its string arguments is read closed there
    (``close_open_string`` of :func:`parse_commands`). Never raises.
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
    commands = parse_commands(found["Commands"], close_open_string=True) if "Commands" in found else None
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
