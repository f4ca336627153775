from __future__ import annotations

import json

from typer.testing import CliRunner

from moss_agent.cli import app

runner = CliRunner()


def test_tool_prints_exact_results_block():
    result = runner.invoke(app, ["tool", "Calculate", "400*(1-0.45)"])
    assert result.exit_code == 0
    assert result.stdout == "<|Results|>:\nCalculate(\"400*(1-0.45)\") => '220.00000000000003'\n<eor>\n"


def test_tool_solve_chickens_and_rabbits():
    result = runner.invoke(app, ["tool", "solve", "x+y=35, 2x+4y=94"])
    assert result.exit_code == 0
    assert result.stdout == '<|Results|>:\nSolve("x+y=35, 2x+4y=94") =>\nx = 23\ny = 12\n<eor>\n'


def test_tool_failure_is_no_result_with_exit_zero():
    result = runner.invoke(app, ["tool", "Calculate", "__import__('os').system('echo hi')"])
    assert result.exit_code == 0
    assert "=> 'No result.'" in result.stdout


def test_tool_search_local_corpus(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    docs = [
        {"id": "1", "text": "The Eiffel Tower is 330 metres tall."},
        {"id": "2", "text": "Paris is in France."},
    ]
    corpus.write_text("\n".join(json.dumps(d) for d in docs), encoding="utf-8")
    result = runner.invoke(app, ["tool", "Search", "Eiffel Tower height", "--corpus", str(corpus)])
    assert result.exit_code == 0
    assert result.stdout.startswith(
        '<|Results|>:\nSearch("Eiffel Tower height") =>\n<|1|>: \'The Eiffel Tower is 330'
    )


def test_tool_unknown_name_is_usage_error():
    result = runner.invoke(app, ["tool", "Browse", "x"])
    assert result.exit_code == 2


def test_data_validate_json_and_exit_codes(sample_dir, tmp_path):
    result = runner.invoke(app, ["data", "validate", str(sample_dir / "text2img"), "--json"])
    assert result.exit_code == 0
    summary = json.loads(result.stdout)
    assert summary["files"] == 100 and summary["round_trip_exact"] == 100 and summary["failures"] == []
    assert summary["turns"] >= 100
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"chat": {}}\nnot json\n', encoding="utf-8")
    result = runner.invoke(app, ["data", "validate", str(bad)])
    assert result.exit_code == 1
    assert "FAIL" in result.stdout


def test_data_validate_missing_path():
    result = runner.invoke(app, ["data", "validate", "/nonexistent/x.json"])
    assert result.exit_code == 2
