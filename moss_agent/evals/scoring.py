"""Scoring: per-case checks, the error taxonomy, aggregate metrics and significance tests.

Pure functions over records (no file or network I/O). The only side effect is the Solve
check, which runs the equation solver (in a time-limited worker) when a call's own
output is not available.

Rules:

* **Trigger.** The chosen label is ``"None"`` when no tool was called, the tool's name
  when every call went to one tool, and ``"Other"`` when several different tools were
  called. A case's trigger is correct iff the chosen label equals the expected one
  (``expect.tool`` or ``"None"``): with a tool expected, the set of called tool names
  must be exactly ``{tool}``; calls to disabled tools count as calls.
* **Arguments** (only when the trigger is right and the case has a check): some call
  to the expected tool passes every check given.
* **Answer** (only when the case lists ``answer``): every string occurs in the reply;
  numeric strings match any equal number in the reply.
* **Error type**, exactly one, the first that applies: ``format_error`` (Commands could
  not be read), ``missed_call``, ``spurious_call``, ``wrong_tool``, ``wrong_args``,
  ``tool_error`` (a call to the expected tool failed: ``No result.`` or a timeout),
  ``wrong_answer``, ``ok``. A case the harness could not run is ``harness_error`` and
  is left out of every accuracy.
* **End to end** is ``error_type == "ok"``: the trigger, the checked arguments and the
  answer are right, no call failed and the Commands were readable.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from moss_agent.protocol import NO_RESULT, parse_generation

if TYPE_CHECKING:
    from moss_agent.evals.suite import EvalCase

__all__ = [
    "CONFUSION_LABELS",
    "ERROR_TYPES",
    "CallRecord",
    "CaseResult",
    "CaseScore",
    "ErrorType",
    "McNemarResult",
    "Scorer",
    "answer_matches",
    "arguments_correct",
    "chosen_label",
    "command_format_errors",
    "confusion_counts",
    "expected_label",
    "extract_numbers",
    "mcnemar_exact",
    "parse_number",
    "percentile",
    "score_case",
    "solution_value_texts",
    "solution_values_from_text",
    "summarize",
    "wilson_interval",
]

ErrorType = Literal[
    "format_error",
    "missed_call",
    "spurious_call",
    "wrong_tool",
    "wrong_args",
    "tool_error",
    "wrong_answer",
    "ok",
    "harness_error",
]
#: Error types in the order they are tried (``harness_error`` last: it is not a model error).
ERROR_TYPES: tuple[str, ...] = (
    "format_error",
    "missed_call",
    "spurious_call",
    "wrong_tool",
    "wrong_args",
    "tool_error",
    "wrong_answer",
    "ok",
    "harness_error",
)
NO_TOOL = "None"
OTHER = "Other"
#: Classes of the confusion matrix: the four MOSS tools, no call, and anything else.
CONFUSION_LABELS: tuple[str, ...] = ("Search", "Calculate", "Solve", "Text2Image", NO_TOOL, OTHER)
#: The accuracy metrics, each with a 95 % Wilson interval in the summary.
ACCURACY_METRICS: tuple[str, ...] = (
    "trigger_accuracy",
    "argument_accuracy",
    "answer_accuracy",
    "end_to_end_accuracy",
    "format_error_rate",
)
Z_95 = 1.959963984540054
VALUE_REL_TOL = 1e-6
VALUE_ABS_TOL = 1e-9


# --- records -------------------------------------------------------------------------------


class CallRecord(BaseModel):
    """One tool call as recorded in ``results.jsonl``."""

    model_config = ConfigDict(extra="allow")

    name: str
    """The called tool."""
    args: list[Any] = Field(default_factory=list)
    """Positional arguments."""
    kwargs: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments."""
    text: str = ""
    """The call as written."""
    output: str | None = None
    """What the tool returned (search snippets joined by newlines)."""
    error: str | None = None
    """Why the call failed (``"no result"``, a timeout, a disabled tool)."""
    seconds: float = 0.0
    """Wall time of the call."""

    @property
    def argument(self) -> str | None:
        """The single text argument, when the call has one."""
        if self.args:
            return str(self.args[0])
        if len(self.kwargs) == 1:
            return str(next(iter(self.kwargs.values())))
        return None


class CaseScore(BaseModel):
    """The scores of one case."""

    trigger: bool | None
    """The right tool (or no tool) was chosen; ``None`` for harness errors."""
    arguments: bool | None = None
    """The argument checks passed; ``None`` when not checked."""
    answer: bool | None = None
    """The reply holds every answer string; ``None`` when the case has no answer."""
    end_to_end: bool | None = None
    """Everything was right (``error_type == "ok"``)."""
    error_type: ErrorType
    """The first error that applies."""
    expected_label: str
    """``expect.tool`` or ``"None"``."""
    chosen_label: str
    """The tool the model chose, ``"None"``, or ``"Other"`` for several tools."""
    details: list[str] = Field(default_factory=list)
    """Why a check failed."""
    extra: dict[str, bool | None] = Field(default_factory=dict)
    """Results of extra scorers, by name."""


class CaseResult(BaseModel):
    """One finished case: one line of ``results.jsonl``."""

    model_config = ConfigDict(extra="allow")

    id: str
    case: dict[str, Any]
    """The case's fields as given (unknown fields included)."""
    expected: dict[str, Any]
    """The case's expectation."""
    chosen_tools: list[str] = Field(default_factory=list)
    """Names of the tools called, in order."""
    calls: list[CallRecord] = Field(default_factory=list)
    """The calls, their arguments and outputs."""
    reply: str = ""
    """The final reply."""
    generations: list[str] = Field(default_factory=list)
    """The model's raw texts."""
    parse_errors: list[str] = Field(default_factory=list)
    """Everything the agent could not read."""
    format_errors: list[str] = Field(default_factory=list)
    """Why the Commands could not be read (these make a ``format_error``)."""
    scores: CaseScore
    error: str | None = None
    """The harness's exception, for ``harness_error`` cases."""
    error_type: ErrorType
    latency_s: float | None = None
    """Seconds from the first generation's start to the reply (a batched case shares its batch's time)."""
    tokens: int | None = None
    """Tokens the model generated."""
    lang: str | None = None
    category: str | None = None


# --- numbers -------------------------------------------------------------------------------

_NUMBER = re.compile(
    r"(?<![0-9A-Za-z.)])(?P<sign>-)?(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?P<exp>[eE][-+]?\d+)?(?![0-9])"
)
_NUMERIC_ANSWER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][-+]?\d+)?")


def _normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def extract_numbers(text: str) -> list[float]:
    """Every number written in ``text``: ``7,006,652``, ``23.0``, ``约为109.86平方``, ``-5``.

    Full-width digits are read after NFKC normalisation; commas between groups of three
    digits are thousands separators; a ``-`` right after a digit or letter is a minus sign
    of an operation, not of the number.
    """
    numbers = []
    for match in _NUMBER.finditer(_normalise(text)):
        raw = match.group("num").replace(",", "") + (match.group("exp") or "")
        try:
            value = float(raw)
        except ValueError:  # pragma: no cover - the regex only matches floats
            continue
        numbers.append(-value if match.group("sign") else value)
    return numbers


def _numeric_answer(text: str) -> float | None:
    text = _normalise(text).strip()
    if not text or not any(c.isdigit() for c in text) or not _NUMERIC_ANSWER.fullmatch(text):
        return None
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def answer_matches(reply: str, answers: Sequence[str]) -> tuple[bool, list[str]]:
    """Whether every answer string occurs in the reply.

    A numeric answer (``"23"``, ``"7,006,652"``, ``"-0.5"``) matches any equal number in the
    reply (``23.0``, ``23.00``, ``7006652``); other answers match as case-insensitive
    substrings after NFKC normalisation.

    Returns:
        ``(all matched, the answers that were not found)``.
    """
    text = _normalise(reply).casefold()
    numbers: list[float] | None = None
    missing = []
    for answer in answers:
        target = _numeric_answer(answer)
        if target is not None:
            if numbers is None:
                numbers = extract_numbers(reply)
            if any(math.isclose(n, target, rel_tol=1e-9, abs_tol=1e-12) for n in numbers):
                continue
        elif _normalise(answer).casefold().strip() in text:
            continue
        missing.append(answer)
    return not missing, missing


def parse_number(text: str) -> complex | None:
    """Read a solver value: ``26``, ``-1/9``, ``1800.00000000000``, ``-2.1 - 3.6*I``, ``sqrt``-free.

    Returns:
        The value as a complex number, or ``None`` when it is not a plain number.
    """
    text = _normalise(text).strip().replace(" ", "")
    if not text:
        return None
    try:
        return complex(Fraction(text))
    except (ValueError, ZeroDivisionError):
        pass
    if "I" in text or "j" in text:
        candidate = text.replace("*I", "j").replace("I", "1j")
        try:
            return complex(candidate)
        except ValueError:
            return None
    return None


_SOLUTION_LINE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.+?)\s*$")


def solution_value_texts(text: str) -> list[str]:
    r"""The value texts of a Solve result (``"x = 1/9\ny = 12"`` → ``["1/9", "12"]``)."""
    return [m.group(2) for line in text.splitlines() if (m := _SOLUTION_LINE.match(line))]


def solution_values_from_text(text: str) -> list[complex]:
    r"""The values of a Solve result text (``"x = 23\ny = 12"``); empty for ``No result.`` or non-numbers."""
    values = []
    for raw in solution_value_texts(text):
        value = parse_number(raw)
        if value is None:
            return []
        values.append(value)
    return values


def _same_multiset(actual: Sequence[complex], expected: Sequence[complex]) -> bool:
    if len(actual) != len(expected):
        return False
    unused = list(actual)
    for target in expected:
        for index, value in enumerate(unused):
            if abs(value - target) <= max(VALUE_REL_TOL * abs(target), VALUE_ABS_TOL):
                del unused[index]
                break
        else:
            return False
    return True


# --- per-case scoring ------------------------------------------------------------------------


@runtime_checkable
class Scorer(Protocol):
    """An extra per-case check: ``True``/``False``, or ``None`` when it does not apply."""

    name: str

    def __call__(self, case: EvalCase, result: CaseResult) -> bool | None:
        """Score one finished case."""
        ...


def expected_label(case: EvalCase) -> str:
    """The expected class: the tool's name, or ``"None"``."""
    return case.expect.tool or NO_TOOL


def chosen_label(tool_names: Sequence[str]) -> str:
    """The chosen class: ``"None"``, the one tool called, or ``"Other"`` for several tools."""
    distinct = list(dict.fromkeys(tool_names))
    if not distinct:
        return NO_TOOL
    return distinct[0] if len(distinct) == 1 else OTHER


def command_format_errors(first_generation: str) -> list[str]:
    """Why a MOSS first generation's Commands could not be read (empty when they could)."""
    parsed = parse_generation(first_generation)
    if parsed.commands is None:
        return ["no Commands section"]
    return [str(e) for e in parsed.commands.errors]


def _default_solve(equations: str) -> str:
    from moss_agent.tools.solver import solve

    return solve(equations)


def _check_call(case: EvalCase, call: CallRecord, solve_fn: Callable[[str], str]) -> tuple[bool, list[str]]:
    """Whether one call passes every argument check of the case, and why not."""
    expect = case.expect
    argument = call.argument
    failures = []
    if expect.value is not None:
        from moss_agent.tools.calculator import CalculationError, evaluate_expression

        try:
            value = evaluate_expression(argument or "")
        except CalculationError as exc:
            failures.append(f"expression {argument!r} cannot be computed ({exc})")
        else:
            if not math.isclose(float(value), expect.value, rel_tol=VALUE_REL_TOL, abs_tol=VALUE_ABS_TOL):
                failures.append(f"expression {argument!r} = {value!r}, expected {expect.value!r}")
    if expect.solution_values is not None:
        from moss_agent.evals.suite import parse_solution_values

        output = call.output if call.error is None and call.output else None
        if output is None or output.strip() == NO_RESULT:
            output = solve_fn(argument or "")
        values = solution_values_from_text(output)
        if not _same_multiset(values, parse_solution_values(expect.solution_values)):
            failures.append(f"Solve({argument!r}) gives {output!r}, expected values {expect.solution_values}")
    if expect.keywords is not None:
        text = _normalise(argument or "").casefold()
        if not any(_normalise(k).casefold() in text for k in expect.keywords):
            failures.append(f"argument {argument!r} contains none of {expect.keywords}")
    if expect.args is not None:
        spec = case.custom_tool(call.name)
        names = spec.param_names if spec else []
        given = dict(call.kwargs)
        for name, value in zip([n for n in names if n not in given], call.args):
            given[name] = value
        if given != expect.args:
            failures.append(f"arguments {given} != expected {expect.args}")
    return not failures, failures


def arguments_correct(
    case: EvalCase, calls: Sequence[CallRecord], solve_fn: Callable[[str], str] | None = None
) -> tuple[bool | None, list[str]]:
    """Whether some call to the expected tool passes every argument check.

    Returns:
        ``(None, [])`` when the case has no check; else the verdict and why it failed.
    """
    if not case.expect.has_argument_check or case.expect.tool is None:
        return None, []
    details: list[str] = []
    for call in calls:
        if call.name != case.expect.tool:
            continue
        ok, why = _check_call(case, call, solve_fn or _default_solve)
        if ok:
            return True, []
        details.extend(why)
    return False, details or [f"no call to {case.expect.tool}"]


def score_case(
    case: EvalCase,
    calls: Sequence[CallRecord],
    reply: str,
    *,
    format_errors: Sequence[str] = (),
    solve_fn: Callable[[str], str] | None = None,
) -> CaseScore:
    """Score one case from what the model did.

    Args:
        case: The case.
        calls: The tool calls the model made, in order.
        reply: The final reply.
        format_errors: Why the model's Commands could not be read, if they could not.
        solve_fn: Solves equations for the Solve check when a call's output is missing;
            :func:`moss_agent.tools.solver.solve` by default.
    """
    names = [c.name for c in calls]
    want, got = expected_label(case), chosen_label(names)
    trigger = want == got
    details: list[str] = []
    arguments: bool | None = None
    if trigger:
        arguments, why = arguments_correct(case, calls, solve_fn)
        details.extend(why)
    failed = [c for c in calls if c.name == case.expect.tool and c.error is not None]
    answer: bool | None = None
    if case.answer:
        answer, missing = answer_matches(reply, case.answer)
        if missing:
            details.append(f"reply lacks {missing}")
    error_type: ErrorType
    if format_errors:
        error_type = "format_error"
    elif want != NO_TOOL and not calls:
        error_type = "missed_call"
    elif want == NO_TOOL and calls:
        error_type = "spurious_call"
    elif not trigger:
        error_type = "wrong_tool"
    elif arguments is False:
        error_type = "wrong_args"
    elif failed:
        error_type = "tool_error"
        details.extend(f"{c.text or c.name}: {c.error}" for c in failed)
    elif answer is False:
        error_type = "wrong_answer"
    else:
        error_type = "ok"
    return CaseScore(
        trigger=trigger,
        arguments=arguments,
        answer=answer,
        end_to_end=error_type == "ok",
        error_type=error_type,
        expected_label=want,
        chosen_label=got,
        details=details,
    )


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


def _per_tool(results: Sequence[CaseResult]) -> dict[str, dict[str, Any]]:
    pairs = [(r.scores.expected_label, r.scores.chosen_label) for r in results]
    labels = sorted({label for pair in pairs for label in pair if label != OTHER})
    table = {}
    for label in labels:
        tp = sum(1 for e, c in pairs if e == label and c == label)
        predicted = sum(1 for _, c in pairs if c == label)
        support = sum(1 for e, _ in pairs if e == label)
        precision = tp / predicted if predicted else None
        recall = tp / support if support else None
        f1 = (
            2 * precision * recall / (precision + recall)
            if precision is not None and recall is not None and precision + recall > 0
            else (0.0 if precision is not None and recall is not None else None)
        )
        table[label] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    return table


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
