"""Constrained decoding of Commands: a call names an enabled tool, a keyword names a declared parameter.

MOSS writes its calls as text (``<|Commands|>: Calculate("1+2")``), and a small or
uncertain model garbles names it has to copy from the meta instruction
(``get_为你生成(`` for ``get_weather(``), which makes the whole call invalid. While the
model writes the Commands section, :class:`CallConstraint` lets through only the tokens
that keep

- each call's name a prefix of ``Name(`` for a plugin the prompt's meta instruction
  enables, or of ``None`` (no call);
- each keyword of a call to a declared (non-built-in) tool a prefix of ``param=`` for a
  parameter in that tool's API line; values, quoted strings and positional arguments
  are free;
- a call to a declared tool open until it has every required parameter of its API line
  (keyword or positional; a parameter written with a default, ``unit=None``, is optional):
  no token that closes its parenthesis or ends the section gets through before.

It never decides *whether* to call (that is the thoughts' and the first token's
business: ``None`` stays allowed) nor what the arguments say. Everything outside
Commands is free. Built from the prompt alone, so it works for MOSS itself and for any
checkpoint that speaks the protocol; a prompt without a parsable meta instruction gets
no constraint.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from moss_agent.errors import ParseError
from moss_agent.protocol import (
    COMMANDS_TAG,
    END_OF_COMMANDS,
    END_OF_HUMAN,
    END_OF_MESSAGE,
    END_OF_RESULTS,
    END_OF_THOUGHTS,
    HUMAN_TAG,
    NO_CALL,
    builtin_plugins,
    parse_meta_instruction,
)

if TYPE_CHECKING:
    import torch

__all__ = ["CallConstraint", "CallGrammar"]

_SEPARATORS = ",\n"
_OPEN, _CLOSE = "([{", ")]}"


def _is_name_start(char: str) -> bool:
    return char.isascii() and (char.isalpha() or char == "_")


def _compatible(text: str, targets: Sequence[str]) -> bool:
    """Whether ``text`` is a prefix of a target or runs on past one."""
    return any(target.startswith(text) or text.startswith(target) for target in targets)


@dataclass(frozen=True)
class CallGrammar:
    """What a prompt allows in its Commands: enabled tool names and declared parameters.

    Attributes:
        names: API names of the enabled plugins.
        params: For each enabled declared tool, its parameter names (built-in plugins
            take one free expression and are absent).
        required: For each enabled declared tool, the parameters its API line gives no
            default (``f(a, b=None)``: ``a``); a call is not closed before it has them.
    """

    names: tuple[str, ...]
    params: dict[str, tuple[str, ...]] = field(default_factory=dict)
    required: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_prompt(cls, prompt: str) -> CallGrammar | None:
        """The grammar of the meta instruction that opens ``prompt``; None if it has none."""
        meta_text = prompt.split(HUMAN_TAG, 1)[0]
        try:
            meta = parse_meta_instruction(meta_text)
        except ParseError:
            return None
        builtin = {plugin.name for plugin in builtin_plugins()}
        names, params, required = [], {}, {}
        for plugin in meta.plugins:
            if plugin.name not in meta.enabled or not plugin.name.isidentifier():
                continue
            names.append(plugin.name)
            if plugin.name not in builtin and plugin.api:
                inside = plugin.api.partition("(")[2].rpartition(")")[0]
                declared = [m for part in inside.split(",") if (m := re.match(r"\s*(\w+)\s*(=)?", part))]
                params[plugin.name] = tuple(m.group(1) for m in declared)
                required[plugin.name] = tuple(m.group(1) for m in declared if not m.group(2))
        return cls(tuple(names), params, required)


@dataclass
class _Scanner:
    """Where the text of a Commands section has got to, one character at a time."""

    depth: int = 0
    quote: str | None = None
    escaped: bool = False
    segment: str = ""
    """The current top-level call's text before its ``(``."""
    closed: bool = False
    """The current top-level call's parenthesis has closed."""
    call: str = ""
    """The name of the call whose arguments are being written."""
    argument: str = ""
    """The current argument's text while it may still be a keyword name."""
    free_argument: bool = False
    """The current argument is a value (or past its ``=``): not constrained."""
    keywords: tuple[str, ...] = ()
    """The keywords of the current call's finished arguments."""
    positional: int = 0
    """How many of the current call's finished arguments were positional."""

    def _finish_argument(self) -> None:
        keyword = self._keyword()
        if keyword is not None:
            self.keywords += (keyword,)
        elif self.argument.strip():
            self.positional += 1

    def _keyword(self) -> str | None:
        """The current argument's keyword, once its ``=`` is written."""
        text = self.argument.strip()
        if not text.endswith("="):
            return None
        name = text[:-1].strip()
        return name if name.isidentifier() else None

    def missing(self, grammar: CallGrammar) -> tuple[str, ...]:
        """Required parameters of the open declared call not given yet (the current argument counts)."""
        if self.depth < 1 or not grammar.required.get(self.call):
            return ()
        given = set(self.keywords)
        positional = self.positional
        keyword = self._keyword()
        if keyword is not None:
            given.add(keyword)
        elif self.free_argument and self.argument.strip():
            positional += 1
        given.update(grammar.params[self.call][:positional])
        return tuple(name for name in grammar.required[self.call] if name not in given)

    def feed(self, text: str) -> None:
        for char in text:
            self._feed(char)

    def _feed(self, char: str) -> None:
        if self.quote is not None:
            if self.escaped:
                self.escaped = False
            elif char == "\\":
                self.escaped = True
            elif char == self.quote:
                self.quote = None
            return
        if self.depth == 1 and not self.free_argument and char not in ",)":
            # A keyword name runs until "="; a quote, a digit or any other sign makes a value.
            name = self.argument.strip()
            if char == "=" and name.isidentifier():
                self.free_argument = True
            elif not char.isspace() and not (_is_name_start(char) or (name and char.isalnum())):
                self.free_argument = True
            self.argument += char
        if char in "\"'":
            self.quote = char
        elif char in _OPEN:
            if self.depth == 0:
                self.call = self.segment.strip()
                self.argument, self.free_argument = "", False
                self.keywords, self.positional = (), 0
            self.depth += 1
        elif char in _CLOSE:
            self.depth = max(0, self.depth - 1)
            if self.depth == 0:
                self.closed = True
        elif char in _SEPARATORS and self.depth == 0:
            self.segment, self.closed = "", False
        elif char == "," and self.depth == 1:
            self._finish_argument()
            self.argument, self.free_argument = "", False
        elif self.depth == 0 and not self.closed:
            self.segment += char

    def state(self, grammar: CallGrammar) -> _State | None:
        """``(kind, partial text, targets, guard)`` where the next token is constrained; None where free.

        ``guard`` is ``(quote, escaped, depth)`` while the open call lacks a required
        parameter: then no token may close it.
        """
        guard = (self.quote or "", self.escaped, self.depth) if self.missing(grammar) else None
        if self.quote is not None:
            return None if guard is None else ("value", "", (), guard)
        if self.depth == 0 and not self.closed:
            partial = self.segment.lstrip()
            if partial.startswith(NO_CALL):
                return None
            return ("name", partial, (*(f"{name}(" for name in grammar.names), NO_CALL), None)
        if self.depth == 1 and not self.free_argument and self.call in grammar.params:
            names = grammar.params[self.call]
            targets = (*(f"{n}=" for n in names), *(f"{n} =" for n in names))
            return ("argument", self.argument.lstrip(), targets, guard)
        return None if guard is None else ("value", "", (), guard)


#: A constrained state: kind, partial text, targets, and the guard against closing a call.
_State = tuple[str, str, tuple[str, ...], tuple[str, bool, int] | None]


#: End markers of MOSS's sections: never part of a call, so barred while a call must stay open.
_END_MARKERS = (END_OF_HUMAN, END_OF_THOUGHTS, END_OF_COMMANDS, END_OF_RESULTS, END_OF_MESSAGE)


def _closes(token: str, guard: tuple[str, bool, int]) -> bool:
    """Whether ``token``, written where ``guard`` says, closes the call or ends the section."""
    if "<|" in token or any(marker in token for marker in _END_MARKERS):
        return True
    quote, escaped, depth = guard
    scanner = _Scanner(depth=depth, quote=quote or None, escaped=escaped)
    for char in token:
        scanner.feed(char)
        if scanner.depth == 0:
            return True
    return False


class CallConstraint:
    """The allowed next tokens of one generation (see the module docstring).

    Call :meth:`allowed` with the generation's text so far before each token. Build one
    per generation with :meth:`for_prompt`; the engine passes one ``cache`` to all of
    them, so each state's token set is computed once.

    Args:
        grammar: The prompt's tools.
        token_texts: The text of every token id (special tokens as their text).
        stop_ids: Token ids that end the Commands section (``<eoc>``, end of text): never
            allowed while a name is due or being written (an empty section is no call;
            ``None`` is the way to make none).
        prompt_tail: The Commands text the prompt itself ends with (a forced call), if any.
        cache: A dict shared across generations, keyed by state, holding allowed id tensors.
    """

    def __init__(
        self,
        grammar: CallGrammar,
        token_texts: Sequence[str],
        stop_ids: Sequence[int],
        *,
        prompt_tail: str | None = None,
        cache: dict[_State, torch.Tensor | None] | None = None,
    ) -> None:
        self.grammar = grammar
        self._texts = token_texts
        self._stop_ids = list(stop_ids)
        self._cache = {} if cache is None else cache
        self._seen = ""
        self._scanner: _Scanner | None = None
        self._awaiting_colon = False
        if prompt_tail is not None:
            self._scanner = _Scanner()
            self._scanner.feed(prompt_tail)

    @classmethod
    def for_prompt(
        cls,
        prompt: str,
        token_texts: Sequence[str],
        stop_ids: Sequence[int],
        cache: dict[_State, torch.Tensor | None] | None = None,
    ) -> CallConstraint | None:
        """A constraint for a generation that continues ``prompt``; None for a non-MOSS prompt."""
        grammar = CallGrammar.from_prompt(prompt)
        if grammar is None:
            return None
        head, tag, tail = prompt.rpartition(COMMANDS_TAG)
        prompt_tail = None
        if tag and "<|" not in tail and END_OF_COMMANDS not in tail and HUMAN_TAG in head:
            prompt_tail = tail[1:] if tail.startswith(":") else tail
        return cls(grammar, token_texts, stop_ids, prompt_tail=prompt_tail, cache=cache)

    def allowed(self, text: str) -> torch.Tensor | None:
        """Token ids allowed after the generated ``text``; None when any token is."""
        self._advance(text)
        if self._scanner is None or self._awaiting_colon:
            return None
        state = self._scanner.state(self.grammar)
        if state is None:
            return None
        if state not in self._cache:
            self._cache[state] = self._compute(*state)
        return self._cache[state]

    def _advance(self, text: str) -> None:
        if not text.startswith(self._seen):  # never happens with an append-only text; rescan
            self._seen, self._scanner, self._awaiting_colon = "", None, False
        new = text[len(self._seen) :]
        self._seen = text
        while new:
            if self._scanner is None:
                at = new.find(COMMANDS_TAG)
                if at < 0:
                    return
                new = new[at + len(COMMANDS_TAG) :]
                self._scanner, self._awaiting_colon = _Scanner(), True
                continue
            if self._awaiting_colon:
                new = new[1:] if new.startswith(":") else new
                self._awaiting_colon = False
                continue
            ends = [at for at in (new.find("<|"), new.find(END_OF_COMMANDS)) if at >= 0]
            if ends:
                self._scanner.feed(new[: min(ends)])
                self._scanner = None
                new = new[min(ends) :]
                continue
            self._scanner.feed(new)
            return

    def _compute(
        self, kind: str, partial: str, targets: tuple[str, ...], guard: tuple[str, bool, int] | None
    ) -> torch.Tensor | None:
        import torch

        stops = set(self._stop_ids)
        ids = [
            i
            for i, token in enumerate(self._texts)
            if i not in stops and self._fits(kind, partial, targets, guard, token)
        ]
        if not ids:  # the text already left the grammar (a forced prefix): do not block everything
            return None
        return torch.tensor(ids, dtype=torch.long)

    def _fits(
        self,
        kind: str,
        partial: str,
        targets: tuple[str, ...],
        guard: tuple[str, bool, int] | None,
        token: str,
    ) -> bool:
        """Whether ``token`` may follow ``partial`` in a region of ``kind``."""
        if guard is not None and _closes(token, guard):
            return False
        if kind == "value":  # only the guard applies
            return True
        if "\ufffd" in token:  # a piece of a multi-byte character: can be judged only once whole
            return not all(target.isascii() for target in targets)
        text = partial + token if partial else token.lstrip()
        if not text:
            return "<" not in token  # whitespace; special tokens are never part of a name
        if kind != "name" and not partial and not _is_name_start(text[0]):
            return True  # a value (a call that lacks a required parameter is kept open by the guard)
        target = next((t for t in targets if t.startswith(text) or text.startswith(t)), None)
        if target is None:
            return False
        if kind == "name" and len(text) > len(target) and target[:-1] in self.grammar.params:
            # the token runs on into the call's arguments (``(``, ``()``, ``(text``): check them too
            scanner = _Scanner(depth=1, call=target[:-1])
            for char in text[len(target) :]:
                state = scanner.state(self.grammar)
                if state is not None and state[0] != "name" and not self._fits(*state, char):
                    return False
                scanner.feed(char)
        return True
