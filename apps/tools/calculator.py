"""A safe arithmetic evaluator: parses with `ast` and walks a whitelist. Never `eval`.

Accepted: int and float literals, + - * / // % ** and unary + -, parentheses, and the symbols for
times, divided-by and minus (U+00D7, U+00F7, U+2212). Everything else (names, calls, attributes,
subscripts, strings, comparisons, bit operations) is refused. Work is bounded before it is done:
the expression's length and nesting are capped before parsing, and every intermediate integer is
kept under MAX_RESULT_BITS, with the size of a power estimated from its operands before it is
computed; so `9**9**9` is refused at once.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable

MAX_LENGTH = 1000
MAX_DEPTH = 50  # parentheses
MAX_TREE_DEPTH = 200  # operators chained or nested (1+1+…+1 is a chain of that depth)
MAX_RESULT_BITS = 4096  # about 1233 decimal digits
Number = int | float


class CalculatorError(ValueError):
    """A sentence saying why the expression was refused."""


_BINARY: dict[type[ast.operator], Callable[[Number, Number], Number]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_SYMBOLS = str.maketrans({"\u00d7": "*", "\u00f7": "/", "\u2212": "-"})


def _nesting(expression: str) -> int:
    depth = deepest = 0
    for char in expression:
        if char in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]}":
            depth -= 1
    return deepest


def _bits(value: Number) -> float:
    if isinstance(value, int):
        return float(value.bit_length())
    return math.log2(abs(value)) if value else 0.0


def _check_size(value: Number) -> Number:
    if isinstance(value, int) and value.bit_length() > MAX_RESULT_BITS:
        raise CalculatorError(f"The result is too large (more than {MAX_RESULT_BITS} bits)")
    if isinstance(value, float) and not math.isfinite(value):
        raise CalculatorError("The result is too large to represent")
    return value


def _power(base: Number, exponent: Number) -> Number:
    if isinstance(base, int) and isinstance(exponent, int) and exponent >= 0:
        if abs(base) > 1 and exponent * math.log2(abs(base)) > MAX_RESULT_BITS:
            raise CalculatorError(f"The result is too large (more than {MAX_RESULT_BITS} bits)")
        return base**exponent
    if base == 0 and exponent < 0:
        raise CalculatorError("Division by zero")
    try:
        result = math.pow(float(base), float(exponent))
    except OverflowError:
        raise CalculatorError("The result is too large to represent") from None
    except ValueError:
        raise CalculatorError("The result is not a real number") from None
    return result


def _evaluate(node: ast.AST, depth: int) -> Number:
    if depth > MAX_TREE_DEPTH:
        raise CalculatorError(f"The expression chains or nests more than {MAX_TREE_DEPTH} operations")
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, depth + 1)
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CalculatorError("Only numbers are allowed")
        return _check_size(value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd | ast.USub):
        operand = _evaluate(node.operand, depth + 1)
        return operand if isinstance(node.op, ast.UAdd) else -operand
    if isinstance(node, ast.BinOp):
        left = _evaluate(node.left, depth + 1)
        right = _evaluate(node.right, depth + 1)
        if isinstance(node.op, ast.Pow):
            return _check_size(_power(left, right))
        function = _BINARY.get(type(node.op))
        if function is None:
            raise CalculatorError(f"The operator {type(node.op).__name__} is not allowed")
        if isinstance(node.op, ast.Mult) and _bits(left) + _bits(right) > MAX_RESULT_BITS + 1:
            raise CalculatorError(f"The result is too large (more than {MAX_RESULT_BITS} bits)")
        try:
            return _check_size(function(left, right))
        except ZeroDivisionError:
            raise CalculatorError("Division by zero") from None
        except OverflowError:
            raise CalculatorError("The result is too large to represent") from None
    raise CalculatorError(f"{type(node).__name__} is not allowed; only numbers and + - * / // % ** ( )")


def evaluate(expression: str) -> Number:
    """The value of an arithmetic expression, or CalculatorError saying why not."""
    if not isinstance(expression, str):
        raise CalculatorError("The expression must be a string")
    text = expression.translate(_SYMBOLS).strip()
    if not text:
        raise CalculatorError("The expression is empty")
    if len(text) > MAX_LENGTH:
        raise CalculatorError(f"The expression is longer than {MAX_LENGTH} characters")
    if _nesting(text) > MAX_DEPTH:
        raise CalculatorError(f"The expression is nested more than {MAX_DEPTH} levels deep")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        raise CalculatorError("The expression is not valid arithmetic") from None
    return _evaluate(tree, 0)
