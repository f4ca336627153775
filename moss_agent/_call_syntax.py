"""Reading tool calls out of the text a model writes after ``<|Commands|>:``.

Real MOSS output is messy: several calls separated by commas, numbered lists with
``# comments``, full-width parentheses and quotes, unescaped quotes inside strings,
``None (explanation…)`` and prose. This scanner walks the text left to right and never
evaluates anything: keyword-call syntax is parsed with :mod:`ast` and only literal
values are accepted (``ast.literal_eval`` on single nodes, which builds constants and
runs no code).
"""

from __future__ import annotations

import ast
import re
from typing import Any, NamedTuple

__all__ = ["ParsedCall", "CommandScan", "scan_commands", "format_call"]

OPEN_PARENS = "(（"
CLOSE_PARENS = ")）"
#: Opening quote → closing quotes accepted for it.
QUOTES: dict[str, str] = {'"': '"', "'": "'", "“": '”"', "‘": "’'", "「": "」", "”": '”"'}
#: Characters that may follow a closing quote; anything else means the quote was text.
AFTER_STRING = ",，)）"
SEPARATORS = ",，;；、"

MAX_COMMANDS_CHARS = 20_000
MAX_CALLS = 16
MAX_AST_CHARS = 5_000

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LIST_MARKER = re.compile(r"(?:\d{1,3}[.)、:：]|[-*•])[ \t]+")
_NONE = re.compile(r"(?i:none)(?![A-Za-z0-9_])")


class ParsedCall(NamedTuple):
    """One call as written: ``name(args…)``."""

    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    text: str


class CommandScan(NamedTuple):
    """What the scanner found in a Commands section."""

    calls: list[ParsedCall]
    errors: list[str]
    saw_none: bool
    none_reason: str


def _skip_junk(text: str, i: int) -> int:
    """Skip whitespace, separators, list markers and ``#`` comments."""
    n = len(text)
    while i < n:
        ch = text[i]
        if ch.isspace() or ch in SEPARATORS:
            i += 1
        elif ch == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
        else:
            m = _LIST_MARKER.match(text, i)
            if m and (i == 0 or text[i - 1] in "\n \t"):
                i = m.end()
            else:
                break
    return i


def _string_end(text: str, i: int, stop: int) -> int:
    """Index just past the string literal opening at ``text[i]``, or -1.

    A closing quote counts only when what follows it (after spaces) ends an argument;
    otherwise it is taken as an unescaped quote inside the string.
    """
    closers = QUOTES[text[i]]
    j = i + 1
    while j < stop:
        ch = text[j]
        if ch == "\\":
            j += 2
            continue
        if ch in closers:
            k = j + 1
            while k < stop and text[k] in " \t":
                k += 1
            if k >= stop or text[k] in AFTER_STRING:
                return j + 1
        j += 1
    return -1


def _call_extent(text: str, i: int) -> tuple[int, int]:
    """Where the call whose parenthesis is ``text[i]`` ends: ``(close, open_string)``.

    ``close`` is the index of the parenthesis closing it, or -1. ``open_string`` is where the
    first string that runs to the end of ``text`` opens, when that string is an argument of the
    call (not inside a bracket of its own); -1 otherwise or once the call closed.
    """
    parens = brackets = 0
    open_string, seen_open_string = -1, False
    j = i
    n = len(text)
    while j < n:
        ch = text[j]
        if ch in QUOTES and j > i:
            end = _string_end(text, j, n)
            if end > 0:
                j = end
                continue
            if not seen_open_string:
                seen_open_string = True
                open_string = j if parens + brackets == 1 else -1
        if ch in OPEN_PARENS:
            parens += 1
        elif ch in CLOSE_PARENS:
            parens -= 1
            if parens == 0:
                return j, -1
        elif ch in "[{":
            brackets += 1
        elif ch in "]}":
            brackets -= 1
        j += 1
    return -1, open_string


def _unescape(body: str) -> str:
    return re.sub(r"\\([\"'\\])", r"\1", body).replace("\\n", "\n")


def _split_arguments(inner: str) -> list[str]:
    """Split argument text on top-level commas, respecting strings and brackets."""
    items: list[str] = []
    depth = 0
    start = 0
    j = 0
    n = len(inner)
    while j < n:
        ch = inner[j]
        if ch in QUOTES:
            end = _string_end(inner, j, n)
            if end > 0:
                j = end
                continue
        elif ch in "([{（":
            depth += 1
        elif ch in ")]}）":
            depth -= 1
        elif ch in ",，" and depth == 0:
            items.append(inner[start:j])
            start = j + 1
        j += 1
    items.append(inner[start:])
    return [item.strip() for item in items if item.strip()]


def _tolerant_value(item: str) -> Any:
    if len(item) >= 2 and item[0] in QUOTES and item[-1] in QUOTES[item[0]]:
        return _unescape(item[1:-1])
    try:
        return ast.literal_eval(item) if len(item) <= 200 else item
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return item


def _parse_arguments(name: str, call_text: str, inner: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if len(call_text) <= MAX_AST_CHARS:
        try:
            node = ast.parse(call_text.strip(), mode="eval").body
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                args = tuple(ast.literal_eval(a) for a in node.args)
                kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg}
                if len(kwargs) == len(node.keywords):
                    return args, kwargs
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            pass
    positional: list[Any] = []
    keywords: dict[str, Any] = {}
    for item in _split_arguments(inner):
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.+)", item, flags=re.S)
        if m and item[0] not in QUOTES:
            keywords[m.group(1)] = _tolerant_value(m.group(2).strip())
        else:
            positional.append(_tolerant_value(item))
    return tuple(positional), keywords


def scan_commands(text: str, *, close_open_string: bool = False) -> CommandScan:
    """Read every call in a Commands section's text (tag and end token removed).

    Args:
        text: What the model wrote between ``<|Commands|>:`` and ``<eoc>``.
        close_open_string: Close a last call that ends inside one of its string arguments.

    Returns:
        The calls in order, error messages for text that is neither a call nor
        ``None``, whether ``None`` was written and the explanation after it.
    """
    calls: list[ParsedCall] = []
    errors: list[str] = []
    if len(text) > MAX_COMMANDS_CHARS:
        return CommandScan([], [f"Commands text is too long ({len(text)} characters)"], False, "")
    i = _skip_junk(text, 0)
    n = len(text)
    while i < n:
        none = _NONE.match(text, i)
        if none:
            return CommandScan(calls, errors, True, text[none.end() :].strip())
        m = _NAME.match(text, i)
        j = m.end() if m else i
        while j < n and text[j] in " \t":
            j += 1
        if not m or j >= n or text[j] not in OPEN_PARENS:
            errors.append(f"unreadable command text: {text[i : i + 80]!r}")
            break
        close, open_string = _call_extent(text, j)
        if close < 0:
            quote = open_string if close_open_string else -1
            if quote < 0:
                errors.append(f"unclosed call: {text[i : i + 80]!r}")
                break
            # the section ended inside the call's last string: close the string and the call
            inner = text[j + 1 :] + QUOTES[text[quote]][0]
            args, kwargs = _parse_arguments(m.group(), f"{text[i:j]}({inner})", inner)
            calls.append(ParsedCall(m.group(), args, kwargs, f"{text[i:j]}({inner})"))
            break
        call_text = text[i : close + 1]
        args, kwargs = _parse_arguments(m.group(), call_text, text[j + 1 : close])
        calls.append(ParsedCall(m.group(), args, kwargs, call_text))
        if len(calls) > MAX_CALLS:
            errors.append(f"more than {MAX_CALLS} calls")
            break
        i = _skip_junk(text, close + 1)
    return CommandScan(calls, errors, False, "")


def _quote(value: Any) -> str:
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    return repr(value)


def format_call(name: str, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None) -> str:
    """Write a call as the model should: ``Search("query")`` or ``f(a=1, b="x")``."""
    parts = [_quote(a) for a in args]
    parts += [f"{k}={_quote(v)}" for k, v in (kwargs or {}).items()]
    return f"{name}({', '.join(parts)})"
