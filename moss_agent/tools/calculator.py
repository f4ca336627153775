"""The MOSS Calculator plugin: ``Calculate(expression)``.

The expression comes from the model, so it is never evaluated by Python. It is parsed with
``ast.parse`` (parsing runs no code) and the tree is walked against an allow-list: numbers,
``+ - * / // % **`` (``^`` also means power, as in MOSS data), unary signs, parentheses, a few
math functions, the constants ``pi`` and ``e``, and ``name = value;`` assignments before the
final expression. Every operation is bounded (integer size, factorial argument, rounding
digits) and the walk checks a deadline between operations, so no input can hang the caller or
exhaust memory.

The result text is Python's ``repr`` of the number, as in the MOSS data: ``"5^3"`` gives
``'125'``, ``"20/2"`` gives ``'10.0'``; anything that cannot be computed gives ``No result.``.
"""

from __future__ import annotations

import ast
import math
import time
import unicodedata
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from moss_agent.errors import ToolError

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

__all__ = [
    "CalculateInput",
    "CalculationError",
    "calculate",
    "calculator_tool",
    "evaluate_expression",
]

NO_RESULT = "No result."
DEFAULT_TIMEOUT_S = 2.0
MAX_INPUT_CHARS = 2000
MAX_NESTING = 50
"""Deepest bracket nesting accepted (checked before parsing: the parser itself can overflow)."""
MAX_NODES = 2000
MAX_DEPTH = 200
MAX_INT_BITS = 13_000
"""About 3900 decimal digits: below Python's int-to-str limit, so every result can be printed."""
MAX_FACTORIAL = 1000
MAX_ROUND_DIGITS = 100

Number = int | float


class CalculationError(ToolError):
    """The expression could not be computed (unreadable, not allowed, out of bounds, too slow)."""


def _log(x: Number, base: Number | None = None) -> float:
    return math.log(x) if base is None else math.log(x, base)


def _factorial(n: Number) -> int:
    if isinstance(n, float) and n.is_integer():
        n = int(n)
    if not isinstance(n, int) or not 0 <= n <= MAX_FACTORIAL:
        raise CalculationError(f"factorial needs an integer from 0 to {MAX_FACTORIAL}")
    return math.factorial(n)


def _round(x: Number, ndigits: Number | None = None) -> Number:
    if ndigits is None:
        return round(x)
    if not isinstance(ndigits, int) or abs(ndigits) > MAX_ROUND_DIGITS:
        raise CalculationError(f"round needs an integer number of digits up to {MAX_ROUND_DIGITS}")
    return round(x, ndigits)


def _power(base: Number, exponent: Number) -> Number:
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
        # Refuse before computing: 9**9**9 would otherwise run for minutes.
        if exponent > MAX_INT_BITS or base.bit_length() * exponent > MAX_INT_BITS + exponent:
            raise CalculationError("the power is too large")
    return base**exponent


def _multiply(left: Number, right: Number) -> Number:
    if isinstance(left, int) and isinstance(right, int):
        if left.bit_length() + right.bit_length() > MAX_INT_BITS + 1:
            raise CalculationError("the product is too large")
    return left * right


_FUNCTIONS: dict[str, tuple[Callable[..., Number], int, int]] = {
    # name: (function, fewest arguments, most arguments)
    "sqrt": (math.sqrt, 1, 1),
    "sin": (math.sin, 1, 1),
    "cos": (math.cos, 1, 1),
    "tan": (math.tan, 1, 1),
    "asin": (math.asin, 1, 1),
    "acos": (math.acos, 1, 1),
    "atan": (math.atan, 1, 1),
    "log": (_log, 1, 2),
    "ln": (math.log, 1, 1),
    "log10": (math.log10, 1, 1),
    "log2": (math.log2, 1, 1),
    "exp": (math.exp, 1, 1),
    "abs": (abs, 1, 1),
    "ceil": (math.ceil, 1, 1),
    "floor": (math.floor, 1, 1),
    "pow": (_power, 2, 2),
    "round": (_round, 1, 2),
    "factorial": (_factorial, 1, 1),
}
_CONSTANTS: dict[str, Number] = {"pi": math.pi, "e": math.e}
_BINARY_OPERATORS: dict[type[ast.operator], Callable[[Any, Any], Number]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: _multiply,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
    ast.Pow: _power,
}
# Applied before NFKC normalisation (which would turn "²" into a plain "2") and after it.
_SUPERSCRIPTS = str.maketrans({"²": "**2", "³": "**3"})
_SYMBOLS = str.maketrans({"×": "*", "÷": "/", "−": "-", "·": "*", "^": "**", "π": "pi"})


def _normalise(expression: str) -> str:
    return unicodedata.normalize("NFKC", expression.translate(_SUPERSCRIPTS)).translate(_SYMBOLS).strip()


def _check_nesting(text: str) -> None:
    depth = 0
    for char in text:
        if char in "([{":
            depth += 1
            if depth > MAX_NESTING:
                raise CalculationError("the expression is nested too deeply")
        elif char in ")]}":
            depth -= 1


def _check_tree_size(tree: ast.AST) -> None:
    stack = [(tree, 1)]
    count = 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES or depth > MAX_DEPTH:
            raise CalculationError("the expression is too large")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def _checked(value: object) -> Number:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CalculationError("the result is not a real number")
    if isinstance(value, float) and not math.isfinite(value):
        raise CalculationError("the result is not finite")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise CalculationError("the result is too large")
    return value


class _Evaluator:
    """Walks an allow-listed tree; everything not handled explicitly is refused."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.names: dict[str, Number] = {}

    def run(self, module: ast.Module) -> Number:
        *assignments, last = module.body
        for statement in assignments:
            if not (
                isinstance(statement, ast.Assign)
                and len(statement.targets) == 1
                and isinstance(target := statement.targets[0], ast.Name)
                and target.id not in _FUNCTIONS
                and target.id not in _CONSTANTS
            ):
                raise CalculationError("only `name = value;` may come before the expression")
            self.names[target.id] = self.eval(statement.value)
        if not isinstance(last, ast.Expr):
            raise CalculationError("the last statement must be an expression")
        return self.eval(last.value)

    def eval(self, node: ast.expr) -> Number:
        if time.monotonic() > self.deadline:
            raise CalculationError("the calculation took too long")
        if isinstance(node, ast.Constant):
            return _checked(node.value)
        if isinstance(node, ast.Name):
            if node.id in self.names:
                return self.names[node.id]
            if node.id in _CONSTANTS:
                return _CONSTANTS[node.id]
            raise CalculationError(f"unknown name {node.id!r}")
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
            operand = self.eval(node.operand)
            return _checked(-operand if isinstance(node.op, ast.USub) else +operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY_OPERATORS:
            left, right = self.eval(node.left), self.eval(node.right)
            return _checked(_BINARY_OPERATORS[type(node.op)](left, right))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            function, fewest, most = _FUNCTIONS.get(node.func.id, (None, 0, 0))
            if function is None or not fewest <= len(node.args) <= most:
                raise CalculationError(f"{node.func.id!r} cannot be called like this")
            if any(isinstance(arg, ast.Starred) for arg in node.args):
                raise CalculationError("starred arguments are not allowed")
            return _checked(function(*(self.eval(arg) for arg in node.args)))
        raise CalculationError(f"{type(node).__name__} is not allowed in a calculation")


def evaluate_expression(expression: str, *, timeout: float = DEFAULT_TIMEOUT_S) -> Number:
    """Compute a calculator expression safely.

    Args:
        expression: Model-written text such as ``"12*sqrt(3)"`` or ``"p=3;p^2"``.
        timeout: Seconds the evaluation may take.

    Returns:
        The value: an ``int`` where every step is an integer operation, else a ``float``.

    Raises:
        CalculationError: The expression is unreadable, not allowed, out of bounds or too slow.
    """
    deadline = time.monotonic() + timeout
    if len(expression) > MAX_INPUT_CHARS:
        raise CalculationError(f"the expression is longer than {MAX_INPUT_CHARS} characters")
    text = _normalise(expression)
    if len(text) > MAX_INPUT_CHARS or not text:
        raise CalculationError("the expression is empty or too long")
    _check_nesting(text)
    try:
        with warnings.catch_warnings():  # "2x" warns "invalid decimal literal" before failing
            warnings.simplefilter("ignore", SyntaxWarning)
            tree = ast.parse(text, mode="exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        raise CalculationError(f"unreadable expression: {error}") from None
    if not tree.body:
        raise CalculationError("the expression is empty")
    _check_tree_size(tree)
    try:
        return _Evaluator(deadline).run(tree)
    except CalculationError:
        raise
    except (ArithmeticError, ValueError, TypeError, RecursionError, MemoryError) as error:
        raise CalculationError(f"cannot compute: {error}") from None


def calculate(expression: str, *, timeout: float = DEFAULT_TIMEOUT_S) -> str:
    """Compute an expression and return the MOSS Results text.

    Args:
        expression: Model-written text such as ``"400*(1-0.45)"``.
        timeout: Seconds the evaluation may take.

    Returns:
        The ``repr`` of the value (``'125'``, ``'220.00000000000003'``), or ``"No result."``.
    """
    try:
        return repr(evaluate_expression(expression, timeout=timeout))
    except CalculationError:
        return NO_RESULT


class CalculateInput(BaseModel):
    """Arguments of the Calculate tool."""

    expression: str = Field(
        description="An arithmetic expression, e.g. '(25/60)*100' or 'sqrt(2^2+3^2)'. "
        "Supports + - * / // % ^ **, sqrt, sin, cos, tan, log, ln, exp, abs, round, "
        "factorial, pi, e, and 'name=value;' assignments before the final expression."
    )


def calculator_tool() -> BaseTool:
    """Build the LangChain tool for the MOSS Calculator plugin.

    Returns:
        A ``StructuredTool`` named ``"Calculate"`` that returns the Results text.
    """
    from langchain_core.tools import StructuredTool

    return StructuredTool.from_function(
        func=calculate,
        name="Calculate",
        description="Evaluate an arithmetic expression exactly like a calculator and return the "
        "number, or 'No result.' if it cannot be computed. Use it for any arithmetic.",
        args_schema=CalculateInput,
    )
