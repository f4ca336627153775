"""Constrained decoding of Commands: calls of enabled tools, with arguments their API lines allow.

MOSS writes its calls as text (``<|Commands|>: Calculate("1+2")``), and a small or
uncertain model garbles names it has to copy from the meta instruction
(``get_为你生成(`` for ``get_weather(``) and writes arguments no parser can read
(``magic_function(input=3")``). While the model writes the Commands section,
:class:`CallConstraint` lets through only the tokens that keep

- each call's name a prefix of ``Name(`` for a plugin the prompt's meta instruction
  enables, or of ``None`` (no call);
- inside a call to a declared (non-built-in) tool, its arguments Python: each keyword a
  parameter of its API line not given yet, no positional argument after a keyword, no
  empty argument and no more arguments than parameters, each value a literal (a string,
  a number, ``True``/``False``/``None`` or a bracketed literal) followed only by ``,`` or
  ``)``; with the parameters' types (:meth:`CallGrammar.typed`, from a tool's JSON schema
  through :func:`literal_kinds`) a literal of its parameter's kind;
- such a call open until it has every required parameter of its API line (keyword or
  positional; a parameter written with a default, ``unit=None``, is optional);
- every call open until it closes: no section ends inside one, except the Commands section
  inside a string argument once the required parameters are there (the parser of model
  output closes that string and the call, so a stray quote need not run on to the token
  limit). A built-in plugin's argument is otherwise free.

It never decides *whether* to call (that is the thoughts' and the first token's
business: ``None`` stays allowed) nor what a value says. Everything outside Commands is
free. Built from the prompt alone (plus the types a caller knows), so it works for MOSS
itself and for any checkpoint that speaks the protocol; a prompt without a parsable meta
instruction gets no constraint.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from moss_agent.errors import ParseError
from moss_agent.models.number_slots import ROUND_TOKEN
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

__all__ = ["CallConstraint", "CallGrammar", "literal_kinds"]

_SEPARATORS = ",\n"
_OPEN, _CLOSE = "([{", ")]}"


#: The kinds of literal a value can be, as :func:`literal_kinds` names them.
_JSON_KINDS = {
    "string": "str", "integer": "int", "number": "num", "boolean": "bool", "null": "null",
    "array": "list", "object": "dict",
}  # fmt: skip


def literal_kinds(schema: Mapping[str, Any]) -> str:
    """The literals a JSON-schema property admits, ``|``-joined (``int|null``); ``""`` for any.

    ``{"type": "integer"}`` → ``int``; a union (``anyOf``/``oneOf``, a list of types) joins
    its members'; an ``enum`` or ``const`` is judged by its values; anything else admits any
    literal. Constrained decoding then lets a value begin only as one of these kinds can
    (a quote for ``str``, a digit or sign for ``int``/``num`` with no ``.`` for ``int``, ...).
    """
    found: set[str] = set()
    members: list[Any] = [*schema.get("anyOf", ()), *schema.get("oneOf", ())]
    declared = schema.get("type")
    for kind in [declared] if isinstance(declared, str) else list(declared or ()):
        members.append({"type": kind})
    values = schema["enum"] if isinstance(schema.get("enum"), list) else None
    if "const" in schema:
        values = [schema["const"]]
    if values is not None:
        members = [{"type": _value_type(v)} for v in values]
    for member in members:
        if not isinstance(member, Mapping):
            return ""
        kind = _JSON_KINDS.get(str(member.get("type")))
        composite = "type" not in member and member is not schema
        nested = literal_kinds(member) if kind is None and composite else ""
        if not kind and not nested:
            return ""
        found.update([kind] if kind else nested.split("|"))
    return "|".join(sorted(found))


def _value_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string" if isinstance(value, str) else "null" if value is None else "any"


def _is_name_start(char: str) -> bool:
    """Whether ``char`` may begin a Python identifier (``城市`` is one)."""
    return char.isidentifier()


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
        kinds: For a declared tool whose parameter types the caller knows (a LangChain
            tool's JSON schema, see :meth:`typed`), each parameter's :func:`literal_kinds`
            in the order of ``params``; a tool absent here takes any literal.
    """

    names: tuple[str, ...]
    params: dict[str, tuple[str, ...]] = field(default_factory=dict)
    required: dict[str, tuple[str, ...]] = field(default_factory=dict)
    kinds: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def typed(self, types: Mapping[str, Mapping[str, str]]) -> CallGrammar:
        """This grammar with value kinds: ``types`` maps a tool to its parameters' :func:`literal_kinds`."""
        kinds = {
            name: tuple(types[name].get(param, "") for param in params)
            for name, params in self.params.items()
            if name in types
        }
        return replace(self, kinds={**self.kinds, **kinds})

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


#: Whitespace a call may hold between its parts (Python's; ``str.isspace`` also admits control characters).
_SPACE = " \t\n"

#: Words a bare value may be (Python's constants).
_WORDS = ("True", "False", "None")


def _number_shape(text: str) -> str:
    """A number written so far with every digit as ``0`` and runs folded (``-12.5`` → ``-0.0``)."""
    return re.sub("0+", "0", re.sub("[0-9]", "0", text))


_NUMBER_PREFIX = re.compile(r"[-+]?(0(\.0?)?([eE][-+]?0?)?)?")
_NUMBER_WHOLE = re.compile(r"[-+]?0(\.0?)?([eE][-+]?0)?")
_INTEGER = re.compile(r"[-+]?0?")


@dataclass
class _Scanner:
    """Where the text of a Commands section has got to, one character at a time.

    Inside a call to a declared tool (:attr:`tool`: its parameters, required ones and kinds)
    it also checks the grammar of the arguments, setting :attr:`error` at the first
    character that breaks it: a keyword is a declared parameter not given yet, a value is
    a Python literal (string, number, ``True``/``False``/``None``, or a bracketed one),
    nothing follows a finished value but ``,`` or ``)``, an argument is not empty, a
    positional argument never follows a keyword one, there are no more arguments than
    parameters, and ``)`` waits for every required parameter.
    """

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
    """The current argument is a value (or past its ``=``)."""
    keywords: tuple[str, ...] = ()
    """The keywords of the current call's finished arguments."""
    positional: int = 0
    """How many of the current call's finished arguments were positional."""
    value: str = ""
    """The current argument's value at the call's own depth: ``""`` (not begun), ``str`` (in
    its quotes), ``nest`` (in its brackets), ``done``, ``0``-shaped number or a word's start."""
    tool: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] | None = None
    """Parameters, required parameters and parameter kinds (``""``: any literal) of the open
    call's declared tool; None if built in."""
    spaced: bool = False
    """The last character at the declared call's own depth, outside quotes, was a space."""
    error: bool = False
    no_call: bool = False
    """The section said ``None``: what follows is its explanation, as the parser reads it."""
    grammar: CallGrammar | None = field(default=None, repr=False, compare=False)

    def key(self) -> tuple[object, ...]:
        """Everything that decides which text may follow, for caching allowed-token sets."""
        if self.tool is None:  # a built-in plugin's argument: only where quotes and brackets are counts
            return (self.depth, self.quote, self.escaped)
        argument = self.argument if not self.free_argument else (self._keyword() or "") + "="
        return (
            self.depth, self.quote, self.escaped, self.tool, argument, self.free_argument,
            self.keywords, self.positional, self.value, self.spaced,
        )  # fmt: skip

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

    def missing(self) -> tuple[str, ...]:
        """Required parameters of the open declared call not given yet (the current argument counts)."""
        if self.depth < 1 or self.tool is None or not self.tool[1]:
            return ()
        params, required, _ = self.tool
        given = set(self.keywords)
        positional = self.positional
        keyword = self._keyword()
        if keyword is not None:
            given.add(keyword)
        elif self.free_argument and self.argument.strip():
            positional += 1
        given.update(params[:positional])
        return tuple(name for name in required if name not in given)

    def _keyword_targets(self) -> tuple[str, ...]:
        assert self.tool is not None
        names = [n for n in self.tool[0] if n not in self.keywords]
        return (*(f"{n}=" for n in names), *(f"{n} =" for n in names))

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
                if self.depth == 1 and self.value == "str":
                    self.value = "done"
            return
        if self.depth == 0 and not self.closed and self.segment.lstrip() == NO_CALL:
            self.no_call = self.no_call or not (char.isalnum() or char == "_")
        if self.depth == 1 and self.tool is not None:
            if not self._check(char):
                self.error = True
            self.spaced = char in _SPACE
        if self.depth == 1 and not self.free_argument and char not in ",)":
            # A keyword name runs until "="; a quote, a digit or any other sign makes a value.
            name = self.argument.strip()
            if char == "=" and name.isidentifier():
                self.free_argument = True
            elif char not in _SPACE and not (_is_name_start(char) or (name and char.isalnum())):
                self.free_argument = True
                self.value = self._start(char)
            elif self.tool is not None and self._word_value(char):
                self.free_argument, self.value = True, name + char
            self.argument += char
        elif self.depth == 1 and self.free_argument:
            self.value = self._next_value(char)
        if char in "\"'":
            self.quote = char
        elif char in _OPEN:
            if self.depth == 0:
                self.call = self.segment.strip()
                self.argument, self.free_argument, self.value = "", False, ""
                self.tool = self._declared(self.call)
                self.keywords, self.positional = (), 0
            self.depth += 1
        elif char in _CLOSE:
            self.depth = max(0, self.depth - 1)
            if self.depth == 0:
                self.closed = True
            elif self.depth == 1 and self.value == "nest":
                self.value = "done"
        elif char in _SEPARATORS and self.depth == 0:
            self.segment, self.closed = "", False
        elif char == "," and self.depth == 1:
            self._finish_argument()
            self.argument, self.free_argument, self.value = "", False, ""
        elif self.depth == 0 and not self.closed:
            self.segment += char

    def _declared(self, name: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] | None:
        """Parameters, required parameters and kinds of declared tool ``name``; None for any other call."""
        if self.grammar is None or name not in self.grammar.params:
            return None
        params = self.grammar.params[name]
        kinds = self.grammar.kinds.get(name) or ("",) * len(params)
        return params, self.grammar.required[name], kinds

    def _kinds(self) -> set[str]:
        """The literal kinds the current argument's parameter admits; empty for any."""
        if self.tool is None:
            return set()
        params, _, kinds = self.tool
        keyword = self._keyword()
        at = params.index(keyword) if keyword in params else self.positional
        return set(kinds[at].split("|")) - {""} if at < len(kinds) else set()

    def _start(self, char: str) -> str:
        """The value state after a value's first character (``bad`` if it cannot start one)."""
        kinds = self._kinds()
        if char in "\"'":
            kind, value = "str", "str"
        elif char in "[(":
            kind, value = "list", "nest"
        elif char == "{":
            kind, value = "dict", "nest"
        elif char.isdigit() or char in "-+":
            kind, value = ("num" if "num" in kinds else "int"), _number_shape(char)
        elif any(word.startswith(char) for word in _WORDS):
            kind, value = ("null" if char == "N" else "bool"), char
        else:
            return "bad"
        return value if not kinds or kind in kinds else "bad"

    def _next_value(self, char: str) -> str:
        """The value state after ``char`` (``,`` and ``)`` leave it: :meth:`_check` judges them)."""
        value = self.value
        if value == "":
            return "" if char in _SPACE else self._start(char)
        if value in ("str", "nest", "bad") or char in ",)":
            return value
        if char in _SPACE:
            return "done" if self._complete() else "bad"
        if value == "done":
            return "bad"
        if value[0] in "0-+":
            shape = _number_shape(value + char)
            whole = "num" in self._kinds() or not self._kinds()
            return shape if (_NUMBER_PREFIX if whole else _INTEGER).fullmatch(shape) else "bad"
        word = value + char
        return word if any(w.startswith(word) for w in _WORDS) else "bad"

    def _complete(self) -> bool:
        """Whether the current argument is a whole argument (so ``,`` or ``)`` may follow)."""
        if not self.free_argument:
            return False
        value = self.value
        if value == "done" or value in _WORDS:
            return True
        if value and value[0] in "0-+":
            return bool(_NUMBER_WHOLE.fullmatch(value))
        return False

    def _word_value(self, char: str) -> bool:
        """Whether ``char`` makes the name-like argument so far a positional ``True``/``False``/``None``."""
        text = self.argument.strip() + char
        if _compatible(text, self._keyword_targets()) or not any(w.startswith(text) for w in _WORDS):
            return False
        return self._start(text[0]) != "bad"  # the parameter admits a bool (or None)

    def _check(self, char: str) -> bool:
        """Whether ``char``, outside quotes at the declared call's own depth, keeps its grammar."""
        assert self.tool is not None
        if char in _SPACE and (char != " " or self.spaced):
            return False  # one space at a time and no line break: runs of them only delay the call
        params = self.tool[0]
        given = len(self.keywords) + self.positional
        if char == ",":
            return self._complete() and given + 1 < len(params)
        if char == ")":
            if not self.free_argument and not self.argument.strip():  # ``f()`` or ``f(a, )``
                return given == 0 and not self.missing()
            return self._complete() and not self.missing()
        if char in _CLOSE:
            return False
        if self.free_argument:
            return self._next_value(char) != "bad"
        text = self.argument.lstrip() + char
        if char in _SPACE:
            return not self.argument.strip() or _compatible(text, self._keyword_targets())
        if self._word_value(char):
            return not self.keywords and given < len(params)
        if _compatible(text, self._keyword_targets()) or (
            char == "\ufffd" and not all(t.isascii() for t in self._keyword_targets())
        ):
            return True
        if self.argument.strip():  # a name that is no parameter
            return False
        # a positional value: not after a keyword argument, and a literal
        return not self.keywords and given < len(params) and self._start(char) != "bad"

    def state(self, grammar: CallGrammar) -> _State | None:
        """A key for the constrained next token; None where any token may follow.

        ``("name", partial, targets)`` while a top-level call's name is written;
        ``("call", scanner key)`` inside a call's parentheses (for a built-in plugin only
        the section's end markers are barred there; a declared tool's arguments follow
        its grammar).
        """
        if self.no_call:
            return None
        if self.depth == 0 and self.quote is None:
            if self.closed:
                return None
            partial = self.segment.lstrip()
            if partial.startswith(NO_CALL):
                return None
            return ("name", partial, (*(f"{name}(" for name in grammar.names), NO_CALL))
        if self.depth == 0:  # a quote outside any call: text the parser will not read as a call
            return None
        return ("call", self.key())


#: A constrained state: ``("name", partial, targets)`` or ``("call", scanner key)``.
_State = tuple[object, ...]


#: End markers of MOSS's sections: never part of a call, so barred while a call is open.
_END_MARKERS = (END_OF_HUMAN, END_OF_THOUGHTS, END_OF_COMMANDS, END_OF_RESULTS, END_OF_MESSAGE)


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
            self._scanner = _Scanner(grammar=grammar)
            self._scanner.feed(prompt_tail)

    @classmethod
    def for_prompt(
        cls,
        prompt: str,
        token_texts: Sequence[str],
        stop_ids: Sequence[int],
        cache: dict[_State, torch.Tensor | None] | None = None,
        types: Mapping[str, Mapping[str, str]] | None = None,
    ) -> CallConstraint | None:
        """A constraint for a generation that continues ``prompt``; None for a non-MOSS prompt.

        ``types`` gives declared tools' parameter kinds (:meth:`CallGrammar.typed`).
        """
        grammar = CallGrammar.from_prompt(prompt)
        if grammar is None:
            return None
        if types:
            grammar = grammar.typed(types)
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
            self._cache[state] = self._compute(state, self._scanner)
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
                self._scanner, self._awaiting_colon = _Scanner(grammar=self.grammar), True
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

    def _compute(self, state: _State, scanner: _Scanner) -> torch.Tensor | None:
        import torch

        stops = set(self._stop_ids)
        if state[0] == "call":
            # The Commands may end inside a string that has all required parameters (the parser
            # closes such a call: a string with a stray quote, `Search("5" screen`, need not run on).
            in_string = scanner.quote is not None and scanner.depth == 1 and not scanner.missing()
            fits = _CallTokens(scanner)
            ids = [i for i, token in enumerate(self._texts) if (in_string if i in stops else fits(token))]
        else:
            _, partial, targets = state
            assert isinstance(partial, str) and isinstance(targets, tuple)
            ids = [
                i
                for i, token in enumerate(self._texts)
                if i not in stops and self._fits_name(partial, targets, token)
            ]
        if not ids:  # the text already left the grammar (a forced prefix): do not block everything
            return None
        return torch.tensor(ids, dtype=torch.long)

    def _fits_name(self, partial: str, targets: tuple[str, ...], token: str) -> bool:
        """Whether ``token`` may follow ``partial``, a call's name so far (``targets``: ``Name(``…)."""
        if "\ufffd" in token:  # a piece of a multi-byte character: can be judged only once whole
            return not all(target.isascii() for target in targets)
        text = partial + token if partial else token.lstrip()
        if not text:
            return "<" not in token  # whitespace; special tokens are never part of a name
        target = next((t for t in targets if t.startswith(text) or text.startswith(t)), None)
        if target is None:
            return False
        if len(text) > len(target) and target != NO_CALL:
            # the token runs on into the call's arguments (``(``, ``()``, ``(text``): check them too
            opened = _Scanner(grammar=self.grammar)
            opened.feed(target)
            return _fits_call(opened, text[len(target) :])
        return True


#: A number slot's token (``moss_agent.models.number_slots``): the model writes a number with it.
_SLOT_TOKEN = re.compile(r"<num\d+>")


def _fits_call(scanner: _Scanner, token: str) -> bool:
    """Whether ``token`` may follow inside an open call: no section end, and the tool's grammar kept."""
    return _CallTokens(scanner)(token)


class _CallTokens:
    """Judges tokens where ``scanner`` is inside a call (see :func:`_fits_call`).

    Fast enough for a vocabulary of 100000: the scanner after each distinct token prefix is
    computed once (most prefixes break the grammar at their first or second character), and a
    token whose rest stays inside a string is not read further.
    """

    _CLOSED = "closed"

    def __init__(self, scanner: _Scanner) -> None:
        self._after: dict[str, _Scanner | str | None] = {"": scanner}

    def __call__(self, token: str) -> bool:
        if "<" in token:
            if "<|" in token or any(marker in token for marker in _END_MARKERS):
                return False
            token = _SLOT_TOKEN.sub("0", token).replace(ROUND_TOKEN, "0")  # ``<round>`` precedes a slot
        start = self._after[""]
        assert isinstance(start, _Scanner)
        if start.quote is not None and start.quote not in token and "\\" not in token:
            return True  # it stays inside the string
        for end in range(1, len(token) + 1):
            state = self._state(token, end)
            if state is None:
                return False
            if isinstance(state, _Scanner) and state.quote is not None:
                rest = token[end:]
                if state.quote not in rest and "\\" not in rest:
                    return True  # the rest stays inside the string
        return True

    def _state(self, token: str, end: int) -> _Scanner | str | None:
        """The scanner after ``token[:end]``, whose parent prefix is known.

        None if the prefix broke the grammar; ``closed`` once the call closed (only
        separators may follow in the token).
        """
        prefix = token[:end]
        if prefix in self._after:
            return self._after[prefix]
        parent, char = self._after[prefix[:-1]], prefix[-1]
        state: _Scanner | str | None
        if parent is None or parent == self._CLOSED:
            state = parent if parent is None or char in " ,\n" else None
        else:
            assert isinstance(parent, _Scanner)
            probe = replace(parent)
            probe.feed(char)
            state = None if probe.error else self._CLOSED if probe.depth == 0 else probe
        self._after[prefix] = state
        return state
