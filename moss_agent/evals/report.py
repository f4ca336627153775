"""Reports of an eval run: ``summary.json``, ``report.md`` and ``confusion.png``.

Everything is rebuilt from ``results.jsonl`` and ``config.json``, at the end of every run
and by ``moss-agent eval report DIR``. matplotlib is imported only to draw the plot; without
it (``pip install 'moss-agent[evals]'``) the plot is skipped and the rest is written.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from moss_agent.errors import UsageError
from moss_agent.evals.metrics import tool_group_scores
from moss_agent.evals.scoring import CONFUSION_LABELS, ERROR_TYPES, CaseResult, summarize

__all__ = [
    "MAX_WORST_CASES",
    "plot_confusion",
    "print_summary",
    "regenerate_reports",
    "render_report",
    "report_cli",
    "write_reports",
]

MAX_WORST_CASES = 20
#: Custom tools listed one per row; with more, the report gives them one row together.
MAX_TOOL_ROWS = 12
MAX_GENERATION_CHARS = 1500
MAX_TEXT_CHARS = 600

_HEADLINE = (
    ("trigger_accuracy", "Trigger accuracy"),
    ("argument_accuracy", "Argument accuracy"),
    ("answer_accuracy", "Answer accuracy"),
    ("end_to_end_accuracy", "End-to-end accuracy"),
    ("format_error_rate", "Format-error rate"),
)
_RATE_COLUMNS = (
    ("trigger_accuracy", "Trigger"),
    ("argument_accuracy", "Args"),
    ("answer_accuracy", "Answer"),
    ("end_to_end_accuracy", "End to end"),
)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"… [{len(text) - limit} more characters]"


def _fenced(text: str, limit: int = MAX_GENERATION_CHARS) -> str:
    body = _clip(text, limit)
    longest = run = 0
    for char in body:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{body}\n{fence}"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _model_name(config: Mapping[str, Any]) -> str:
    model = config.get("model") or {}
    return (
        str(model.get("name") or model.get("class") or "model") if isinstance(model, Mapping) else str(model)
    )


def _config_lines(config: Mapping[str, Any]) -> list[str]:
    model = config.get("model") or {}
    suite = config.get("suite") or {}
    sampling = config.get("sampling") or {}
    decoding = "sampling" if sampling.get("do_sample") else "greedy"
    if isinstance(model, Mapping) and model.get("constrain_calls"):
        decoding += ", constrained Commands"
    if isinstance(model, Mapping) and model.get("copy_bias"):
        decoding += f", copy bias {model['copy_bias']:g}"
    rows = [
        ("Model", f"`{model.get('path') or model.get('name')}` ({model.get('class', '?')})"),
        (
            "Target",
            f"{config.get('target', '?')} · {decoding} · max_new_tokens {config.get('max_new_tokens')}",
        ),
        ("Suite", f"`{suite.get('path')}` (sha256 `{str(suite.get('sha256', ''))[:12]}`)"),
        ("Text2Image", "executed" if config.get("execute_images") else "stubbed"),
        ("moss-agent", str(config.get("moss_agent_version", "?"))),
    ]
    return _table(("Setting", "Value"), rows)


def _headline(summary: Mapping[str, Any]) -> list[str]:
    rows = []
    for key, label in _HEADLINE:
        ci = summary["ci95"].get(key)
        interval = f"{_pct(ci[0])} – {_pct(ci[1])}" if ci else "–"
        rows.append((label, _pct(summary.get(key)), interval, summary["denominators"].get(key, 0)))
    lines = _table(("Metric", "Value", "95 % CI (Wilson)", "Cases"), rows)
    latency = summary.get("latency_s") or {}
    tokens = summary.get("tokens_per_case")
    extras = [
        f"Cases: {summary['n']} ({summary.get('harness_errors', 0)} harness errors, left out of the rates)",
        "Latency per case: p50 "
        + ("–" if latency.get("p50") is None else f"{latency['p50']:.2f} s")
        + ", p95 "
        + ("–" if latency.get("p95") is None else f"{latency['p95']:.2f} s"),
        "Generated tokens per case: " + ("–" if tokens is None else f"{tokens:.1f}"),
    ]
    return [*lines, "", *(f"- {e}" for e in extras)]


def _breakdown_table(first: str, groups: Mapping[str, Mapping[str, Any]]) -> list[str]:
    if not groups:
        return ["_No cases._"]
    rows = [(name, g["n"], *(_pct(g.get(k)) for k, _ in _RATE_COLUMNS)) for name, g in groups.items()]
    return _table((first, "Cases", *(label for _, label in _RATE_COLUMNS)), rows)


def _tool_row(name: str, stats: Mapping[str, Any], group: Mapping[str, Any]) -> tuple[Any, ...]:
    return (
        name,
        stats["support"],
        _pct(stats["precision"]),
        _pct(stats["recall"]),
        _pct(stats["f1"]),
        _pct(group.get("argument_accuracy")),
        _pct(group.get("end_to_end_accuracy")),
    )


def _tool_table(summary: Mapping[str, Any], results: Sequence[CaseResult]) -> list[str]:
    """One row per expected tool; past :data:`MAX_TOOL_ROWS` custom tools, one row for all of them."""
    per_tool = summary.get("per_tool") or {}
    by_tool = summary.get("by_tool") or {}
    if not per_tool:
        return ["_No cases._"]
    custom = {tool for tool in per_tool if tool not in CONFUSION_LABELS}
    grouped = len(custom) > MAX_TOOL_ROWS
    rows = [
        _tool_row(f"`{tool}`", stats, by_tool.get(tool, {}))
        for tool, stats in per_tool.items()
        if not (grouped and tool in custom)
    ]
    if grouped:
        together = tool_group_scores(results, custom)
        rows.append(_tool_row(f"custom tools ({len(custom)} names)", together, together))
    return _table(("Tool (expected)", "Support", "Precision", "Recall", "F1", "Args", "End to end"), rows)


def _error_table(summary: Mapping[str, Any]) -> list[str]:
    errors = summary.get("errors") or {}
    total = sum(errors.values()) or 1
    rows = [(f"`{t}`", errors[t], _pct(errors[t] / total)) for t in ERROR_TYPES if t in errors]
    return _table(("Error type", "Cases", "Share"), rows) if rows else ["_No cases._"]


def _worst(results: Sequence[CaseResult]) -> dict[str, list[CaseResult]]:
    """Up to :data:`MAX_WORST_CASES` failed cases, taken in turn from each error type."""
    queues = {t: [r for r in results if r.error_type == t] for t in ERROR_TYPES if t != "ok"}
    chosen: dict[str, list[CaseResult]] = {t: [] for t in queues}
    count = 0
    while count < MAX_WORST_CASES and any(queues.values()):
        for error_type, queue in queues.items():
            if queue and count < MAX_WORST_CASES:
                chosen[error_type].append(queue.pop(0))
                count += 1
    return {t: cases for t, cases in chosen.items() if cases}


def _expected_text(result: CaseResult) -> str:
    expected = result.expected
    checks = [f"{k} {json.dumps(v, ensure_ascii=False)}" for k, v in expected.items() if k != "tool" and v]
    tool = expected.get("tool") or "no call"
    return f"`{tool}`" + (f" ({'; '.join(checks)})" if checks else "")


def _case_section(result: CaseResult) -> list[str]:
    case = result.case
    messages = case.get("messages") or []
    question = messages[-1]["content"] if messages else ""
    lines = [f"#### `{result.id}`", ""]
    if len(messages) > 1:
        lines.append(f"_{len(messages) // 2} earlier turn(s)._")
        lines.append("")
    lines.append(f"- **Question:** {_cell(_clip(question, MAX_TEXT_CHARS))}")
    chosen = ", ".join(f"`{c.text or c.name}`" for c in result.calls) or "no call"
    lines.append(f"- **Expected:** {_expected_text(result)} · **Chosen:** {chosen}")
    for call in result.calls:
        output = _clip(call.output or "", 200)
        note = f" (error: {_cell(call.error)})" if call.error else ""
        lines.append(f"- **Result of** `{call.text or call.name}`: {_cell(output) or '_(empty)_'}{note}")
    details = [*result.scores.details, *result.format_errors]
    if result.error:
        details.append(result.error)
    if details:
        lines.append(f"- **Why:** {_cell(_clip('; '.join(details), MAX_TEXT_CHARS))}")
    if case.get("answer"):
        lines.append(f"- **Answer needed:** {_cell(', '.join(case['answer']))}")
    lines.append(f"- **Reply:** {_cell(_clip(result.reply, MAX_TEXT_CHARS)) or '_(empty)_'}")
    for number, generation in enumerate(result.generations, 1):
        lines += ["", f"Generation {number}:", "", _fenced(generation)]
    lines.append("")
    return lines


def render_report(
    results: Sequence[CaseResult], summary: Mapping[str, Any], *, plot: str | None = None
) -> str:
    """The Markdown report of a run.

    Args:
        results: The finished cases.
        summary: Their summary (with ``config``).
        plot: File name of the confusion plot to embed, if drawn.
    """
    config = summary.get("config") or {}
    lines = [f"# Eval report: {_model_name(config)}", "", "## Config", "", *_config_lines(config), ""]
    lines += ["## Headline metrics", "", *_headline(summary), ""]
    if plot:
        lines += [f"![Expected vs chosen tool]({plot})", ""]
    lines += ["## By tool", "", *_tool_table(summary, results), ""]
    lines += ["## By language", "", *_breakdown_table("Language", summary.get("by_language") or {}), ""]
    lines += ["## By category", "", *_breakdown_table("Category", summary.get("by_category") or {}), ""]
    lines += ["## By error type", "", *_error_table(summary), ""]
    lines += ["## Worst cases", ""]
    worst = _worst(results)
    if not worst:
        lines += ["_Every case passed._", ""]
    for error_type, cases in worst.items():
        lines += [f"### `{error_type}` ({len(cases)} shown)", ""]
        for result in cases:
            lines += _case_section(result)
    return "\n".join(lines).rstrip() + "\n"


def plot_confusion(summary: Mapping[str, Any], path: Path) -> bool:
    """Draw the expected-vs-chosen confusion matrix as a PNG.

    Returns:
        ``False`` (and writes nothing) when matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    labels = list(CONFUSION_LABELS)
    counts = (summary.get("confusion") or {}).get("counts") or {}
    matrix = [[int(counts.get(e, {}).get(c, 0)) for c in labels] for e in labels]
    peak = max((max(row) for row in matrix), default=0) or 1
    figure, axes = plt.subplots(figsize=(7.2, 6.0), dpi=120)
    try:
        image = axes.imshow(matrix, cmap="Blues", vmin=0, vmax=peak)
        axes.set_xticks(range(len(labels)), labels=labels, rotation=30, ha="right")
        axes.set_yticks(range(len(labels)), labels=labels)
        axes.set_xlabel("Chosen tool")
        axes.set_ylabel("Expected tool")
        config = summary.get("config") or {}
        axes.set_title(f"{_model_name(config)} — expected vs chosen tool (n = {summary.get('n_scored', 0)})")
        for row, values in enumerate(matrix):
            for column, value in enumerate(values):
                colour = "white" if value > peak / 2 else "black"
                axes.text(column, row, str(value), ha="center", va="center", color=colour, fontsize=11)
        from matplotlib.ticker import MaxNLocator

        figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, ticks=MaxNLocator(integer=True))
        figure.tight_layout()
        figure.savefig(path)
    finally:
        plt.close(figure)
    return True


def _json_ready(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    return value


def write_reports(out_dir: Path, results: Sequence[CaseResult], summary: Mapping[str, Any]) -> list[Path]:
    """Write ``summary.json``, ``confusion.png`` (when matplotlib is there) and ``report.md``.

    Returns:
        The files written.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "summary.json"]
    written[0].write_text(
        json.dumps(_json_ready(dict(summary)), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    plot = out_dir / "confusion.png"
    drew = plot_confusion(summary, plot)
    if drew:
        written.append(plot)
    report = out_dir / "report.md"
    report.write_text(render_report(results, summary, plot=plot.name if drew else None), encoding="utf-8")
    written.append(report)
    return written


def regenerate_reports(out_dir: str | Path) -> tuple[dict[str, Any], list[Path], list[str]]:
    """Rebuild a run's reports from its ``results.jsonl`` and ``config.json``.

    Returns:
        The summary, the files written, and warnings about unreadable result lines.

    Raises:
        UsageError: The folder holds no results.
    """
    from moss_agent.evals.runner import CONFIG_FILE, RESULTS_FILE, read_results

    folder = Path(out_dir)
    if not (folder / RESULTS_FILE).is_file():
        raise UsageError(
            f"{folder} has no {RESULTS_FILE}; run `moss-agent eval --suite … --out {folder}` first"
        )
    results, warnings = read_results(folder / RESULTS_FILE)
    config_path = folder / CONFIG_FILE
    config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
    summary = summarize(results, config)
    return summary, write_reports(folder, results, summary), warnings


def print_summary(summary: Mapping[str, Any], console: Any = None) -> None:
    """Print the headline metrics as a rich table."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    table = Table(title=f"Eval: {_model_name(summary.get('config') or {})} (n = {summary['n']})")
    for column in ("Metric", "Value", "95 % CI", "Cases"):
        table.add_column(column)
    for key, label in _HEADLINE:
        ci = summary["ci95"].get(key)
        table.add_row(
            label,
            _pct(summary.get(key)),
            f"{_pct(ci[0])} – {_pct(ci[1])}" if ci else "–",
            str(summary["denominators"].get(key, 0)),
        )
    console.print(table)
    errors = summary.get("errors") or {}
    if errors:
        console.print("errors: " + ", ".join(f"{k} {v}" for k, v in errors.items()), highlight=False)


def report_cli(out_dir: Path) -> list[Path]:
    """``moss-agent eval report DIR``: rebuild the reports and print the headline metrics."""
    from rich.console import Console
    from rich.markup import escape

    summary, written, warnings = regenerate_reports(out_dir)
    err = Console(stderr=True, highlight=False)
    for warning in warnings:
        err.print(f"[yellow]warning:[/yellow] {escape(warning)}", markup=True)
    print_summary(summary, Console())
    err.print("wrote " + ", ".join(str(p) for p in written))
    return written
