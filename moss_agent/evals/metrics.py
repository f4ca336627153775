"""Aggregate metrics of a run: accuracies with Wilson intervals, per-tool P/R/F1, McNemar.

Pure functions over :class:`~moss_agent.evals.records.CaseResult` records (no I/O).
Harness errors count in ``n`` but in no accuracy.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from moss_agent.evals.records import CONFUSION_LABELS, ERROR_TYPES, OTHER, CaseResult

__all__ = [
    "ACCURACY_METRICS",
    "Z_95",
    "McNemarResult",
    "confusion_counts",
    "mcnemar_exact",
    "percentile",
    "summarize",
    "tool_group_scores",
    "wilson_interval",
]

#: The accuracy metrics, each with a 95 % Wilson interval in the summary.
ACCURACY_METRICS: tuple[str, ...] = (
    "trigger_accuracy",
    "argument_accuracy",
    "answer_accuracy",
    "end_to_end_accuracy",
    "format_error_rate",
)
Z_95 = 1.959963984540054


# --- aggregates ------------------------------------------------------------------------------


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (95 % by default); ``None`` when ``n == 0``."""
    if n <= 0:
        return None
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0–100) with linear interpolation; ``None`` for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class _Rate(NamedTuple):
    hits: int
    n: int

    @property
    def value(self) -> float | None:
        return self.hits / self.n if self.n else None


def _rate(flags: Iterable[bool | None]) -> _Rate:
    known = [f for f in flags if f is not None]
    return _Rate(sum(known), len(known))


def _accuracies(results: Sequence[CaseResult]) -> dict[str, _Rate]:
    scored = [r for r in results if r.error_type != "harness_error"]
    return {
        "trigger_accuracy": _rate(r.scores.trigger for r in scored),
        "argument_accuracy": _rate(r.scores.arguments for r in scored),
        "answer_accuracy": _rate(r.scores.answer for r in scored),
        "end_to_end_accuracy": _rate(r.scores.end_to_end for r in scored),
        "format_error_rate": _rate(r.error_type == "format_error" for r in scored),
    }


def _breakdown(results: Sequence[CaseResult]) -> dict[str, Any]:
    rates = _accuracies(results)
    out: dict[str, Any] = {"n": len(results)}
    for name in ("trigger_accuracy", "argument_accuracy", "answer_accuracy", "end_to_end_accuracy"):
        out[name] = rates[name].value
    return out


def _group(results: Sequence[CaseResult], key: Callable[[CaseResult], str | None]) -> dict[str, Any]:
    groups: dict[str, list[CaseResult]] = defaultdict(list)
    for result in results:
        groups[key(result) or "unknown"].append(result)
    return {name: _breakdown(group) for name, group in sorted(groups.items())}


def _class_scores(pairs: Sequence[tuple[str, str]], labels: Collection[str]) -> dict[str, Any]:
    """Precision, recall, F1 and support of ``labels`` as one class (right: chosen == expected)."""
    tp = sum(1 for e, c in pairs if e in labels and c == e)
    predicted = sum(1 for _, c in pairs if c in labels)
    support = sum(1 for e, _ in pairs if e in labels)
    precision = tp / predicted if predicted else None
    recall = tp / support if support else None
    f1 = (
        2 * precision * recall / (precision + recall)
        if precision is not None and recall is not None and precision + recall > 0
        else (0.0 if precision is not None and recall is not None else None)
    )
    return {"precision": precision, "recall": recall, "f1": f1, "support": support}


def _per_tool(results: Sequence[CaseResult]) -> dict[str, dict[str, Any]]:
    pairs = [(r.scores.expected_label, r.scores.chosen_label) for r in results]
    labels = sorted({label for pair in pairs for label in pair if label != OTHER})
    return {label: _class_scores(pairs, {label}) for label in labels}


def tool_group_scores(results: Sequence[CaseResult], labels: Collection[str]) -> dict[str, Any]:
    """Several tools scored as one class: a case is right when it chose the tool it expected.

    Returns:
        ``precision``, ``recall``, ``f1``, ``support``, and the accuracies of the cases that
        expect one of ``labels`` (harness errors left out).
    """
    scored = [r for r in results if r.error_type != "harness_error"]
    pairs = [(r.scores.expected_label, r.scores.chosen_label) for r in scored]
    expecting = [r for r in scored if r.scores.expected_label in labels]
    return _class_scores(pairs, labels) | _breakdown(expecting)


def confusion_counts(results: Iterable[CaseResult]) -> dict[str, dict[str, int]]:
    """Expected → chosen → count over :data:`CONFUSION_LABELS` (harness errors left out)."""

    def bucket(label: str) -> str:
        return label if label in CONFUSION_LABELS else OTHER

    table = {e: dict.fromkeys(CONFUSION_LABELS, 0) for e in CONFUSION_LABELS}
    for result in results:
        if result.error_type != "harness_error":
            table[bucket(result.scores.expected_label)][bucket(result.scores.chosen_label)] += 1
    return table


def summarize(results: Sequence[CaseResult], config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The run's ``summary.json``: accuracies with 95 % Wilson intervals, per-tool P/R/F1, breakdowns.

    Accuracies are fractions in [0, 1], ``None`` when their denominator is 0. Harness errors
    count in ``n``, ``errors`` and ``harness_errors`` but in no accuracy.
    """
    scored = [r for r in results if r.error_type != "harness_error"]
    rates = _accuracies(results)
    errors = Counter(str(r.error_type) for r in results)
    latencies = [r.latency_s for r in scored if r.latency_s is not None]
    tokens = [r.tokens for r in scored if r.tokens is not None]
    p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
    summary: dict[str, Any] = {
        "n": len(results),
        "n_scored": len(scored),
        "harness_errors": errors.get("harness_error", 0),
        **{name: rates[name].value for name in ACCURACY_METRICS},
        "denominators": {name: rates[name].n for name in ACCURACY_METRICS},
        "ci95": {
            name: list(ci) if (ci := wilson_interval(rates[name].hits, rates[name].n)) else None
            for name in ACCURACY_METRICS
        },
        "per_tool": _per_tool(scored),
        "errors": {t: errors[t] for t in ERROR_TYPES if errors.get(t)},
        "latency_s": {"p50": p50, "p95": p95},
        "tokens_per_case": sum(tokens) / len(tokens) if tokens else None,
        "by_tool": _group(scored, lambda r: r.scores.expected_label),
        "by_language": _group(scored, lambda r: r.lang),
        "by_category": _group(scored, lambda r: r.category),
        "by_error_type": {t: _breakdown([r for r in results if r.error_type == t]) for t in errors},
        "confusion": {"labels": list(CONFUSION_LABELS), "counts": confusion_counts(results)},
        "config": dict(config or {}),
    }
    return summary


# --- paired comparison -----------------------------------------------------------------------


class McNemarResult(NamedTuple):
    """An exact McNemar test on paired binary outcomes.

    Attributes:
        a_only: Pairs right in A and wrong in B.
        b_only: Pairs wrong in A and right in B.
        p_value: Two-sided exact p-value (binomial on the discordant pairs).
    """

    a_only: int
    b_only: int
    p_value: float


def mcnemar_exact(a_only: int, b_only: int) -> McNemarResult:
    """Two-sided exact McNemar test: ``2 * P(X <= min(b, c))``, X ~ Binomial(b + c, 1/2), capped at 1."""
    n = a_only + b_only
    if n == 0:
        return McNemarResult(a_only, b_only, 1.0)
    k = min(a_only, b_only)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return McNemarResult(a_only, b_only, min(1.0, 2 * tail))
