from __future__ import annotations

import math

import pytest

from moss_agent.evals.scoring import (
    CallRecord,
    CaseResult,
    CaseScore,
    answer_matches,
    chosen_label,
    command_format_errors,
    confusion_counts,
    extract_numbers,
    mcnemar_exact,
    parse_number,
    percentile,
    score_case,
    solution_values_from_text,
    summarize,
    wilson_interval,
)
from moss_agent.evals.suite import EvalCase


def case(tool: str | None = "Calculate", answer: list[str] | None = None, **expect) -> EvalCase:
    data = {
        "id": "c1",
        "messages": [{"role": "user", "content": "q"}],
        "expect": {"tool": tool, **expect},
        "answer": answer or [],
    }
    if tool not in (None, "Search", "Calculate", "Solve", "Text2Image"):
        data["tools"] = [
            {
                "name": tool,
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                },
            }
        ]
    return EvalCase.model_validate(data)


def call(name: str, *args, error: str | None = None, output: str | None = "out", **kwargs) -> CallRecord:
    return CallRecord(
        name=name, args=list(args), kwargs=kwargs, text=f"{name}(...)", output=output, error=error
    )


# --- the taxonomy -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("the_case", "calls", "reply", "format_errors", "error_type", "trigger"),
    [
        (case(value=6), [call("Calculate", "2*3")], "6", [], "ok", True),
        (case(value=6), [call("Calculate", "2*3")], "6", ["unclosed call"], "format_error", True),
        (case(value=6), [], "6", [], "missed_call", False),
        (case(None), [call("Search", "x")], "hi", [], "spurious_call", False),
        (case(value=6), [call("Search", "2*3")], "6", [], "wrong_tool", False),
        (case(value=6), [call("Calculate", "2*3"), call("Search", "x")], "6", [], "wrong_tool", False),
        (case(value=6), [call("Calculate", "2*4")], "6", [], "wrong_args", True),
        (
            case(),
            [call("Calculate", "1/0", output="No result.", error="no result")],
            "?",
            [],
            "tool_error",
            True,
        ),
        (case(value=6, answer=["6"]), [call("Calculate", "2*3")], "It is 7.", [], "wrong_answer", True),
        (case(None), [], "Hello", [], "ok", True),
    ],
)
def test_error_taxonomy(the_case, calls, reply, format_errors, error_type, trigger):
    score = score_case(the_case, calls, reply, format_errors=format_errors)
    assert score.error_type == error_type
    assert score.trigger is trigger
    assert score.end_to_end is (error_type == "ok")


def test_arguments_only_scored_when_trigger_right_and_checked():
    assert score_case(case(value=6), [call("Search", "x")], "").arguments is None
    assert score_case(case(), [call("Calculate", "2*3")], "").arguments is None
    assert score_case(case(value=6), [call("Calculate", "2*3")], "").arguments is True


def test_any_call_to_the_tool_may_pass_the_check():
    score = score_case(case(value=6), [call("Calculate", "2+3"), call("Calculate", "2*3")], "")
    assert score.arguments is True


def test_value_check_is_relative():
    assert score_case(case(value=1e9), [call("Calculate", "1e9+1")], "").arguments is True
    assert score_case(case(value=1.0), [call("Calculate", "1.01")], "").arguments is False
    assert score_case(case(value=0), [call("Calculate", "1-1")], "").arguments is True


def test_a_value_too_large_for_a_float_is_a_wrong_argument_not_a_crash():
    # the model wrote a call whose exact integer result overflows float (a harness error before)
    score = score_case(case(value=12383), [call("Calculate", "9^400")], "")
    assert score.arguments is False and score.error_type == "wrong_args"
    assert any("(382 digits)" in line for line in score.details)


def test_solution_values_use_the_call_output_and_ignore_names():
    the_case = case("Solve", solution_values=[23, 12])
    good = call("Solve", "a+b=35, 2a+4b=94", output="a = 23\nb = 12")
    assert score_case(the_case, [good], "").arguments is True
    wrong = call("Solve", "a+b=35", output="a = 30\nb = 5")
    assert score_case(the_case, [wrong], "").arguments is False


def test_solution_values_run_the_solver_when_the_call_failed():
    seen = []

    def solve_fn(text: str) -> str:
        seen.append(text)
        return "t = 1/9"

    the_case = case("Solve", solution_values=["1/9"])
    failed = call("Solve", "9t=1", output="No result.", error="timed out after 5 s")
    assert score_case(the_case, [failed], "", solve_fn=solve_fn).arguments is True
    assert seen == ["9t=1"]


def test_solution_values_multiset():
    the_case = case("Solve", solution_values=[-6, 4])
    assert score_case(the_case, [call("Solve", "x", output="x_0 = -6\nx_1 = 4")], "").arguments is True
    assert score_case(the_case, [call("Solve", "x", output="x_0 = 4\nx_1 = 4")], "").arguments is False


def test_keywords_any_case_insensitive():
    the_case = case("Search", keywords=["Eiffel", "埃菲尔"])
    assert score_case(the_case, [call("Search", "eiffel tower height")], "").arguments is True
    assert score_case(the_case, [call("Search", "埃菲尔铁塔多高")], "").arguments is True
    assert score_case(the_case, [call("Search", "Paris tower")], "").arguments is False


def test_custom_tool_args_positional_and_keyword():
    the_case = case("Weather", args={"city": "Paris", "days": 3})
    assert score_case(the_case, [call("Weather", city="Paris", days=3)], "").arguments is True
    assert score_case(the_case, [call("Weather", "Paris", 3)], "").arguments is True
    assert score_case(the_case, [call("Weather", "Paris", 4)], "").error_type == "wrong_args"


def test_chosen_label():
    assert chosen_label([]) == "None"
    assert chosen_label(["Search", "Search"]) == "Search"
    assert chosen_label(["Search", "Calculate"]) == "Other"


def test_command_format_errors():
    assert command_format_errors('<|Inner Thoughts|>: x<eot>\n<|Commands|>: Calculate("1+1")') == []
    assert command_format_errors("<|Inner Thoughts|>: x<eot>\n<|Commands|>: None (not needed)") == []
    assert command_format_errors("<|Inner Thoughts|>: x<eot>\n<|MOSS|>: hi") == ["no Commands section"]
    assert command_format_errors('<|Commands|>: Calculate("1+1"')


# --- answers and numbers ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "answers", "ok"),
    [
        ("1234 × 5678 = 7,006,652.", ["7006652"], True),
        ("The answer is 7006652", ["7,006,652"], True),
        ("It is 23.0 degrees", ["23"], True),
        ("It is 23.00", ["23"], True),
        ("结果是23。", ["23"], True),
        ("鸡有23只，兔有12只。", ["23", "12"], True),
        ("鸡有23只。", ["23", "12"], False),
        ("It is 230", ["23"], False),
        ("It is 2.3", ["23"], False),
        ("温度是-5度", ["-5"], True),
        ("3-5", ["-5"], False),
        ("约为１０９．８６平方", ["109.86"], True),
        ("Paris is the capital", ["paris"], True),
        ("Lyon", ["Paris"], False),
        ("It is 50% off", ["50%"], True),
    ],
)
def test_answer_matches(reply, answers, ok):
    assert answer_matches(reply, answers)[0] is ok


def test_extract_numbers():
    assert extract_numbers("7,006,652 和 23.5，还有1e3 以及 x2") == [7006652.0, 23.5, 1000.0]


def test_parse_number_and_solutions():
    assert parse_number("1/9") == complex(1 / 9)
    assert parse_number("1800.00000000000") == 1800
    assert parse_number("-2.5 - 3.5*I") == complex(-2.5, -3.5)
    assert parse_number("sqrt(2)") is None
    assert solution_values_from_text("x = 23\ny = 12") == [23, 12]
    assert solution_values_from_text("No result.") == []


# --- statistics ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "n", "lo", "hi"),
    [(8, 10, 0.4902, 0.9433), (0, 10, 0.0, 0.2775), (10, 10, 0.7225, 1.0), (50, 100, 0.4038, 0.5962)],
)
def test_wilson_interval_known_values(k, n, lo, hi):
    low, high = wilson_interval(k, n)
    assert low == pytest.approx(lo, abs=1e-4) and high == pytest.approx(hi, abs=1e-4)


def test_wilson_interval_empty():
    assert wilson_interval(0, 0) is None


@pytest.mark.parametrize(
    ("b", "c", "p"),
    [(0, 0, 1.0), (3, 0, 0.25), (10, 0, 2 / 1024), (5, 5, 1.0), (1, 6, 0.125), (2, 12, 0.012939453125)],
)
def test_mcnemar_exact(b, c, p):
    assert mcnemar_exact(b, c).p_value == pytest.approx(p)
    assert mcnemar_exact(c, b).p_value == pytest.approx(p)


def test_percentile():
    assert percentile([], 50) is None
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([1.0] * 19 + [20.0], 95) == pytest.approx(1.95)


# --- aggregates ---------------------------------------------------------------------------


def result(id_: str, expected: str, chosen: str, error_type: str, **scores) -> CaseResult:
    defaults = {"trigger": expected == chosen, "end_to_end": error_type == "ok"}
    return CaseResult(
        id=id_,
        case={},
        expected={},
        scores=CaseScore(
            error_type=error_type, expected_label=expected, chosen_label=chosen, **{**defaults, **scores}
        ),
        error_type=error_type,
        latency_s=1.0,
        tokens=10,
        lang="en" if id_ < "c" else "zh",
        category="x",
    )


def test_summarize_metrics_and_per_tool():
    results = [
        result("a1", "Calculate", "Calculate", "ok", arguments=True, answer=True),
        result("a2", "Calculate", "None", "missed_call", answer=False),
        result("a3", "None", "Calculate", "spurious_call"),
        result("c1", "None", "None", "ok"),
        result("c2", "Search", "Search", "wrong_args", arguments=False),
        CaseResult(
            id="c3",
            case={},
            expected={},
            scores=CaseScore(
                trigger=None, error_type="harness_error", expected_label="Search", chosen_label="None"
            ),
            error_type="harness_error",
            error="RuntimeError: boom",
        ),
    ]
    s = summarize(results, {"model": {"name": "m"}})
    assert s["n"] == 6 and s["n_scored"] == 5 and s["harness_errors"] == 1
    assert s["trigger_accuracy"] == pytest.approx(3 / 5)
    assert s["argument_accuracy"] == pytest.approx(1 / 2)
    assert s["answer_accuracy"] == pytest.approx(1 / 2)
    assert s["end_to_end_accuracy"] == pytest.approx(2 / 5)
    assert s["format_error_rate"] == 0
    assert s["errors"] == {"missed_call": 1, "spurious_call": 1, "wrong_args": 1, "ok": 2, "harness_error": 1}
    calc = s["per_tool"]["Calculate"]
    assert calc == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert s["per_tool"]["Search"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    lo, hi = s["ci95"]["trigger_accuracy"]
    assert (lo, hi) == pytest.approx(wilson_interval(3, 5))
    assert s["latency_s"] == {"p50": 1.0, "p95": 1.0} and s["tokens_per_case"] == 10
    assert s["by_language"]["en"]["n"] == 3 and s["by_language"]["zh"]["n"] == 2
    assert s["by_tool"]["Calculate"]["trigger_accuracy"] == 0.5
    assert s["config"] == {"model": {"name": "m"}}


def test_summarize_empty_denominators_are_none():
    s = summarize([result("a1", "None", "None", "ok")])
    assert s["argument_accuracy"] is None and s["answer_accuracy"] is None
    assert s["ci95"]["argument_accuracy"] is None
    assert summarize([])["trigger_accuracy"] is None


def test_confusion_buckets_custom_tools_as_other():
    table = confusion_counts(
        [
            result("a", "Weather", "Weather", "ok"),
            result("b", "Search", "Other", "wrong_tool"),
            result("c", "None", "None", "ok"),
        ]
    )
    assert table["Other"]["Other"] == 1 and table["Search"]["Other"] == 1 and table["None"]["None"] == 1
    assert sum(sum(row.values()) for row in table.values()) == 3


def test_f1_zero_when_no_hits():
    s = summarize(
        [result("a", "Search", "None", "missed_call"), result("b", "None", "Search", "spurious_call")]
    )
    assert s["per_tool"]["Search"]["f1"] == 0.0
    assert not math.isnan(s["per_tool"]["None"]["f1"])
