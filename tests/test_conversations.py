"""Conformance with MOSS's own SFT sample conversations (read from ../shared, never copied)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from moss_agent.conversations import (
    TURN_FIELDS,
    iter_conversation_files,
    load_conversations,
    parse_conversation,
    render_turn_fields,
    validate_paths,
)
from moss_agent.errors import ParseError, UsageError
from moss_agent.protocol import Commands, ResultLayout, render_conversation, render_turn

#: Sample files whose Commands are not a readable call, with the reason. They still round-trip.
MALFORMED_COMMANDS = {
    "calculator/calculator_plugin_conversation_4.json": "Commands build the expression with Python string concatenation: "
    'Calculate("("+ str(2) + str(-4) + ")" + "*" + str(6))',
}


def _sample_files(sample_dir: Path) -> list[Path]:
    return sorted(iter_conversation_files([sample_dir]))


def test_every_sample_conversation_round_trips_byte_for_byte(sample_dir):
    files = _sample_files(sample_dir)
    assert len(files) == 500
    for path in files:
        ((source, data),) = list(load_conversations(path))
        record = parse_conversation(data, source)
        assert record.meta.render() == data["meta_instruction"], source
        keys = sorted(data["chat"], key=lambda k: int(k.split("_")[1]))
        assert len(record.turns) == len(keys) == data["num_turns"]
        whole = data["meta_instruction"]
        for key, turn in zip(keys, record.turns):
            rendered = render_turn_fields(turn)
            for name in TURN_FIELDS:
                assert rendered[name] == data["chat"][key][name], (source, key, name)
                whole += data["chat"][key][name]
        assert render_conversation(record.meta.render(), record.turns) == whole


def test_sample_commands_parse_into_typed_invocations(sample_dir):
    malformed = set()
    by_tool: dict[str, int] = {}
    canonical = 0
    total = 0
    for path in _sample_files(sample_dir):
        ((source, data),) = list(load_conversations(path))
        for turn in parse_conversation(data, source).turns:
            assert turn.commands is not None
            total += 1
            if turn.commands.errors:
                malformed.add(path.relative_to(sample_dir).as_posix())
            for inv in turn.commands.invocations:
                by_tool[inv.name] = by_tool.get(inv.name, 0) + 1
                assert inv.argument, (source, inv)
            canonical += Commands(turn.commands.invocations).render_text() == turn.commands.text
    assert malformed == set(MALFORMED_COMMANDS)
    assert by_tool["Search"] == 363 and by_tool["Calculate"] == 187
    assert by_tool["Solve"] == 96 and by_tool["Text2Image"] == 100
    # Re-rendering from the typed calls alone reproduces all but numbered/commented/odd lists.
    assert canonical >= total - 10


def test_sample_results_are_typed(sample_dir):
    layouts: dict[ResultLayout, int] = {}
    for path in _sample_files(sample_dir):
        ((source, data),) = list(load_conversations(path))
        for turn in parse_conversation(data, source).turns:
            assert turn.results is not None and turn.commands is not None
            for item in turn.results.items:
                layouts[item.layout] = layouts.get(item.layout, 0) + 1
            if not turn.commands.invocations:
                assert turn.results.items == ()
    assert layouts[ResultLayout.HITS] > 300 and layouts[ResultLayout.INLINE] > 150
    assert layouts[ResultLayout.BLOCK] > 150


def test_validate_paths_summary(sample_dir):
    summary = validate_paths([sample_dir / "equation_solver", sample_dir / "harmless"])
    assert summary.files == 200 and summary.round_trip_exact == 200
    assert summary.failures == []
    assert summary.commands_by_tool["Solve"] == 96


def test_validate_reports_broken_files(tmp_path, sample_dir):
    good = json.loads((sample_dir / "text2img" / "text2img_plugin_conversation_1.json").read_text())
    bad = json.loads(json.dumps(good))
    bad["chat"]["turn_1"]["Human"] = bad["chat"]["turn_1"]["Human"].replace("<eoh>", "")
    lines = [json.dumps(good, ensure_ascii=False), json.dumps(bad, ensure_ascii=False), "{not json"]
    (tmp_path / "data.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = validate_paths([tmp_path])
    assert summary.conversations == 2 and summary.round_trip_exact == 1
    reasons = {(f.source.rsplit(":", 1)[-1], f.reason.split(":")[0]) for f in summary.failures}
    assert ("2", "turn_1") in reasons
    assert any("invalid JSON" in f.reason and f.source.endswith(":3") for f in summary.failures)


def test_parse_conversation_errors_are_typed():
    with pytest.raises(ParseError):
        parse_conversation({"meta_instruction": "x"})
    with pytest.raises(UsageError):
        list(iter_conversation_files([Path("/nonexistent/folder")]))


def test_render_turn_matches_sample_text(sample_dir):
    data = json.loads((sample_dir / "equation_solver" / "solver_plugin_conversation_10.json").read_text())
    record = parse_conversation(data)
    assert render_turn(record.turns[0]) == "".join(data["chat"]["turn_1"][f] for f in TURN_FIELDS)
