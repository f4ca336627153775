from __future__ import annotations

import json

import pytest
from PIL import Image

from moss_agent.errors import UsageError
from moss_agent.evals.report import MAX_WORST_CASES, regenerate_reports, render_report
from moss_agent.evals.runner import run_eval
from moss_agent.evals.scoring import CaseResult, CaseScore, summarize


@pytest.fixture
def smoke_run(smoke_suite, smoke_llm, tmp_path):
    return run_eval(smoke_suite, tmp_path / "run", target=smoke_llm, progress=False)


def test_report_files_and_sections(smoke_run):
    out = smoke_run.out_dir
    summary = json.loads((out / "summary.json").read_text())
    for key in (
        "n",
        "trigger_accuracy",
        "argument_accuracy",
        "answer_accuracy",
        "end_to_end_accuracy",
        "format_error_rate",
        "per_tool",
        "errors",
        "ci95",
        "latency_s",
        "tokens_per_case",
        "by_language",
        "by_category",
        "config",
    ):
        assert key in summary
    assert summary["config"]["model"]["class"] == "ScriptedMossLLM"
    assert all(0 <= lo <= hi <= 1 for lo, hi in summary["ci95"].values())
    report = (out / "report.md").read_text()
    for heading in (
        "# Eval report: scripted-moss",
        "## Config",
        "## Headline metrics",
        "## By tool",
        "## By language",
        "## By category",
        "## By error type",
        "## Worst cases",
        "### `wrong_args` (1 shown)",
        "#### `calc-en-02`",
    ):
        assert heading in report
    assert "| Trigger accuracy | 75.0 % |" in report
    assert "![Expected vs chosen tool](confusion.png)" in report
    assert (
        '```text\n<|Inner Thoughts|>: Let me think.<eot>\n<|Commands|>: Calculate("240*0.2")\n```' in report
    )
    assert "#### `calc-en-01`" not in report  # passed cases are not listed
    with Image.open(out / "confusion.png") as image:
        assert image.format == "PNG" and image.size[0] > 400


def test_report_regenerated_from_results(smoke_run):
    out = smoke_run.out_dir
    (out / "report.md").unlink()
    (out / "summary.json").unlink()
    summary, written, warnings = regenerate_reports(out)
    assert {p.name for p in written} == {"summary.json", "report.md", "confusion.png"} and warnings == []
    assert summary["end_to_end_accuracy"] == smoke_run.summary["end_to_end_accuracy"]
    assert json.loads((out / "summary.json").read_text())["n"] == 12


def test_regenerate_needs_results(tmp_path):
    with pytest.raises(UsageError, match="results.jsonl"):
        regenerate_reports(tmp_path)


def _failed(index: int, error_type: str, generation: str = "x") -> CaseResult:
    return CaseResult(
        id=f"case-{index:02d}",
        case={"messages": [{"role": "user", "content": f"question | {index}"}], "answer": ["1"]},
        expected={"tool": "Calculate", "value": 1},
        generations=[generation],
        scores=CaseScore(
            trigger=False, error_type=error_type, expected_label="Calculate", chosen_label="None"
        ),
        error_type=error_type,
    )


def test_worst_cases_are_capped_grouped_and_fenced_safely():
    results = [_failed(i, "missed_call") for i in range(30)] + [
        _failed(40, "format_error", "a ``` b" + "z" * 5000)
    ]
    report = render_report(results, summarize(results))
    assert report.count("\n#### `case-") == MAX_WORST_CASES
    assert report.index("### `format_error`") < report.index("### `missed_call`")
    assert "````text\na ``` b" in report and "more characters]" in report
    assert "question \\| 3" in report  # table-safe text


def _custom(index: int, expected: str, chosen: str, arguments: bool | None) -> CaseResult:
    right = expected == chosen
    error_type = "ok" if right and arguments else "wrong_args" if right else "wrong_tool"
    return CaseResult(
        id=f"tool-{index:02d}",
        case={"messages": [{"role": "user", "content": "use a tool"}]},
        expected={"tool": expected},
        scores=CaseScore(
            trigger=right,
            arguments=arguments if right else None,
            end_to_end=error_type == "ok",
            error_type=error_type,
            expected_label=expected,
            chosen_label=chosen,
        ),
        error_type=error_type,
    )


def test_many_custom_tools_share_one_row_of_the_tool_table():
    from moss_agent.evals.report import MAX_TOOL_ROWS

    names = [f"tool_{i}" for i in range(MAX_TOOL_ROWS + 2)]
    results = [_custom(i, name, name, i % 2 == 0) for i, name in enumerate(names)]
    results += [_custom(50, names[0], names[1], None), _custom(51, names[2], "None", None)]
    table = render_report(results, summarize(results)).split("## By tool")[1].split("## By language")[0]
    assert "`tool_3`" not in table and "`None`" in table
    # 16 cases expect a custom tool, 14 named it right; 15 named one, 14 of them right;
    # arguments right in 7 of 14, end to end 7 of 16
    assert f"| custom tools ({len(names)} names) | 16 | 93.3 % | 87.5 % | 90.3 % | 50.0 % | 43.8 % |" in table
    few = render_report(results[:3], summarize(results[:3]))
    assert "`tool_1`" in few and "custom tools" not in few
