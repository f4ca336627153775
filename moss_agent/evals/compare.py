"""Paired comparison of two eval runs (``moss-agent eval compare RUN_A RUN_B``).

Cases are matched by id. For each binary metric the two runs are compared on the cases
where both have a value, with an exact McNemar test on the discordant pairs; the cases
whose end-to-end outcome flipped are listed, regressions first.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from moss_agent.errors import UsageError
from moss_agent.evals.scoring import CaseResult, mcnemar_exact

__all__ = [
    "Comparison",
    "FlippedCase",
    "MetricComparison",
    "compare_cli",
    "compare_results",
    "compare_runs",
    "print_comparison",
]

#: Metric name → the :class:`~moss_agent.evals.scoring.CaseScore` field it reads.
PAIRED_METRICS: dict[str, str] = {
    "trigger": "trigger",
    "args": "arguments",
    "answer": "answer",
    "end_to_end": "end_to_end",
}


class MetricComparison(BaseModel):
    """One metric on the paired cases."""

    metric: str
    n: int
    """Paired cases where both runs have a value."""
    a: float | None
    b: float | None
    delta: float | None
    """``b - a``."""
    a_only: int
    """Right in A, wrong in B."""
    b_only: int
    """Wrong in A, right in B."""
    p_value: float
    """Exact two-sided McNemar p-value."""


class FlippedCase(BaseModel):
    """A case whose end-to-end outcome differs between the runs."""

    id: str
    a: bool
    b: bool
    a_error_type: str
    b_error_type: str


class Comparison(BaseModel):
    """The comparison of run A with run B."""

    run_a: str
    run_b: str
    paired: int
    only_in_a: int
    only_in_b: int
    metrics: list[MetricComparison]
    flipped: list[FlippedCase] = Field(default_factory=list)


def compare_results(
    results_a: Sequence[CaseResult], results_b: Sequence[CaseResult], *, run_a: str = "A", run_b: str = "B"
) -> Comparison:
    """Compare two runs' results case by case (harness errors are left out)."""
    a = {r.id: r for r in results_a if r.error_type != "harness_error"}
    b = {r.id: r for r in results_b if r.error_type != "harness_error"}
    ids = [i for i in a if i in b]
    metrics = []
    for metric, field in PAIRED_METRICS.items():
        pairs = [
            (va, vb)
            for i in ids
            if (va := getattr(a[i].scores, field)) is not None
            and (vb := getattr(b[i].scores, field)) is not None
        ]
        a_only = sum(1 for x, y in pairs if x and not y)
        b_only = sum(1 for x, y in pairs if y and not x)
        rate_a = sum(x for x, _ in pairs) / len(pairs) if pairs else None
        rate_b = sum(y for _, y in pairs) / len(pairs) if pairs else None
        metrics.append(
            MetricComparison(
                metric=metric,
                n=len(pairs),
                a=rate_a,
                b=rate_b,
                delta=None if rate_a is None or rate_b is None else rate_b - rate_a,
                a_only=a_only,
                b_only=b_only,
                p_value=mcnemar_exact(a_only, b_only).p_value,
            )
        )
    flipped = [
        FlippedCase(
            id=i,
            a=bool(a[i].scores.end_to_end),
            b=bool(b[i].scores.end_to_end),
            a_error_type=a[i].error_type,
            b_error_type=b[i].error_type,
        )
        for i in ids
        if bool(a[i].scores.end_to_end) != bool(b[i].scores.end_to_end)
    ]
    flipped.sort(key=lambda f: (f.b, f.id))  # regressions (A right, B wrong) first
    return Comparison(
        run_a=run_a,
        run_b=run_b,
        paired=len(ids),
        only_in_a=sum(1 for i in a if i not in b),
        only_in_b=sum(1 for i in b if i not in a),
        metrics=metrics,
        flipped=flipped,
    )


def compare_runs(run_a: str | Path, run_b: str | Path) -> Comparison:
    """Compare two run folders (their ``results.jsonl``).

    Raises:
        UsageError: A folder has no results.
    """
    from moss_agent.evals.runner import RESULTS_FILE, read_results

    loaded = []
    for run in (Path(run_a), Path(run_b)):
        if not (run / RESULTS_FILE).is_file():
            raise UsageError(f"{run} has no {RESULTS_FILE}")
        loaded.append(read_results(run / RESULTS_FILE)[0])
    return compare_results(loaded[0], loaded[1], run_a=str(run_a), run_b=str(run_b))


def _pct(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{100 * value:+.1f} pp" if signed else f"{100 * value:.1f} %"


def print_comparison(comparison: Comparison, console: Any = None, *, show: int = 30) -> None:
    """Print the comparison as rich tables."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    table = Table(
        title=f"A = {comparison.run_a}  vs  B = {comparison.run_b}  ({comparison.paired} paired cases)"
    )
    for column in ("Metric", "Cases", "A", "B", "Δ (B − A)", "A only", "B only", "McNemar p"):
        table.add_column(column)
    for m in comparison.metrics:
        table.add_row(
            m.metric,
            str(m.n),
            _pct(m.a),
            _pct(m.b),
            _pct(m.delta, signed=True),
            str(m.a_only),
            str(m.b_only),
            f"{m.p_value:.3g}",
        )
    console.print(table)
    if comparison.only_in_a or comparison.only_in_b:
        console.print(
            f"unpaired cases: {comparison.only_in_a} only in A, {comparison.only_in_b} only in B",
            highlight=False,
        )
    if comparison.flipped:
        flips = Table(title=f"Flipped cases (end to end): {len(comparison.flipped)}")
        for column in ("Case", "A → B", "A error", "B error"):
            flips.add_column(column)
        for flip in comparison.flipped[:show]:
            arrow = f"{'ok' if flip.a else 'fail'} → {'ok' if flip.b else 'fail'}"
            flips.add_row(flip.id, arrow, flip.a_error_type, flip.b_error_type)
        console.print(flips)
        if len(comparison.flipped) > show:
            console.print(f"… and {len(comparison.flipped) - show} more (use --json)")


def compare_cli(run_a: Path, run_b: Path, *, as_json: bool = False) -> Comparison:
    """``moss-agent eval compare A B``: print the comparison (a table, or JSON)."""
    comparison = compare_runs(run_a, run_b)
    if as_json:
        import sys

        sys.stdout.write(comparison.model_dump_json(indent=2) + "\n")
    else:
        print_comparison(comparison)
    return comparison
