"""The MOSS Equation solver plugin: ``Solve(equation)``.

The text comes from the model, so it never reaches ``sympify``/``parse_expr``: a small
tokenizer and recursive-descent parser here build sympy objects directly. Accepted syntax:

* equations separated by ``;``, ``,``, ``，``, ``；`` or newlines (outer ``{…}`` or ``[…]`` is
  dropped); an expression without ``=`` means ``= 0``;
* every name in the equations is an unknown; a segment that is a single bare name
  (``"2t + 6t + t = 1, t"``) asks for that unknown only: the answer then lists only the named
  unknowns, and they need a unique value even when other unknowns are left free;
* ``+ - * / ^ **``, ``×``, ``÷``, parentheses, decimals (which make the answer a decimal),
  ``sqrt sin cos tan asin acos atan log ln exp abs`` and the constant ``pi``;
  ``e`` is an ordinary variable (it is one in MOSS data: ``a+b+c+d+e=45``);
* implicit multiplication: juxtaposition multiplies, at the same precedence as ``*``. A number
  followed by a name or ``(`` (``2x``, ``3(x+1)``), ``)`` followed by a name, number or ``(``,
  and a name that is not a function followed by ``(``. Letters that touch form one name:
  ``xy`` is the variable ``xy``, not ``x*y``.

The result reads as in the MOSS data: one ``name = value`` line per unknown, sorted by name;
several solutions give ``x_0 = …``, ``x_1 = …``. Rational values print exactly (``t = 1/9``),
every other value as a 15-digit decimal (``x = 1800.00000000000``,
``r_1 = -2.10858166325437 - 3.65217057266466*I``). No solution, infinitely many solutions,
unreadable text or a timeout give ``No result.``.

:func:`solve` runs sympy in a worker process that is killed at the time limit, because sympy
cannot be interrupted from a thread.
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING, Any, NamedTuple

from pydantic import BaseModel, Field

from moss_agent.errors import ToolError
from moss_agent.tools._limits import run_with_time_limit

if TYPE_CHECKING:
    import sympy
    from langchain_core.tools import BaseTool

__all__ = [
    "EquationSystem",
    "SolveError",
    "SolveInput",
    "format_solutions",
    "parse_system",
    "solve",
    "solve_equations",
    "solver_tool",
]

NO_RESULT = "No result."
DEFAULT_TIMEOUT_S = 5.0
MAX_INPUT_CHARS = 1000
MAX_EQUATIONS = 10
MAX_UNKNOWNS = 10
MAX_SOLUTIONS = 20
MAX_NESTING = 30
"""Deepest nesting of brackets and exponents."""
MAX_EXPONENT = 100
"""Largest absolute value of a numeric exponent."""
MAX_DEGREE = 20
"""Largest polynomial degree (an upper bound, from the expression tree); more roots than
``MAX_SOLUTIONS`` could not be reported anyway, and ``(x^100)^100`` would keep sympy busy."""
MAX_INTEGER_BITS = 10_000
MAX_NUMBER_CHARS = 50
MAX_NAME_CHARS = 30

_FUNCTION_NAMES = ("sqrt", "sin", "cos", "tan", "asin", "acos", "atan", "log", "ln", "exp", "abs")
_SUPERSCRIPTS = str.maketrans({"²": "^2", "³": "^3"})
_SYMBOLS = str.maketrans(
    {"×": "*", "÷": "/", "−": "-", "·": "*", "π": "pi", "[": "(", "]": ")", "{": "(", "}": ")"}
)
_TOKEN = re.compile(
    r"\s*(?:(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<name>[^\W\d]\w*)|(?P<op>\*\*|[-+*/^()=,]))"
)


class SolveError(ToolError):
    """The equations could not be read or have no single, numeric set of solutions."""


class EquationSystem(NamedTuple):
    """Equations parsed from model text.

    Attributes:
        equations: Expressions that must equal zero (``lhs - rhs``).
        unknowns: The symbols to solve for, sorted by name.
        wanted: The unknowns to report, sorted by name (all of them unless the text names some).
    """

    equations: list[sympy.Expr]
    unknowns: list[sympy.Symbol]
    wanted: list[sympy.Symbol]


def _split_segments(text: str) -> list[str]:
    """Split at ``;``, ``,`` and newlines outside brackets; drop empty segments."""
    segments, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char == "(":
            depth += 1
            if depth > MAX_NESTING:
                raise SolveError("the equations are nested too deeply")
        elif char == ")":
            depth -= 1
        elif char in ";,\n" and depth == 0:
            segments.append(text[start:index])
            start = index + 1
    segments.append(text[start:])
    return [segment.strip() for segment in segments if segment.strip()]


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while True:
        match = _TOKEN.match(text, position)
        if match is None or match.lastgroup is None:
            if text[position:].strip():
                raise SolveError(f"unexpected character {text[position:].lstrip()[:1]!r}")
            return tokens
        kind, value = match.lastgroup, match.group(match.lastgroup)
        if len(value) > (MAX_NUMBER_CHARS if kind == "number" else MAX_NAME_CHARS):
            raise SolveError(f"{kind} too long")
        tokens.append((kind, value))
        position = match.end()


class _Parser:
    """Recursive descent over one segment's tokens, building sympy expressions.

    Grammar (juxtaposition is multiplication)::

        equation := expr ["=" expr]
        expr     := term (("+" | "-") term)*
        term     := unary (("*" | "/" | <juxtaposition>) unary)*
        unary    := ("+" | "-")* power
        power    := atom [("^" | "**") unary]
        atom     := number | "pi" | function "(" expr ["," expr] ")" | name | "(" expr ")"
    """

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.position = 0
        self.depth = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.position] if self.position < len(self.tokens) else ("end", "")

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token[0] == "end" or value is not None and token[1] != value:
            raise SolveError(f"expected {value or 'more'!r}, found {token[1] or 'the end'!r}")
        self.position += 1
        return token

    def nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise SolveError("the equation is nested too deeply")

    def equation(self) -> sympy.Expr:
        import sympy

        left = self.expr()
        if self.peek()[1] == "=":
            self.take()
            left = left - self.expr()
        if self.peek()[0] != "end":
            raise SolveError(f"unexpected {self.peek()[1]!r}")
        if left.has(sympy.zoo, sympy.nan, sympy.oo):
            raise SolveError("the equation divides by zero or is infinite")
        if _degree_bound(left) > MAX_DEGREE:
            raise SolveError(f"polynomial degrees are limited to {MAX_DEGREE}")
        return left

    def expr(self) -> sympy.Expr:
        node = self.term()
        while self.peek()[1] in ("+", "-"):
            operator = self.take()[1]
            right = self.term()
            node = node + right if operator == "+" else node - right
        return node

    def term(self) -> sympy.Expr:
        node = self.unary()
        while True:
            kind, value = self.peek()
            if value in ("*", "/"):
                self.take()
                right = self.unary()
                if value == "/" and right.is_zero:
                    raise SolveError("division by zero")
                node = node * right if value == "*" else node / right
            elif kind in ("number", "name") or value == "(":
                node = node * self.unary()
            else:
                return node

    def unary(self) -> sympy.Expr:
        negative = False
        while self.peek()[1] in ("+", "-"):
            negative ^= self.take()[1] == "-"
        node = self.power()
        return -node if negative else node

    def power(self) -> sympy.Expr:
        base = self.atom()
        if self.peek()[1] not in ("^", "**"):
            return base
        self.take()
        self.nest()
        exponent = self.unary()
        self.depth -= 1
        return _bounded_power(base, exponent)

    def atom(self) -> sympy.Expr:
        import sympy

        kind, value = self.take()
        if kind == "number":
            return _number(value)
        if value == "(":
            self.nest()
            node = self.expr()
            self.take(")")
            self.depth -= 1
            return node
        if kind != "name":
            raise SolveError(f"unexpected {value!r}")
        if value == "pi":
            return sympy.pi
        if value not in _FUNCTION_NAMES:
            return sympy.Symbol(value)
        self.take("(")
        self.nest()
        arguments = [self.expr()]
        if value == "log" and self.peek()[1] == ",":
            self.take()
            arguments.append(self.expr())
        self.take(")")
        self.depth -= 1
        return _function(value)(*arguments)


def _function(name: str) -> Any:
    import sympy

    return {
        "sqrt": sympy.sqrt,
        "sin": sympy.sin,
        "cos": sympy.cos,
        "tan": sympy.tan,
        "asin": sympy.asin,
        "acos": sympy.acos,
        "atan": sympy.atan,
        "log": sympy.log,
        "ln": sympy.log,
        "exp": sympy.exp,
        "abs": sympy.Abs,
    }[name]


def _number(text: str) -> sympy.Expr:
    import sympy

    if text.isdigit():
        return sympy.Integer(int(text))
    mantissa, _, exponent = text.lower().partition("e")
    if exponent and abs(int(exponent)) > 300:
        raise SolveError("number out of range")
    return sympy.Float(text)


def _degree_bound(expr: sympy.Expr) -> float:
    """An upper bound on the total degree of ``expr`` in its symbols (exact for polynomials)."""
    if expr.is_Symbol:
        return 1.0
    if expr.is_number:
        return 0.0
    if expr.is_Pow:
        base, exponent = expr.args
        if exponent.is_number:
            return _degree_bound(base) * abs(complex(exponent))
        return _degree_bound(base) + _degree_bound(exponent)
    degrees = [_degree_bound(arg) for arg in expr.args]
    return sum(degrees) if expr.is_Mul else max(degrees, default=0.0)


def _bounded_power(base: sympy.Expr, exponent: sympy.Expr) -> sympy.Expr:
    """``base ** exponent``, refusing numeric exponents that would build huge numbers."""
    if exponent.is_number:
        try:
            size = abs(complex(exponent.evalf(5)))
        except (TypeError, ValueError):
            raise SolveError("the exponent is not a finite number") from None
        if size > MAX_EXPONENT:
            raise SolveError(f"exponents are limited to {MAX_EXPONENT}")
        if base.is_Rational:
            bits = max(abs(base.p).bit_length(), base.q.bit_length())
            if bits * size > MAX_INTEGER_BITS:
                raise SolveError("the power is too large")
    return base**exponent


def parse_system(text: str) -> EquationSystem:
    """Parse model-written equations into sympy objects (never via ``sympify``).

    Args:
        text: E.g. ``"x+y=35, 2x+4y=94"`` or ``"2t + 6t + t = 1, t"``.

    Returns:
        The equations (as expressions equal to zero), the unknowns, and those to report.

    Raises:
        SolveError: The text is too long, unreadable, or has too many equations or unknowns.
    """
    if len(text) > MAX_INPUT_CHARS:
        raise SolveError(f"the equations are longer than {MAX_INPUT_CHARS} characters")
    text = unicodedata.normalize("NFKC", text.translate(_SUPERSCRIPTS)).strip()
    if len(text) > 2 and text[0] + text[-1] in ("{}", "[]"):
        text = text[1:-1]
    segments = _split_segments(text.translate(_SYMBOLS))
    equations, hints = [], []
    for segment in segments:
        tokens = _tokenize(segment)
        if len(tokens) == 1 and tokens[0][0] == "name" and tokens[0][1] not in (*_FUNCTION_NAMES, "pi"):
            hints.append(tokens[0][1])
        else:
            equations.append(_Parser(tokens).equation())
    if not equations and hints:  # "x" alone is the equation x = 0
        equations, hints = [_Parser([("name", name)]).equation() for name in hints], []
    if not equations or len(equations) > MAX_EQUATIONS:
        raise SolveError(f"give between 1 and {MAX_EQUATIONS} equations")
    import sympy

    found: set[sympy.Symbol] = set().union(*(equation.free_symbols for equation in equations))
    unknowns = sorted(found, key=lambda symbol: symbol.name)
    if not unknowns or len(unknowns) > MAX_UNKNOWNS:
        raise SolveError(f"give between 1 and {MAX_UNKNOWNS} unknowns")
    wanted = sorted({sympy.Symbol(name) for name in hints}, key=lambda symbol: symbol.name)
    return EquationSystem(equations, unknowns, wanted or unknowns)


def _format_value(value: sympy.Expr) -> str:
    import sympy

    if value.is_Rational:
        return str(value)
    real, imaginary = value.as_real_imag()
    if real.is_Rational and imaginary.is_Rational:
        return str(value)
    return str(sympy.N(value, 15, chop=True))


def solve_equations(text: str) -> list[dict[str, str]]:
    """Solve model-written equations in this process (no time limit: see :func:`solve`).

    Args:
        text: The equations, as for :func:`parse_system`.

    Returns:
        One mapping of unknown name to value text per solution, in sympy's order.

    Raises:
        SolveError: Unreadable text, no solution, infinitely many, or a non-numeric answer.
    """
    import sympy

    system = parse_system(text)
    try:
        solutions = sympy.solve(system.equations, system.unknowns, dict=True)
    except (NotImplementedError, ValueError, TypeError, ArithmeticError) as error:
        raise SolveError(f"sympy cannot solve this: {error}") from None
    if not solutions or len(solutions) > MAX_SOLUTIONS:
        raise SolveError("no solution, or too many")
    bad = (sympy.nan, sympy.zoo, sympy.oo, -sympy.oo)
    names = [symbol.name for symbol in system.wanted]
    results: dict[tuple[str, ...], dict[str, str]] = {}  # keyed by the values: drops repeats
    for solution in solutions:
        values = [solution.get(symbol) for symbol in system.wanted]
        if any(value is None or value.free_symbols or value.has(*bad) for value in values):
            raise SolveError("the solution is not a unique number")
        texts = tuple(_format_value(value) for value in values)
        results.setdefault(texts, dict(zip(names, texts, strict=True)))
    return list(results.values())


def format_solutions(solutions: list[dict[str, str]]) -> str:
    r"""Render solutions as MOSS Results text.

    Args:
        solutions: As returned by :func:`solve_equations`.

    Returns:
        ``"x = 22\ny = 13"`` for one solution; ``"x_0 = -6\nx_1 = 4"`` for several;
        ``"No result."`` for none.
    """
    if not solutions:
        return NO_RESULT
    if len(solutions) == 1:
        return "\n".join(f"{name} = {value}" for name, value in sorted(solutions[0].items()))
    names = sorted(solutions[0])
    return "\n".join(
        f"{name}_{index} = {solution[name]}" for name in names for index, solution in enumerate(solutions)
    )


def _solve_to_text(text: str) -> str:
    """Worker-side entry point: never raises for bad input."""
    try:
        return format_solutions(solve_equations(text))
    except (SolveError, RecursionError, MemoryError):
        return NO_RESULT
    except Exception:  # sympy raises many kinds of errors on odd input
        return NO_RESULT


def solve(equation: str, *, timeout: float = DEFAULT_TIMEOUT_S) -> str:
    r"""Solve equations and return the MOSS Results text.

    The work runs in a worker process that is killed if it takes longer than ``timeout``.

    Args:
        equation: Model-written text such as ``"x+y=35, 2x+4y=94"``.
        timeout: Seconds the solve may take.

    Returns:
        ``"x = 23\ny = 12"``-style lines, or ``"No result."``.
    """
    if not isinstance(equation, str) or len(equation) > MAX_INPUT_CHARS or not equation.strip():
        return NO_RESULT
    try:
        return run_with_time_limit(_solve_to_text, equation, timeout=timeout, preload=("sympy",))
    except Exception:  # timeout, a crashed worker, or a failure to start one
        return NO_RESULT


class SolveInput(BaseModel):
    """Arguments of the Solve tool."""

    equation: str = Field(
        description="One or more equations separated by ';' or ',', e.g. 'x+y=35; 2x+4y=94'. "
        "Use ^ for powers; '2x' means 2*x. Optionally end with the unknowns to solve for, "
        "e.g. '2t + 6t + t = 1, t'."
    )


def solver_tool() -> BaseTool:
    """Build the LangChain tool for the MOSS Equation solver plugin.

    Returns:
        A ``StructuredTool`` named ``"Solve"`` that returns the Results text.
    """
    from langchain_core.tools import StructuredTool

    return StructuredTool.from_function(
        func=solve,
        name="Solve",
        description="Solve an equation or a system of equations for its unknowns and return "
        "'name = value' lines, or 'No result.' if there is no unique numeric solution.",
        args_schema=SolveInput,
    )
