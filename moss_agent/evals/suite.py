"""Eval suites: the case model, and loading JSONL suites and MOSS SFT conversation files.

A JSONL suite has one case a line::

    {"id": "calc-en-01", "messages": [{"role": "user", "content": "What is 1234 times 5678?"}],
     "plugins": ["Search", "Calculate", "Solve", "Text2Image"],
     "expect": {"tool": "Calculate", "value": 7006652}, "answer": ["7006652"]}

MOSS SFT conversation files (``.json`` with one conversation, ``.jsonl`` with one a line,
or folders of them) become one case per turn: the earlier turns' user and reply texts,
then the turn's human text; the expected tool and argument come from its Commands.

Nothing here raises for a bad case: every malformed line, conversation or duplicate id is
skipped and reported in :attr:`Suite.warnings` with its file and line number.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from moss_agent.conversations import ConversationRecord, parse_conversation
from moss_agent.errors import MossAgentError, UsageError
from moss_agent.protocol import DEFAULT_PLUGINS, ToolInvocation, parse_commands

__all__ = [
    "CORPUS_SUFFIX",
    "CustomToolSpec",
    "EvalCase",
    "Expectation",
    "Message",
    "Suite",
    "cases_from_conversation",
    "detect_language",
    "load_suite",
    "parse_solution_values",
]

#: A suite ``NAME.jsonl`` searches the corpus ``NAME.corpus.jsonl`` beside it, when present.
CORPUS_SUFFIX = ".corpus.jsonl"
MAX_SUITE_BYTES = 200_000_000
#: Most calls of an earlier assistant turn, and most characters of one call or thought.
MAX_HISTORY_CALLS = 8
MAX_CALL_CHARS = 2_000

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


class Message(BaseModel):
    """One earlier (or the final) message of a case."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["user", "assistant"]
    """Who wrote it."""
    content: str
    """The text."""
    thoughts: str | None = Field(default=None, max_length=MAX_CALL_CHARS)
    """An assistant turn's Inner Thoughts (for a turn with ``calls``; default: a no-call thought)."""
    calls: list[str] = Field(default_factory=list, max_length=MAX_HISTORY_CALLS)
    """An assistant turn's calls as MOSS writes them (``Solve("x+y=35, 2x+4y=94")``). The agent
    puts the turn in the prompt with these Commands and its Results compressed to ``None``, as it
    sends earlier turns; a chat target gets them as the AI message's tool calls, with no tool
    messages after them (so ChatMoss writes the same compressed Results)."""

    @model_validator(mode="after")
    def _check_calls(self) -> Message:
        if (self.calls or self.thoughts is not None) and self.role != "assistant":
            raise ValueError("only assistant messages have thoughts or calls")
        for call in self.calls:
            if len(call) > MAX_CALL_CHARS:
                raise ValueError(f"a call is longer than {MAX_CALL_CHARS} characters")
            commands = parse_commands(call)
            if commands.errors or len(commands.invocations) != 1:
                raise ValueError(f"{call[:80]!r} is not one call in MOSS syntax")
        return self

    @property
    def invocations(self) -> tuple[ToolInvocation, ...]:
        """The parsed :attr:`calls`."""
        return tuple(parse_commands(call).invocations[0] for call in self.calls)


class CustomToolSpec(BaseModel):
    """A custom tool declared by a case; run as a stub that returns :attr:`result`."""

    model_config = ConfigDict(extra="forbid")

    name: str
    """The API name the model calls (a Python identifier)."""
    description: str = ""
    """What the tool does (shown to chat models; the switch-line label for MOSS)."""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    """JSON schema of the keyword arguments."""
    result: str = "Done."
    """What every call returns."""

    @field_validator("name")
    @classmethod
    def _identifier(cls, name: str) -> str:
        if not name.isidentifier():
            raise ValueError(f"tool name {name!r} must be a Python identifier")
        return name

    @property
    def param_names(self) -> list[str]:
        """The declared parameter names, in order."""
        return list((self.parameters.get("properties") or {}).keys())


class Expectation(BaseModel):
    """What a right answer to a case looks like.

    ``tool`` must be given (``null`` means that calling no tool is right); the argument
    checks are optional and all of those given must pass.
    """

    model_config = ConfigDict(extra="forbid")

    tool: str | None
    """The tool that should be called, or ``None`` when no call is right."""
    value: int | float | None = None
    """Calculate: the call's expression, computed by our calculator, equals this (1e-6 relative)."""
    solution_values: list[int | float | str] | None = None
    """Solve: the multiset of solution values (``"1/9"`` style rationals allowed)."""
    keywords: list[str] | None = None
    """Search / Text2Image: the argument contains at least one of these (case-insensitive)."""
    args: dict[str, Any] | None = None
    """Custom tools: the call's keyword arguments equal these."""

    @model_validator(mode="after")
    def _checks_need_a_tool(self) -> Expectation:
        if self.tool is None and self.has_argument_check:
            raise ValueError("argument checks need an expected tool (expect.tool is null)")
        if self.value is not None and not math.isfinite(self.value):
            raise ValueError("expect.value must be a finite number")
        if self.solution_values is not None:
            parse_solution_values(self.solution_values)
        if self.keywords is not None and not all(k.strip() for k in self.keywords):
            raise ValueError("expect.keywords must be non-empty strings")
        return self

    @property
    def has_argument_check(self) -> bool:
        """Whether any argument check is given."""
        return any(x is not None for x in (self.value, self.solution_values, self.keywords, self.args))


def parse_solution_values(values: Sequence[object]) -> list[complex]:
    """Read expected solution values (numbers, ``"1/9"``, ``"2 - 3*I"``) as complex numbers.

    Raises:
        ValueError: A value is not a number.
    """
    from moss_agent.evals.scoring import parse_number

    parsed = []
    for value in values:
        number = parse_number(str(value))
        if number is None:
            raise ValueError(f"solution value {value!r} is not a number")
        parsed.append(number)
    return parsed


def detect_language(text: str) -> str:
    """``"zh"`` when the text has Chinese characters, else ``"en"``."""
    return "zh" if _CJK.search(text) else "en"


class EvalCase(BaseModel):
    """One eval case. Unknown fields are kept (``model_extra``) and written to the results."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1)
    """Unique within the suite."""
    messages: list[Message] = Field(min_length=1)
    """Earlier user/assistant turns, then the user turn under test."""
    plugins: list[str] = Field(default_factory=lambda: list(DEFAULT_PLUGINS))
    """Enabled MOSS tools (built-in or declared in ``tools``)."""
    expect: Expectation
    """The right tool choice and argument checks."""
    answer: list[str] = Field(default_factory=list)
    """Strings that must all occur in the final reply (numbers match equal numbers)."""
    lang: str | None = None
    """Language of the question; detected from the text when not given."""
    category: str | None = None
    """Free-form category for the report's breakdown."""
    tools: list[CustomToolSpec] = Field(default_factory=list)
    """Custom tools, registered as stubs."""
    search_results: dict[str, list[str]] | None = None
    """Recorded search snippets by query, used when the suite has no corpus."""

    _source: str = PrivateAttr(default="")
    _corpus: Path | None = PrivateAttr(default=None)

    @field_validator("answer", mode="before")
    @classmethod
    def _answer_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check(self) -> EvalCase:
        roles = [m.role for m in self.messages]
        expected_roles = ["user" if i % 2 == 0 else "assistant" for i in range(len(roles))]
        if roles != expected_roles or roles[-1] != "user":
            raise ValueError("messages must alternate user/assistant, starting and ending with user")
        if not self.messages[-1].content.strip():
            raise ValueError("the last user message is empty")
        known = set(DEFAULT_PLUGINS) | {t.name for t in self.tools}
        unknown = [p for p in self.plugins if p not in known]
        if unknown:
            raise ValueError(f"unknown plugins {unknown}; declare custom ones in 'tools'")
        if self.expect.tool is not None and self.expect.tool not in known:
            raise ValueError(f"expect.tool {self.expect.tool!r} is neither built in nor declared in 'tools'")
        # an earlier call of a tool the case does not enable could not be sent to a chat target
        # as a tool call, so the two targets would see different histories
        called = {inv.name for m in self.messages for inv in m.invocations}
        if called - set(self.plugins):
            raise ValueError(
                f"earlier calls name tools the case does not enable: {sorted(called - set(self.plugins))}"
            )
        if any(not a.strip() for a in self.answer):
            raise ValueError("answer strings must be non-empty")
        if self.lang is None:
            self.lang = detect_language(self.messages[-1].content)
        return self

    @property
    def query(self) -> str:
        """The user message under test."""
        return self.messages[-1].content

    @property
    def history(self) -> list[tuple[str, Message]]:
        """Earlier ``(user text, assistant message)`` pairs."""
        earlier = self.messages[:-1]
        return [(earlier[i].content, earlier[i + 1]) for i in range(0, len(earlier), 2)]

    @property
    def source(self) -> str:
        """Where the case was read (``path:line``)."""
        return self._source

    @property
    def corpus(self) -> Path | None:
        """The search corpus of the case's suite file, if it has one."""
        return self._corpus

    def custom_tool(self, name: str) -> CustomToolSpec | None:
        """The declared custom tool called ``name``."""
        return next((t for t in self.tools if t.name == name), None)

    def record_fields(self) -> dict[str, Any]:
        """The case as written in ``results.jsonl`` (unknown fields included)."""
        return self.model_dump(mode="json", exclude_none=True)


@dataclass
class Suite:
    """Cases loaded from a suite file or folder.

    Attributes:
        path: The file or folder given.
        cases: The valid cases, in file order.
        warnings: One line per skipped line, conversation or duplicate, with where it was.
        sha256: Hash of the suite's bytes (for a folder: of every file's name and bytes),
            corpora included.
        files: The suite files read.
    """

    path: Path
    cases: list[EvalCase] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sha256: str = ""
    files: list[Path] = field(default_factory=list)


def _suite_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and p.suffix in {".json", ".jsonl"} and not p.name.endswith(CORPUS_SUFFIX)
        )
    if path.is_file():
        return [path]
    raise UsageError(f"no such suite file or folder: {path}")


def corpus_for(suite_file: Path) -> Path | None:
    """``NAME.corpus.jsonl`` beside ``NAME.jsonl``, when it exists."""
    candidate = suite_file.with_name(suite_file.stem + CORPUS_SUFFIX)
    return candidate if candidate.is_file() else None


def _hash_files(path: Path, files: list[Path]) -> str:
    digest = hashlib.sha256()
    extra = [c for f in files if (c := corpus_for(f)) is not None]
    for file in [*files, *extra]:
        if path.is_dir() or len(files) > 1 or file != path:
            digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode() + b"\0")
        digest.update(file.read_bytes())
    return digest.hexdigest()


def _is_conversation_file(file: Path, lines: list[str]) -> bool:
    if file.suffix == ".json":
        return True
    for line in lines:
        if line.strip():
            try:
                first = json.loads(line)
            except json.JSONDecodeError:
                return False
            return isinstance(first, dict) and "chat" in first and "messages" not in first
    return False


def load_suite(path: str | Path) -> Suite:
    """Load a JSONL suite, an SFT conversation file, or a folder of either.

    Args:
        path: A ``.jsonl`` suite, a ``.json``/``.jsonl`` MOSS conversation file, or a folder
            (searched recursively; ``*.corpus.jsonl`` files are corpora, not suites).

    Returns:
        The suite; malformed parts are skipped and listed in ``warnings``.

    Raises:
        UsageError: The path does not exist, a file is too large, or no file was found.
    """
    path = Path(path)
    files = _suite_files(path)
    if not files:
        raise UsageError(f"no .json or .jsonl files under {path}")
    suite = Suite(path=path, files=files)
    seen: set[str] = set()
    for file in files:
        if file.stat().st_size > MAX_SUITE_BYTES:
            raise UsageError(f"{file} is larger than {MAX_SUITE_BYTES} bytes")
        text = file.read_text(encoding="utf-8")
        lines = text.splitlines() if file.suffix == ".jsonl" else [text]
        reader = _conversation_cases if _is_conversation_file(file, lines) else _jsonl_cases
        corpus = corpus_for(file)
        for case in reader(file, lines, suite.warnings):
            if case.id in seen:
                suite.warnings.append(f"{case.source}: duplicate id {case.id!r}; skipped")
                continue
            seen.add(case.id)
            case._corpus = corpus
            suite.cases.append(case)
    suite.sha256 = _hash_files(path, files)
    return suite


def _validation_message(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"])
        parts.append(f"{where}: {item['msg']}" if where else item["msg"])
    return "; ".join(parts)


def _jsonl_cases(file: Path, lines: list[str], warnings: list[str]) -> Iterator[EvalCase]:
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{file}:{number}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            warnings.append(f"{where}: not valid JSON ({exc.msg}); skipped")
            continue
        if not isinstance(data, dict):
            warnings.append(f"{where}: not a JSON object; skipped")
            continue
        try:
            case = EvalCase.model_validate(data)
        except ValidationError as exc:
            warnings.append(f"{where}: {_validation_message(exc)}; skipped")
            continue
        case._source = where
        yield case


def _conversation_cases(file: Path, lines: list[str], warnings: list[str]) -> Iterator[EvalCase]:
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{file}:{number}" if file.suffix == ".jsonl" else str(file)
        try:
            data = json.loads(line)
            record = parse_conversation(data, where)
        except json.JSONDecodeError as exc:
            warnings.append(f"{where}: not valid JSON ({exc.msg}); skipped")
            continue
        except MossAgentError as exc:
            warnings.append(f"{where}: {exc}; skipped")
            continue
        prefix = file.stem
        if file.suffix == ".jsonl":
            prefix += f"-{record.conversation_id if record.conversation_id is not None else number}"
        yield from cases_from_conversation(record, prefix, warnings)


def _expectation_for(invocation: ToolInvocation | None) -> Expectation:
    if invocation is None:
        return Expectation(tool=None)
    argument = invocation.argument
    expect = Expectation(tool=invocation.name)
    if argument is None:
        return expect
    if invocation.name == "Calculate":
        from moss_agent.tools.calculator import CalculationError, evaluate_expression

        try:
            value = evaluate_expression(argument)
        except CalculationError:
            return expect
        if isinstance(value, (int, float)) and math.isfinite(value):
            expect.value = float(value)
    elif invocation.name == "Solve":
        from moss_agent.evals.scoring import solution_value_texts, solution_values_from_text
        from moss_agent.tools.solver import solve

        output = solve(argument)
        if solution_values_from_text(output):
            expect.solution_values = [_value_text(t) for t in solution_value_texts(output)]
    elif invocation.name in ("Search", "Text2Image") and argument.strip():
        expect.keywords = [argument]
    return expect


def _value_text(text: str) -> int | str:
    """Integers as numbers, other values as the solver wrote them (``"1/9"``)."""
    return int(text) if re.fullmatch(r"-?\d+", text) else text


def cases_from_conversation(
    record: ConversationRecord, id_prefix: str, warnings: list[str] | None = None
) -> list[EvalCase]:
    """One case per turn of an SFT conversation.

    Args:
        record: The parsed conversation.
        id_prefix: Case ids are ``{id_prefix}-t{turn number}``.
        warnings: Where turns that cannot be cases are reported.

    Returns:
        The cases; a turn whose first call is not a built-in tool is skipped with a warning.
    """
    warnings = warnings if warnings is not None else []
    plugins = [p for p in DEFAULT_PLUGINS if p in record.meta.enabled]
    category = record.extra.get("category")
    cases = []
    messages: list[Message] = []
    for number, turn in enumerate(record.turns, 1):
        messages = [*messages, Message(role="user", content=turn.human)]
        invocations = turn.commands.invocations if turn.commands else ()
        first = invocations[0] if invocations else None
        if first is not None and first.name not in DEFAULT_PLUGINS:
            warnings.append(
                f"{record.source} turn {number}: calls {first.name!r}, not a built-in tool; skipped"
            )
        else:
            case = EvalCase(
                id=f"{id_prefix}-t{number}",
                messages=messages,
                plugins=plugins,
                expect=_expectation_for(first),
                category=category if isinstance(category, str) else None,
            )
            case._source = f"{record.source} turn {number}"
            cases.append(case)
        messages = [*messages, Message(role="assistant", content=turn.reply or "")]
    return cases
