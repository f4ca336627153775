"""Scoring: per-case checks and the error taxonomy.

Pure functions over records (no file or network I/O). The records live in
:mod:`moss_agent.evals.records` and the aggregate metrics and significance tests in
:mod:`moss_agent.evals.metrics`; both are re-exported here. The only side effect is the Solve
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
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

# ACCURACY_METRICS and Z_95 stay importable from here, as before the split.
from moss_agent.evals.metrics import ACCURACY_METRICS as ACCURACY_METRICS
from moss_agent.evals.metrics import Z_95 as Z_95
from moss_agent.evals.metrics import (
    McNemarResult,
    confusion_counts,
    mcnemar_exact,
    percentile,
    summarize,
    wilson_interval,
)
from moss_agent.evals.records import (
    CONFUSION_LABELS,
    ERROR_TYPES,
    NO_TOOL,
    OTHER,
    CallRecord,
    CaseResult,
    CaseScore,
    ErrorType,
)
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

VALUE_REL_TOL = 1e-6
VALUE_ABS_TOL = 1e-9


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


def _value_close(value: Any, expected: float) -> bool:
    """Whether a computed value matches the expected one (a value too large for a float does not)."""
    try:
        number = float(value)
    except (OverflowError, TypeError, ValueError):
        return False
    return math.isclose(number, expected, rel_tol=VALUE_REL_TOL, abs_tol=VALUE_ABS_TOL)


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
            if not _value_close(value, expect.value):
                text = str(value)
                shown = repr(value) if len(text) <= 40 else f"{text[:20]}… ({len(text)} digits)"
                failures.append(f"expression {argument!r} = {shown}, expected {expect.value!r}")
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
