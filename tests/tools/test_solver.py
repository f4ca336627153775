import json
import math
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moss_agent.errors import ToolError
from moss_agent.tools import _limits
from moss_agent.tools._limits import WorkerCrashedError, run_with_time_limit, warm_up
from moss_agent.tools.solver import (
    SolveError,
    SolveInput,
    format_solutions,
    parse_system,
    solve,
    solve_equations,
    solver_tool,
)

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "moss-sft-sample" / "equation_solver"
# A polynomial system sympy needs far longer than a second for (minutes on a 2-core machine).
SLOW_SYSTEM = "x^3+y^3+z^3+w^3=1;x^2+y^2+z^2+w^2=2;x+y+z+w=3;x*y*z*w=4"


@pytest.fixture(scope="module", autouse=True)
def warm_worker():
    warm_up(("sympy", "moss_agent.tools.solver"))


@pytest.mark.parametrize(
    ("equation", "expected"),
    [
        # From the brief and the MOSS sample data.
        ("x+y=35;x-y=9", "x = 22\ny = 13"),
        ("x+y=35, 2x+4y=94", "x = 23\ny = 12"),
        ("x+y=35;2*x+4*y=94", "x = 23\ny = 12"),
        ("x+y=35，2x+4y=94", "x = 23\ny = 12"),
        ("x+y=35；2x+4y=94", "x = 23\ny = 12"),
        ("x+y=35\n2x+4y=94", "x = 23\ny = 12"),
        ("x+1.5x=4500", "x = 1800.00000000000"),
        ("3x + 4x + 5x = 360; 3y = 6x; 6z = 5x", "x = 30\ny = 60\nz = 25"),
        ("24a+24b+24c=1;9b+9c=1;18a+18c=1", "a = -5/72\nb = -1/72\nc = 1/8"),
        ("6^2 + b^2 = 10^2", "b_0 = -8\nb_1 = 8"),
        ("2t + 6t + t = 1, t", "t = 1/9"),
        ("5*(x^2)*sqrt(5)/4=25", "x_0 = -2.99069756244244\nx_1 = 2.99069756244244"),
        ("(600-x)*8*0.5=(570-x)*10", "x = 550.000000000000"),
        ("12*(x+y)=10;9*(y+z)=15;18*(x+z)=20", "x = 5/36\ny = 25/36\nz = 35/36"),
        ("(x + 5)^2 = 169", "x_0 = -18\nx_1 = 8"),
        ("3x+7=24", "x = 17/3"),
        ("x+y=100000;0.08*x+0.11*y=10000", "x = 33333.3333333333\ny = 66666.6666666667"),
        ("3x+4y=12.5;6x+9y=37.5", "x = -12.5000000000000\ny = 12.5000000000000"),
        ("a^2=16^2+25^2-2*16*25*cos(120); a", "a_0 = -15.1543796830735\na_1 = 15.1543796830735"),
        ("x+2x=180/1;", "x = 60"),
        ("2x+0y=48;x+y=16", "x = 24\ny = -8"),
        ("12x = 3*21x", "x = 0"),
        # Syntax: implicit multiplication, powers, symbols, brackets.
        ("3(x+1)=9", "x = 2"),
        ("(x+1)(x-1)=0", "x_0 = -1\nx_1 = 1"),
        ("x(x-2)=0", "x_0 = 0\nx_1 = 2"),
        ("2x^2=8", "x_0 = -2\nx_1 = 2"),
        ("x**2=9", "x_0 = -3\nx_1 = 3"),
        ("x²=4", "x_0 = -2\nx_1 = 2"),
        ("2^-1*x=1", "x = 2"),
        ("--x=3", "x = 3"),
        ("２x＝４", "x = 2"),
        ("6x÷2=9", "x = 3"),
        ("2×x=5", "x = 5/2"),
        ("{x+y=3, x-y=1}", "x = 2\ny = 1"),
        ("[2x=4]", "x = 2"),
        ("x/(2)=.5", "x = 1.00000000000000"),
        ("x=1e3", "x = 1000.00000000000"),
        ("2pi r = 10", "r = 1.59154943091895"),
        ("log(x, 2) = 3", "x = 8"),
        ("ln(x) = 0", "x = 1"),
        ("exp(x) = 1", "x = 0"),
        ("sqrt(x) = 3", "x = 9"),
        ("abs(x) = 2, x", "No result."),  # sympy cannot solve Abs without assumptions
        ("xy=12; xy=12", "xy = 12"),  # touching letters form one name
        ("e + 1 = 3", "e = 2"),  # e is a variable, as in "a+b+c+d+e=45"
        ("I=2; E=3", "E = 3\nI = 2"),  # sympy's special names are plain symbols here
        ("price*3=27", "price = 9"),
        ("3x+280", "x = -280/3"),  # no '=' means '= 0'
        ("x", "x = 0"),
        ("x^2+1=0", "x_0 = -I\nx_1 = I"),
        ("x+y=5, x-y=1, z+w=3, x", "x = 3"),  # only the named unknown must be unique
        ("a=6;b=8;c=sqrt(a^2+b^2);R=(a*b*c)/(4*sqrt((a+b+c)*(b+c-a)*(a+c-b)*(a+b-c)));R", "R = 5/4"),
        # No unique numeric answer.
        ("x+y=?", "No result."),
        ("l*w=72", "No result."),
        ("4x + 10 = y;6x = z", "No result."),
        ("x+y=7;xy=12", "No result."),
        ("x+1=2, y", "No result."),
        ("1=2", "No result."),
        ("x=x", "No result."),
        ("2+2=4", "No result."),
        ("x=1;x=2", "No result."),
        ("x/0=1", "No result."),
        ("x/(y-y)=1", "No result."),
        ("0^-1=x", "No result."),
        ("x^100=1", "No result."),  # more than 20 solutions
        ("x=1=2", "No result."),
        ("x+", "No result."),
        ("(x+1=2", "No result."),
        ("x+1)=2", "No result."),
        ("sqrt=2", "No result."),
        ("sqrt x = 2", "No result."),
        ("", "No result."),
        ("  ", "No result."),
        (";;;", "No result."),
        ("x@2=1", "No result."),
        ("'x'=1", "No result."),
    ],
)
def test_solve(equation, expected):
    assert solve(equation) == expected


def test_several_solutions_of_a_system_are_numbered_per_variable():
    assert solve("x+y=5; x*y=6") == "x_0 = 2\nx_1 = 3\ny_0 = 3\ny_1 = 2"


def test_solve_equations_and_format_solutions():
    assert solve_equations("x+y=35;x-y=9") == [{"x": "22", "y": "13"}]
    assert format_solutions([{"x": "1"}, {"x": "2"}]) == "x_0 = 1\nx_1 = 2"
    assert format_solutions([]) == "No result."


def test_parse_system():
    system = parse_system("2t + 6t + t = 1, t")
    assert [str(equation) for equation in system.equations] == ["9*t - 1"]
    assert [symbol.name for symbol in system.unknowns] == ["t"]
    assert [symbol.name for symbol in system.wanted] == ["t"]
    system = parse_system("y=2x; x+y=3")
    assert [symbol.name for symbol in system.unknowns] == ["x", "y"]
    assert system.wanted == system.unknowns


def test_solve_error_is_a_tool_error():
    with pytest.raises(SolveError) as info:
        solve_equations("l*w=72")
    assert isinstance(info.value, ToolError)
    assert info.value.results_text == "No result."


@pytest.mark.parametrize(
    "text",
    [
        "x" * 1001,
        "x=1;" * 11,  # 11 equations
        "+".join(f"x{i}" for i in range(11)) + "=1",  # 11 unknowns
        "x" * 31 + "=1",
        "x=" + "1" * 51,
        "x=1e301",
        "x=2^101",
        "x=(10^50)^100",
        "(" * 31 + "x" + ")" * 31 + "=1",
        "x" + "^x" * 31 + "=2",
        "x?",
    ],
)
def test_parse_system_bounds(text):
    with pytest.raises(SolveError):
        parse_system(text)


HOSTILE = [
    "__import__('os').system('touch {tmp}/pwned')",
    "x=__import__('os').system('touch {tmp}/pwned')",
    "().__class__.__bases__[0].__subclasses__()",
    "x.__class__=1",
    "9^9^9=x",
    "x=10^10^10",
    "x=2^99999999",
    "x=9**9**9",
    "(x^100)^100=1",
    "factorial(10**6)=x",
    "(" * 100_000 + "x" + ")" * 100_000,
    "-" * 999 + "x=1",
    "x" * 1_000_000,
    "x=1;" * 250_000,
    "lambda: 1",
    "[1]*10**9",
    "'a'*10**9",
    "\x00\x01x=1",
    "\ud800=1",
    "🙂=1",
    "ﷺ=1",
]


@pytest.mark.parametrize("template", HOSTILE)
def test_hostile_inputs_are_refused_fast_and_harmless(template, tmp_path):
    equation = template.replace("{tmp}", str(tmp_path))
    start = time.monotonic()
    assert solve(equation) == "No result."
    assert time.monotonic() - start < 3.0
    assert not (tmp_path / "pwned").exists()


def test_the_time_limit_stops_a_slow_solve():
    start = time.monotonic()
    assert solve(SLOW_SYSTEM, timeout=0.5) == "No result."
    assert time.monotonic() - start < 2.0
    # The killed worker is replaced: the next call works.
    assert solve("x+y=35, 2x+4y=94") == "x = 23\ny = 12"


@given(st.text(max_size=200))
@settings(max_examples=150, deadline=None)
def test_parse_system_accepts_or_raises_solve_error(text):
    try:
        system = parse_system(text)
    except SolveError:
        return
    assert system.equations and system.unknowns


@given(st.text(alphabet="xyz0123456789.+-*/^()=;, ", max_size=40))
@settings(max_examples=60, deadline=None)
def test_solve_any_text_gives_a_string_in_time(text):
    start = time.monotonic()
    result = solve(text, timeout=2.0)
    assert isinstance(result, str) and result
    assert time.monotonic() - start < 4.0


@given(st.integers(-50, 50), st.integers(-50, 50))
@settings(max_examples=30, deadline=None)
def test_linear_systems_round_trip(x, y):
    assert solve(f"x+y={x + y}; x-y={x - y}") == f"x = {x}\ny = {y}"


def test_langchain_tool():
    tool = solver_tool()
    assert tool.name == "Solve"
    assert tool.args_schema is SolveInput
    assert tool.description
    assert tool.invoke({"equation": "x+y=48;2x+4y=140"}) == "x = 26\ny = 22"


# --- the worker-process helper -------------------------------------------------------------


def test_run_with_time_limit_returns_the_value():
    assert run_with_time_limit(math.factorial, 10, timeout=5) == 3_628_800


def test_run_with_time_limit_reraises_the_functions_error():
    with pytest.raises(ValueError, match="math domain error"):
        run_with_time_limit(math.sqrt, -1, timeout=5)


def test_run_with_time_limit_kills_on_timeout_and_recovers():
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        run_with_time_limit(time.sleep, 30, timeout=0.3)
    assert time.monotonic() - start < 2.0
    assert run_with_time_limit(math.factorial, 5, timeout=5) == 120


def test_run_with_time_limit_reports_a_dead_worker():
    with pytest.raises(WorkerCrashedError):
        run_with_time_limit(os._exit, 3, timeout=5)
    assert run_with_time_limit(math.factorial, 5, timeout=5) == 120


def test_run_with_time_limit_replaces_a_worker_that_died_while_idle():
    run_with_time_limit(math.factorial, 1, timeout=5)
    for worker in list(_limits._idle):
        worker.process.kill()
        worker.process.wait()
    assert run_with_time_limit(math.factorial, 5, timeout=5) == 120


def test_run_with_time_limit_serves_concurrent_callers():
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda n: run_with_time_limit(math.factorial, n, timeout=30), range(6)))
    assert results == [math.factorial(n) for n in range(6)]


def _sample_calls():
    calls = {}
    for path in sorted(SAMPLES.glob("*.json")):
        for turn in json.loads(path.read_text(encoding="utf-8"))["chat"].values():
            text = turn.get("Tool Responses", "")
            pattern = r'Solve\("((?:[^"\\]|\\.)*)"\) =>\n(.*?)(?=\n<eor>|\nSolve\(|\nCalculate\()'
            for match in re.finditer(pattern, text, re.S):
                calls[match.group(1)] = match.group(2)
    return sorted(calls.items())


# Where the MOSS data disagrees with the documented rules here.
KNOWN_DEVIATIONS = {
    "6x^2=2400;x^3": "a trailing expression without '=' means '= 0' here, so the system has no solution",
}


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="../shared/moss-sft-sample is absent")
def test_agrees_with_the_exact_results_in_the_moss_samples():
    """Every sample answer made of integers and fractions is reproduced.

    The sample data is inconsistent elsewhere (exact input answered with decimals, solvable
    systems answered with "No result."), so only exact answers are compared.
    """
    exact = re.compile(r"[a-zA-Z]\w* = -?\d+(/\d+)?")
    calls = [
        (equation, expected)
        for equation, expected in _sample_calls()
        if all(exact.fullmatch(line) for line in expected.splitlines()) and equation not in KNOWN_DEVIATIONS
    ]
    assert len(calls) > 30
    results = [(equation, expected, solve(equation)) for equation, expected in calls]
    assert [result for result in results if result[1] != result[2]] == []
