r"""MOSS SFT conversation files: reading, round-tripping and validating them.

The schema is the one of MOSS's SFT data (``conversation_with_plugins``)::

    {"conversation_id": 1, "meta_instruction": "…", "num_turns": 2, "category": "tool",
     "chat": {"turn_1": {"Human": "<|Human|>: …<eoh>\\n", "Inner Thoughts": "…",
                         "Commands": "…", "Tool Responses": "…", "MOSS": "…"}}}

Files are ``.json`` (one conversation) or ``.jsonl`` (one conversation a line).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moss_agent.errors import MossAgentError, ParseError, UsageError
from moss_agent.protocol import (
    MetaInstruction,
    Turn,
    parse_commands,
    parse_meta_instruction,
    parse_results,
    parse_section,
    render_results,
    render_section,
)

__all__ = [
    "ConversationRecord",
    "ValidationFailure",
    "ValidationSummary",
    "iter_conversation_files",
    "load_conversations",
    "parse_conversation",
    "render_turn_fields",
    "validate_paths",
]

#: JSON field of each section in a turn of the SFT schema.
TURN_FIELDS = ("Human", "Inner Thoughts", "Commands", "Tool Responses", "MOSS")
MAX_FILE_BYTES = 200_000_000


@dataclass(frozen=True)
class ConversationRecord:
    """A parsed SFT conversation.

    Attributes:
        meta: The parsed meta instruction.
        turns: The turns, every section present.
        source: Where it was read from (``path`` or ``path:line``).
        conversation_id: The file's id, if any.
        extra: Other top-level fields, kept as they were.
    """

    meta: MetaInstruction
    turns: tuple[Turn, ...]
    source: str = ""
    conversation_id: Any = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def parse_conversation(data: Mapping[str, Any], source: str = "") -> ConversationRecord:
    """Parse one conversation in the SFT schema.

    Raises:
        ParseError: A section is malformed; the message names the turn.
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("chat"), Mapping):
        raise ParseError(f"{source}: not a MOSS conversation (no 'chat' object)")
    meta = parse_meta_instruction(str(data.get("meta_instruction", "")))
    turns = []
    for key in sorted(data["chat"], key=_turn_number):
        fields = data["chat"][key]
        try:
            turns.append(_parse_turn(fields))
        except ParseError as exc:
            raise ParseError(f"{key}: {exc}", text=exc.text, section=exc.section) from exc
    extra = {k: v for k, v in data.items() if k not in {"meta_instruction", "chat", "conversation_id"}}
    return ConversationRecord(meta, tuple(turns), source, data.get("conversation_id"), extra)


def _turn_number(key: str) -> int:
    try:
        return int(key.rsplit("_", 1)[-1])
    except ValueError:
        return 1 << 30


def _parse_turn(fields: Mapping[str, str]) -> Turn:
    missing = [f for f in TURN_FIELDS if f not in fields]
    if missing:
        raise ParseError(f"missing field(s) {missing}")
    commands = parse_commands(parse_section(fields["Commands"], "Commands"))
    return Turn(
        human=parse_section(fields["Human"], "Human"),
        thoughts=parse_section(fields["Inner Thoughts"], "Inner Thoughts"),
        commands=commands,
        results=parse_results(fields["Tool Responses"], commands.invocations),
        reply=parse_section(fields["MOSS"], "MOSS"),
    )


def render_turn_fields(turn: Turn) -> dict[str, str]:
    """Render a turn back into the SFT schema's fields."""
    assert turn.commands is not None and turn.results is not None
    return {
        "Human": render_section("Human", turn.human),
        "Inner Thoughts": render_section("Inner Thoughts", turn.thoughts or ""),
        "Commands": render_section("Commands", turn.commands.render_text()),
        "Tool Responses": render_results(turn.results),
        "MOSS": render_section("MOSS", turn.reply or ""),
    }


def iter_conversation_files(paths: list[Path]) -> Iterator[Path]:
    """Every ``.json``/``.jsonl`` file named or found under the given folders, sorted."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix in {".json", ".jsonl"} and p.is_file())
        elif path.is_file():
            yield path
        else:
            raise UsageError(f"no such file or folder: {path}")


def load_conversations(path: Path) -> Iterator[tuple[str, Any]]:
    """Yield ``(source, decoded JSON or the exception)`` for each conversation in a file."""
    if path.stat().st_size > MAX_FILE_BYTES:
        yield str(path), UsageError(f"{path} is larger than {MAX_FILE_BYTES} bytes")
        return
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                yield f"{path}:{number}", _decode(line)
    else:
        yield str(path), _decode(text)


def _decode(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        return exc


@dataclass(frozen=True)
class ValidationFailure:
    """A conversation that did not parse or did not round-trip."""

    source: str
    turn: str | None
    reason: str


@dataclass
class ValidationSummary:
    """Totals of ``moss-agent data validate``."""

    files: int = 0
    conversations: int = 0
    turns: int = 0
    round_trip_exact: int = 0
    commands_by_tool: Counter[str] = field(default_factory=Counter)
    no_call_turns: int = 0
    command_parse_errors: int = 0
    failures: list[ValidationFailure] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The summary as plain JSON-ready data."""
        return {
            "files": self.files,
            "conversations": self.conversations,
            "turns": self.turns,
            "round_trip_exact": self.round_trip_exact,
            "commands_by_tool": dict(sorted(self.commands_by_tool.items())),
            "no_call_turns": self.no_call_turns,
            "command_parse_errors": self.command_parse_errors,
            "failures": [f.__dict__ for f in self.failures],
        }


def check_conversation(data: Any, source: str, summary: ValidationSummary) -> bool:
    """Parse and round-trip one decoded conversation, adding to the summary."""
    if isinstance(data, Exception):
        summary.failures.append(ValidationFailure(source, None, f"invalid JSON: {data}"))
        return False
    summary.conversations += 1
    try:
        record = parse_conversation(data, source)
    except MossAgentError as exc:
        summary.failures.append(ValidationFailure(source, None, str(exc)))
        return False
    exact = record.meta.render() == data["meta_instruction"]
    if not exact:
        summary.failures.append(ValidationFailure(source, None, "meta instruction does not round-trip"))
    for key, turn in zip(sorted(data["chat"], key=_turn_number), record.turns):
        summary.turns += 1
        assert turn.commands is not None
        summary.command_parse_errors += len(turn.commands.errors)
        if not turn.commands.invocations:
            summary.no_call_turns += 1
        summary.commands_by_tool.update(inv.name for inv in turn.commands.invocations)
        rendered = render_turn_fields(turn)
        for name in TURN_FIELDS:
            if rendered[name] != data["chat"][key][name]:
                exact = False
                summary.failures.append(ValidationFailure(source, key, f"{name} does not round-trip"))
    summary.round_trip_exact += exact
    return exact


def validate_paths(paths: list[Path]) -> ValidationSummary:
    """Parse and round-trip every conversation under ``paths``."""
    summary = ValidationSummary()
    for path in iter_conversation_files(paths):
        summary.files += 1
        for source, data in load_conversations(path):
            check_conversation(data, source, summary)
    return summary
