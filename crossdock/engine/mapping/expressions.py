"""Compiles route-language expressions into Python code, once, when a route or map is loaded.

An expression never runs Python from the route file: the only operations are the fixed operators
below, paths into the message, table lookups and the functions of
:mod:`crossdock.engine.mapping.functions`. :class:`ExprWriter` writes each expression as Python
statements into generated code (see :mod:`crossdock.engine.mapping.codegen` for how text from the
route file is kept data): a map becomes one function that reads its paths, calls its functions and
does its Decimal arithmetic inline, with no call per syntax node and no tree walking per message.
What the writer knows of a value's type (a literal, a ``decimal()`` result, a comparison) lets it
leave out checks, never change a result. :func:`compile_expr` compiles one expression on its own,
for route steps.

Values follow JSON with exact numbers: text (str), numbers (Decimal; int for whole numbers read from
JSON and for counts such as ``loop.index``), true/false, null (None), lists and objects (dict).

Missing values. null, empty text and an empty list are *missing*; X12 and CSV send empty fields.

- Arithmetic (``+ - * /``) with a missing operand is missing. Numbers and numeric text ("12.50",
  " 3 ", "1e3") are numbers; anything else is an error (``'*' needs numbers, got text 'abc'``), and
  so is division by zero. ``+`` does not join text: use ``concat()``. Results are Decimals: exact for
  ``+ - *`` (3 x "4.10" is 12.30), to 28 significant digits for ``/`` (use ``round()`` for money).
- ``x default y`` is ``x`` when it is present, otherwise ``y`` (evaluated only then).
- ``x is missing`` / ``x is present`` test for a missing value.
- A function given a missing main argument returns null (see the function library).

Comparisons.

- ``=`` and ``!=``: numbers and numeric text compare as numbers (``10 = "10.0"``); two texts compare
  as text, exactly (``"DAL" = "dal"`` and ``"10" = "10.0"`` are false); true and false equal only
  themselves; null equals only null (use ``is missing`` to test for a missing value, which also
  covers empty text); lists and objects equal when all their items do.
- ``< <= > >=``: false when either side is missing. Numbers and numeric text compare as numbers,
  also when both sides are text ("9" < "10"); other text compares as text, so ISO dates order
  correctly. Any other pair (a number and non-numeric text, true/false, a list) is an error.
- ``value in (a, b, c)``: whether the value equals (as ``=``) one of the options.

Conditions (``and``, ``or``, ``not``, ``where``, ``when``, ``if()``) are false for false and for
missing values, true for everything else, including 0 and the text "false". ``and`` and ``or``
give true or false and evaluate their right side only when needed.

Paths.

- ``a.b.c`` reads field ``b`` of object ``a``, and so on. When a step meets a list, the step is
  applied to each element and the results are flattened into one list, skipping elements that lack
  the field (``line_items.price`` is the list of all prices). A missing field, or a step into text
  or a number, is missing.
- Inside ``for each`` and ``object`` blocks, paths start at the current element; elsewhere at the
  document. JSONPath (``$.line_items[*].sku``, jsonpath-ng syntax) always starts at the document.
  A JSONPath that can match several values (``*``, ``..``, a filter or a slice) gives a list; one
  that names a single value gives that value; no match is missing.
- Qualifiers after a step: ``items[0]`` is the first element of the list at that point (counting
  from 0; a single value counts as a list of one; past the end is missing); ``items["unit price"]``
  reads a field whose name is not a plain word; any other expression is a condition,
  ``items[unit = "EA"]``, evaluated with each element as the current value: on a list it keeps the
  elements for which it holds (a list, possibly empty), on a single value it gives the value or
  missing. Take one value of a list with ``first()``, ``last()`` or an index:
  ``addresses[kind = "ship"].city[0]``.
- Reserved first names: ``out.x`` reads what the innermost ``object`` or ``for each`` element (or
  the map itself, at the top) has already built; ``loop.index`` is the 1-based position of the
  element being built by the innermost ``for each`` (in its ``where`` condition: the position in
  the list being read) and ``loop.count`` the number of elements built (in ``where``: read); both
  are missing outside a ``for each``. ``message.x`` reads the message (``message.correlation_id``,
  ``message.headers``) and is missing in ``crossdock test``. A table's name followed by ``[key]``
  is a lookup (below). These names shadow document fields of the same name; in route steps (``keep
  only when``, ``skip duplicates by``, ``when``) ``out`` is an ordinary field name.

Tables. ``units[key]`` gives the value the table maps ``key`` to, or missing when the key is
missing or not in the table (so ``units[code] default "each"`` works). Keys match exactly (case
matters); a number also matches the key written as its text (``1`` finds ``"1"``). A list or an
object is not a key (an error).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, DecimalException, InvalidOperation, Overflow
from typing import Any, Protocol

from jsonpath_ng.ext import parse as parse_jsonpath

from crossdock.dsl import ast
from crossdock.dsl.diagnostics import DiagnosticBag, did_you_mean
from crossdock.engine.mapping.codegen import Source, py_str
from crossdock.engine.mapping.functions import FUNCTIONS, FunctionContext, FunctionError, FunctionSpec

Getter = Callable[["Scope"], Any]

# Path roots with a meaning of their own; everything else is a path into the current value.
OUT_ROOT = "out"
LOOP_ROOT = "loop"
MESSAGE_ROOT = "message"

# The types whose empty value counts as missing (besides None), for the inlined `is_missing` tests:
# `not value and type(value) in _EMPTY_TYPES` is cheaper than comparing with "" and [].
_EMPTY_TYPES = (str, list)

# Numeric text, as the `decimal()` function reads it: Decimal() alone would also take "1_000", "NaN"
# and "Infinity", which documents never mean as numbers.
_NUMBER_TEXT = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


class EvaluationError(Exception):
    """An expression could not be evaluated; the caller attaches the map line or route step."""


@dataclass(slots=True)
class Scope:
    """What an expression sees: the document, the current element, the output being built."""

    root: Any
    current: Any
    out: dict[str, Any]
    functions: FunctionContext
    loop_index: int | None = None
    loop_count: int | None = None
    message: Mapping[str, Any] | None = None


class PathCompiler(Protocol):
    """Compiles a path for one kind of source document (JSON-like values, X12 trees, XML)."""

    def compile_path(self, path: ast.Path, env: CompileEnv) -> Getter | None:
        """A getter, or None after reporting a diagnostic in `env.bag`."""
        ...


@dataclass
class CompileEnv:
    """What compiling needs: tables by name, the path compiler of the source, where to report."""

    bag: DiagnosticBag
    tables: Mapping[str, Mapping[Any, Any]] = field(default_factory=dict)
    paths: PathCompiler | None = None
    allow_message: bool = False
    allow_out: bool = True


def is_missing(value: Any) -> bool:
    """None, an empty string and an empty list count as missing (X12 sends empty elements)."""
    return value is None or (not value and type(value) in _EMPTY_TYPES)


def to_number(value: Any) -> Decimal | None:
    """A Decimal for numbers and numeric text; None when it is not a number."""
    kind = type(value)
    if kind is Decimal:
        return value if value.is_finite() else None
    if kind is int:
        return Decimal(value)
    if isinstance(value, str):  # str subclasses too, such as a canonical Unit
        return number_text(value)
    return None


def number_text(text: str) -> Decimal | None:
    """`text` as a Decimal when it is numeric text as `decimal()` reads it ("12.50", " 3 "), else None."""
    # Decimal() is the fast way in, but it also reads "1_000", "NaN", "Infinity" and non-ASCII
    # digits, which documents never mean as numbers: what it accepts is kept only without those.
    try:
        number = Decimal(text)
    except InvalidOperation:
        number = None
    if number is not None and number.is_finite() and text.isascii() and "_" not in text:
        return number
    stripped = text.strip()  # the rule itself, for the rare text the fast way refused
    return Decimal(stripped) if _NUMBER_TEXT.fullmatch(stripped) else None


def describe(value: Any) -> str:
    """A value as error messages show it: `text 'abc'`, `the number 5`, `a list`."""
    if isinstance(value, str):
        return f"text {value!r}"
    if value is None:
        return "a missing value"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return f"the number {value:f}"
    if isinstance(value, int):
        return f"the number {value}"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return f"a value of type {type(value).__name__}"


def _numbers(op: str, left: Any, right: Any) -> tuple[Decimal, Decimal]:
    a, b = to_number(left), to_number(right)
    if a is None or b is None:
        bad = left if a is None else right
        hint = "; use concat() to join text" if op == "+" and isinstance(bad, str) else ""
        raise EvaluationError(f"'{op}' needs numbers, got {describe(bad)}{hint}")
    return a, b


def _add(left: Any, right: Any) -> Any:
    if is_missing(left) or is_missing(right):
        return None
    a, b = _numbers("+", left, right)
    return a + b


def _subtract(left: Any, right: Any) -> Any:
    if is_missing(left) or is_missing(right):
        return None
    a, b = _numbers("-", left, right)
    return a - b


def _multiply(left: Any, right: Any) -> Any:
    if is_missing(left) or is_missing(right):
        return None
    a, b = _numbers("*", left, right)
    return a * b


def _divide(left: Any, right: Any) -> Any:
    if is_missing(left) or is_missing(right):
        return None
    a, b = _numbers("/", left, right)
    if not b:
        raise EvaluationError(f"division by zero ({a:f} / {b:f})")
    return a / b


def _comparable(left: Any, right: Any) -> tuple[Any, Any] | None:
    """The pair as numbers, or as text when both are text and not both numeric; None otherwise."""
    a, b = to_number(left), to_number(right)
    if a is not None and b is not None:
        return a, b
    if isinstance(left, str) and isinstance(right, str):
        return left, right
    return None


def values_equal(left: Any, right: Any) -> bool:
    """Equality as analysts expect it: 10 = "10.0" is true, "DAL" = "dal" is not."""
    if left is None or right is None:
        return left is right
    if isinstance(left, str) and isinstance(right, str):
        return left == right
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(values_equal(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(values_equal(left[k], right[k]) for k in left)
    a, b = to_number(left), to_number(right)
    if a is not None and b is not None:
        return a == b
    return False


def _order(op: str, test: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(left: Any, right: Any) -> bool:
        if is_missing(left) or is_missing(right):
            return False
        pair = _comparable(left, right)
        if pair is None:
            raise EvaluationError(f"cannot compare {describe(left)} with {describe(right)} using '{op}'")
        return test(*pair)

    return compare


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": _order("<", lambda a, b: a < b),
    "<=": _order("<=", lambda a, b: a <= b),
    ">": _order(">", lambda a, b: a > b),
    ">=": _order(">=", lambda a, b: a >= b),
}


def truthy(value: Any) -> bool:
    """Conditions: missing and false are false; everything else is true."""
    if value is None or value is False:
        return False
    return bool(value) or type(value) not in _EMPTY_TYPES


def step(value: Any, name: str) -> Any:
    """Field `name` of an object; of each element of a list, flattened (see Paths above)."""
    if isinstance(value, dict):
        return value.get(name)
    if isinstance(value, list):
        out: list[Any] = []
        for item in value:
            got = item.get(name) if type(item) is dict else step(item, name)
            if got is None:
                continue
            if isinstance(got, list):
                out.extend(got)
            else:
                out.append(got)
        return out
    return None


# ---- helpers of generated code -------------------------------------------------------------------


def decimal_error(op: str, a: Any, b: Any, error: DecimalException) -> EvaluationError:
    """The error for Decimal arithmetic that failed (an overflow, most likely)."""
    reason = "the result is too large" if isinstance(error, Overflow) else "not defined for these numbers"
    return EvaluationError(f"cannot compute {a} {op} {b}: {reason}")


def negate(value: Any) -> Decimal | None:
    """`-value`: missing stays missing; anything but a number is an error."""
    if is_missing(value):
        return None
    number = to_number(value)
    if number is None:
        raise EvaluationError(f"'-' needs a number, got {describe(value)}")
    return -number


def table_lookup(table: Mapping[Any, Any], name: str, key: Any) -> Any:
    """`name[key]` for a key that is not plain text (text is looked up inline)."""
    if key is None:
        return None
    if isinstance(key, list | dict):
        raise EvaluationError(f"table '{name}' is looked up by one value, got {describe(key)}")
    found = table.get(key)
    if found is None and not isinstance(key, bool):
        # a number read from JSON or computed also finds the key written as text
        found = table.get(format(key, "f") if isinstance(key, Decimal) else str(key))
    return found


def at_index(value: Any, index: int) -> Any:
    """`value[index]`: an element of a list, or a single value as a list of one; past the end is missing."""
    if isinstance(value, list):
        return value[index] if index < len(value) else None
    return value if index == 0 else None


def find_json(compiled: Any, root: Any, multi: bool) -> Any:
    """A JSONPath's matches: a list when it can match several values, else the value; none is missing."""
    matches = [match.value for match in compiled.find(root)]
    if not matches:
        return None
    return matches if multi else matches[0]


def function_failed(name: str, error: FunctionError) -> EvaluationError:
    """A function's error as the map reports it, with the function's name."""
    return EvaluationError(f"{name}(): {error.message}")


_DECIMAL = FUNCTIONS["decimal"].impl
_SUM = FUNCTIONS["sum"].impl


def to_decimal(value: Any) -> Decimal | None:
    """`decimal(value)` for a value that is not a Decimal (a Decimal is itself, inline): an int and
    numeric text convert directly; everything else goes to the library function, which refuses or
    converts it as documented."""
    kind = type(value)
    if kind is int:
        return Decimal(value)
    if kind is str:
        number = number_text(value)
        if number is not None:
            return number
    return _DECIMAL(value)  # type: ignore[no-any-return]


def sum_decimals(value: Any) -> Decimal | None:
    """`sum(list)`: a list of Decimals (amounts built by the map) adds up directly."""
    if type(value) is list:
        total = Decimal(0)
        for item in value:
            if type(item) is not Decimal:
                break
            total += item
        else:
            return total
    return _SUM(value)  # type: ignore[no-any-return]


RUNTIME: dict[str, Any] = {
    "_Decimal": Decimal,
    "_DecimalException": DecimalException,
    "_FunctionError": FunctionError,
    "_EMPTY": _EMPTY_TYPES,
    "_Scope": Scope,
    "_step": step,
    "_equal": values_equal,
    "_lt": _COMPARE["<"],
    "_le": _COMPARE["<="],
    "_gt": _COMPARE[">"],
    "_ge": _COMPARE[">="],
    "_add": _add,
    "_subtract": _subtract,
    "_multiply": _multiply,
    "_divide": _divide,
    "_negate": negate,
    "_decimal_error": decimal_error,
    "_lookup": table_lookup,
    "_at_index": at_index,
    "_find_json": find_json,
    "_function_failed": function_failed,
    "_to_decimal": to_decimal,
    "_sum": sum_decimals,
}
"""The helpers generated code calls, under the names it calls them by."""

_ORDER_HELPERS = {"<": "_lt", "<=": "_le", ">": "_gt", ">=": "_ge"}
_ARITH_HELPERS = {"+": "_add", "-": "_subtract", "*": "_multiply", "/": "_divide"}


# ---- writing expressions as Python ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Value:
    """An expression written into generated code. `code` is a local name or a literal, so it can be
    repeated at no cost; `type` and `optional` are what is known of it when the code is written."""

    code: str
    type: type | None = None
    """Every present value is exactly of this type (str, Decimal, int, bool, list, dict); None: any type."""
    optional: bool = True
    """False when the value is never missing (never None, empty text or an empty list)."""


NONE = Value("None")


@dataclass(frozen=True, slots=True)
class Frame:
    """Where generated code finds what paths read: names of locals of the generated function."""

    cur: str
    """The current value: the document, or the element of the `for each` or `object` being built."""
    cur_is_dict: str
    """`type(cur) is dict`, computed once per current value (most paths start with a field of it)."""
    out: str
    """The object being built, which `out.` reads."""
    index: Value
    """loop.index (NONE outside a `for each`)."""
    count: Value
    """loop.count."""


def frame_parameters(frame: Frame) -> str:
    """The parameters of a local function that reads what `frame` reads, each bound to the value the
    outer local has when the function is defined (`cur=cur`): a local captured instead would become a
    cell, which is slower to read in the whole outer function."""
    names = ["root", "ctx", "msg", frame.cur, frame.cur_is_dict, frame.out, frame.index.code, frame.count.code]
    return ", ".join(f"{local}={local}" for local in dict.fromkeys(names) if local != "None")


def missing_test(value: Value) -> str:
    """A Python expression, true or false, that holds when `value` is missing."""
    code = value.code
    if code == "None":
        return "True"
    if not value.optional:
        return "False"
    if value.type in _EMPTY_TYPES:
        return f"not {code}"
    if value.type is not None:
        return f"{code} is None"
    return f"({code} is None or (not {code} and type({code}) in _EMPTY))"


def present_test(value: Value) -> str:
    """A Python condition (for `if`) that holds when `value` is present."""
    code = value.code
    if code == "None":
        return "False"
    if not value.optional:
        return "True"
    if value.type in _EMPTY_TYPES:
        return code
    if value.type is not None:
        return f"{code} is not None"
    return f"({code} is not None and ({code} or type({code}) not in _EMPTY))"


def false_test(value: Value) -> str:
    """A Python expression, true or false, that holds when `value` fails as a condition."""
    code = value.code
    if code in ("None", "False"):
        return "True"
    if code == "True":
        return "False"
    if value.type is bool or value.type in _EMPTY_TYPES:
        return f"not {code}"
    if value.type is not None:  # a number holds, 0 too; so does any object
        return f"{code} is None"
    return f"({code} is None or {code} is False or (not {code} and type({code}) in _EMPTY))"


def holds(value: Value) -> str:
    """A Python condition (for `if`) that holds when `value` holds as a condition (see `truthy`)."""
    code = value.code
    if code in ("None", "False", "True"):
        return "True" if code == "True" else "False"
    if value.type is bool or value.type in _EMPTY_TYPES:
        return code
    if value.type is not None:
        return f"{code} is not None"
    return f"({code} is not None and {code} is not False and ({code} or type({code}) not in _EMPTY))"


def _as_bool(value: Value) -> str:
    """`value` as a condition, as True or False."""
    if value.type is bool and not value.optional:
        return value.code
    return f"not {false_test(value)}"


class ExprWriter:
    """Writes expressions into a :class:`Source` as statements; each gives the :class:`Value` it made.

    Problems (an unknown function, a bad JSONPath) are reported in `env.bag` and the expression is
    written as null, so that lint goes on and reports everything in one pass.
    """

    def __init__(self, source: Source, env: CompileEnv) -> None:
        self.source = source
        self.env = env
        # One bound function per function and literals, so that equal calls are the same code.
        self._bound: dict[tuple[str, tuple[tuple[str, str], ...]], Callable[[Any], Any] | None] = {}

    def emit(self, node: ast.Expr, frame: Frame) -> Value:
        """Write the statements that compute `node` in `frame`; returns where the result is."""
        writer = _WRITERS.get(type(node))
        if writer is None:  # the transformer builds only the node types below
            raise TypeError(f"not an expression: {node!r}")
        return writer(self, node, frame)

    def _set(self, code: str, kind: type | None = None, optional: bool = True, *, pure: bool = False) -> Value:
        """A new local holding `code`. A `pure` one (the same value every time it runs here: no
        clock, no uuid, nothing read from the output being built) is computed once."""
        if pure:
            known = self.source.recall(code)
            if known is not None:
                return known  # type: ignore[no-any-return]
        value = Value(self.source.name("v"), kind, optional)
        self.source.line(f"{value.code} = {code}")
        if pure:
            self.source.remember(code, value)
        return value

    # ---- literals, operators --------------------------------------------------------------------

    def _literal(self, node: ast.Literal, frame: Frame) -> Value:
        value = node.value
        if value is None:
            return NONE
        if type(value) is bool:
            return Value(repr(value), bool, False)
        if type(value) is str:
            return Value(py_str(value), str, value == "")
        if type(value) is Decimal:
            return Value(self.source.hoist(value, "dec"), Decimal, False)
        raise TypeError(f"not a literal: {value!r}")

    def _binary(self, node: ast.Binary, frame: Frame) -> Value:
        op = node.op
        if op == "default":
            return self._default(node, frame)
        if op in ("and", "or"):
            return self._logical(node, frame)
        left = self.emit(node.left, frame)
        right = self.emit(node.right, frame)
        if op in _ARITH_HELPERS:
            return self._arithmetic(op, left, right)
        if op == "=":
            return self._set(_equal(left, right), bool, False, pure=True)
        if op == "!=":
            return self._set(f"not {_equal(left, right)}", bool, False, pure=True)
        if op in _ORDER_HELPERS:
            return self._set(_order(op, left, right), bool, False, pure=True)
        raise TypeError(f"unknown operator {op!r}")

    def _arithmetic(self, op: str, left: Value, right: Value) -> Value:
        if NONE in (left, right):
            return NONE
        a, b = left.code, right.code
        decimals = left.type is Decimal and right.type is Decimal
        if op == "/":  # the checked path: division by zero has its own message
            code = f"_divide({a}, {b})"
        elif decimals:  # Decimal or missing on both sides: no type check needed
            missing = [f"{value.code} is None" for value in (left, right) if value.optional]
            code = f"None if {' or '.join(missing)} else {a} {op} {b}" if missing else f"{a} {op} {b}"
        else:  # Decimal with Decimal is the common case (money); every other pair takes the checked path
            checked = f"{_ARITH_HELPERS[op]}({a}, {b})"
            code = f"{a} {op} {b} if type({a}) is _Decimal and type({b}) is _Decimal else {checked}"
        known = self.source.recall(code)
        if known is not None:
            return known  # type: ignore[no-any-return]
        result = Value(self.source.name("v"), Decimal, not decimals or left.optional or right.optional)
        # Decimal itself raises only on overflow (and the like), which the error names.
        self.source.line("try:")
        with self.source.block("try"):
            self.source.line(f"{result.code} = {code}")
            self.source.remember(code, result)
        self.source.line("except _DecimalException as _exc:")
        with self.source.block():
            self.source.line(f"raise _decimal_error({py_str(op)}, {a}, {b}, _exc) from None")
        return result

    def _logical(self, node: ast.Binary, frame: Frame) -> Value:
        """`and`/`or`: true or false; the right side is evaluated only when it decides."""
        result = self._set(_as_bool(self.emit(node.left, frame)), bool, False)
        self.source.line(f"if {result.code}:" if node.op == "and" else f"if not {result.code}:")
        with self.source.block():
            self.source.line(f"{result.code} = {_as_bool(self.emit(node.right, frame))}")
        return result

    def _default(self, node: ast.Binary, frame: Frame) -> Value:
        """`a default b default c`: the first present one, else the last; each evaluated only when needed."""
        chain: list[ast.Expr] = []
        rest: ast.Expr = node
        while isinstance(rest, ast.Binary) and rest.op == "default":  # right-associative: flattened,
            chain.append(rest.left)  # so that a long chain does not nest the generated code
            rest = rest.right
        chain.append(rest)
        first = self.emit(chain[0], frame)
        result = self._set(first.code)
        kind, optional = first.type, first.optional
        for fallback in chain[1:]:
            self.source.line(f"if {missing_test(Value(result.code, kind, optional))}:")
            with self.source.block():
                value = self.emit(fallback, frame)
                self.source.line(f"{result.code} = {value.code}")
            kind = kind if kind is value.type else None
            optional = optional and value.optional
        return Value(result.code, kind, optional)

    def _unary(self, node: ast.Unary, frame: Frame) -> Value:
        operand = self.emit(node.operand, frame)
        if node.op == "not":
            return self._set(false_test(operand), bool, False, pure=True)
        return self._set(f"_negate({operand.code})", Decimal, pure=True)

    def _in_list(self, node: ast.InList, frame: Frame) -> Value:
        # the value is evaluated once, not once per option: it may be a call such as uuid()
        value = self.emit(node.value, frame)
        first, *others = node.options
        result = self._set(_equal(value, self.emit(first, frame)), bool, False)
        for option in others:  # the options after a match are not evaluated
            self.source.line(f"if not {result.code}:")
            with self.source.block():
                self.source.line(f"{result.code} = {_equal(value, self.emit(option, frame))}")
        return result

    def _presence(self, node: ast.Presence, frame: Frame) -> Value:
        missing = missing_test(self.emit(node.value, frame))
        return self._set(f"not ({missing})" if node.present else missing, bool, False, pure=True)

    # ---- function calls -------------------------------------------------------------------------

    def _call(self, node: ast.Call, frame: Frame) -> Value:
        spec = FUNCTIONS.get(node.name)
        if spec is None:
            self.env.bag.error("NAME009", f"unknown function '{node.name}'", node.span,
                               did_you_mean(node.name, FUNCTIONS) or "see docs/functions.md for the function library")
            return NONE
        count = len(node.args)
        if count < spec.min_args or (spec.max_args is not None and count > spec.max_args):
            expected = (
                f"{spec.min_args}" if spec.min_args == spec.max_args
                else f"{spec.min_args} or more" if spec.max_args is None
                else f"{spec.min_args} to {spec.max_args}"
            )
            self.env.bag.error("MAP006", f"{node.name}() takes {expected} argument(s), got {count}", node.span,
                               f"for example: {spec.example}")
            return NONE
        if spec.lazy:
            return self._invoke(spec, spec.impl, [self._thunk(arg, frame) for arg in node.args])
        bound = self._bind(spec, node.args)
        if bound is not None:
            return self._invoke(spec, bound, [self.emit(node.args[0], frame).code])
        args = [self.emit(arg, frame) for arg in node.args]
        if spec.needs_context:
            return self._invoke(spec, spec.impl, ["ctx", *(arg.code for arg in args)])
        if count == 1:
            return self._call_one(spec, args[0])
        return self._invoke(spec, spec.impl, [arg.code for arg in args])

    def _call_one(self, spec: FunctionSpec, arg: Value) -> Value:
        """The most frequent one-argument calls, with the library function only for unusual values."""
        code = arg.code
        if spec.name == "decimal":
            if arg.type is Decimal:  # values here are finite: literals and arithmetic never make NaN
                return arg
            return self._invoke(spec, spec.impl, [], f"{code} if type({code}) is _Decimal else _to_decimal({code})")
        if spec.name in ("lower", "upper"):
            function = self.source.hoist(spec.impl, "fn")
            method = f"{code}.{spec.name}()"  # what the library function does with text
            return self._invoke(spec, spec.impl, [], f"{method} if type({code}) is str else {function}({code})")
        if spec.name == "sum":
            return self._invoke(spec, spec.impl, [], f"_sum({code})")
        return self._invoke(spec, spec.impl, [code])

    def _invoke(self, spec: FunctionSpec, function: Callable[..., Any], args: list[str], call: str = "") -> Value:
        """Call `function` with `args` (or write `call` instead), naming `spec` in its errors."""
        if not call:
            call = f"{self.source.hoist(function, 'fn')}({', '.join(args)})"
        pure = not (spec.lazy or spec.needs_context)  # the library's other functions depend on their arguments only
        known = self.source.recall(call) if pure else None
        if known is not None:
            return known  # type: ignore[no-any-return]
        result = Value(self.source.name("v"), spec.result_type)
        self.source.line("try:")
        with self.source.block("try"):
            self.source.line(f"{result.code} = {call}")
            if pure:
                self.source.remember(call, result)
        self.source.line("except _FunctionError as _exc:")
        with self.source.block():
            self.source.line(f"raise _function_failed({py_str(spec.name)}, _exc) from None")
        return result

    def _bind(self, spec: FunctionSpec, args: tuple[ast.Expr, ...]) -> Callable[[Any], Any] | None:
        """`spec` with its literal arguments after the first bound (see the functions module), or None."""
        if spec.bind is None or len(args) < 2 or not all(isinstance(arg, ast.Literal) for arg in args[1:]):
            return None
        literals = tuple(arg.value for arg in args[1:])  # type: ignore[union-attr]
        key = (spec.name, tuple((type(value).__name__, str(value)) for value in literals))
        if key not in self._bound:
            try:
                self._bound[key] = spec.bind(*literals)
            except FunctionError:
                self._bound[key] = None  # the plain call reports it when the map runs, as it always has
        return self._bound[key]

    def _thunk(self, node: ast.Expr, frame: Frame) -> str:
        """A local function computing `node`, for a lazy function (`if`), which calls it only if needed."""
        name = self.source.name("th")
        self.source.line(f"def {name}({frame_parameters(frame)}):")
        with self.source.block("function"):
            value = self.emit(node, frame)
            self.source.line(f"return {value.code}")
        return name

    # ---- paths ----------------------------------------------------------------------------------

    def _jsonpath(self, node: ast.JsonPath, frame: Frame) -> Value:
        try:
            compiled = parse_jsonpath(node.text)
        except Exception as error:  # jsonpath-ng raises its own errors and plain Exception
            self.env.bag.error("MAP010", f"invalid JSONPath {node.text!r}: {error}", node.span,
                               "see https://github.com/h2non/jsonpath-ng for the syntax")
            return NONE
        return self._set(f"_find_json({self.source.hoist(compiled, 'jp')}, root, {_is_multi(node.text)!r})", pure=True)

    def _path(self, node: ast.Path, frame: Frame) -> Value:
        env = self.env
        first, rest = node.steps[0], node.steps[1:]
        if first.name in env.tables and not rest and first.qualifier is not None:
            return self._lookup(first, frame)
        if first.name == OUT_ROOT and first.qualifier is None and env.allow_out:
            # what the output holds changes from one statement to the next: read it each time
            return self._steps(Value(frame.out, dict, False), rest, frame, pure=False)
        if first.name == LOOP_ROOT and len(rest) == 1 and first.qualifier is None:
            which = rest[0].name
            if which == "index":
                return frame.index
            if which == "count":
                return frame.count
            if which == "value":
                # the element itself, for lists of plain values (`for each po_numbers`)
                return Value(frame.cur) if frame.index is not NONE else NONE
            env.bag.error("MAP011", f"'loop.{which}' is not known", rest[0].span,
                          "use loop.index, loop.count or loop.value")
            return NONE
        if first.name == MESSAGE_ROOT and first.qualifier is None and env.allow_message:
            return self._steps(Value("msg"), rest, frame)
        if env.paths is not None:
            getter = env.paths.compile_path(node, env)
            if getter is None:
                return NONE
            scope = f"_Scope(root, {frame.cur}, {frame.out}, ctx, {frame.index.code}, {frame.count.code}, msg)"
            return self._set(f"{self.source.hoist(getter, 'path')}({scope})")
        return self._steps(Value(frame.cur), node.steps, frame, frame.cur_is_dict)

    def _steps(
        self,
        start: Value,
        steps: tuple[ast.PathStep, ...],
        frame: Frame,
        start_is_dict: str | None = None,
        *,
        pure: bool = True,
    ) -> Value:
        """The path `steps` from `start` (see Paths above): field by field, mapping over lists.

        `pure`: whether reading from `start` gives the same value each time (not so for the output).
        """
        value = start
        for position, part in enumerate(steps):
            key = py_str(part.name)
            source = value.code
            if position == 0 and start.type is dict and not start.optional:
                read = f"{source}.get({key})"
            else:
                is_dict = start_is_dict if position == 0 and start_is_dict else f"type({source}) is dict"
                read = f"{source}.get({key}) if {is_dict} else _step({source}, {key})"
            value = self._set(read, pure=pure or position > 0)
            if part.qualifier is not None:
                value = self._qualify(value, part.qualifier, frame)
        return value

    def _qualify(self, value: Value, node: ast.Expr, frame: Frame) -> Value:
        """`[..]` after a path step: a key, an index or a condition."""
        code = value.code
        if isinstance(node, ast.Literal) and isinstance(node.value, str):
            key = py_str(node.value)
            return self._set(f"{code}.get({key}) if type({code}) is dict else _step({code}, {key})", pure=True)
        if _is_index(node):
            number = node.value if isinstance(node, ast.Literal) else -node.operand.value  # type: ignore[union-attr]
            if number != number.to_integral_value() or number < 0:
                self.env.bag.error("MAP012", f"an index must be a whole number from 0, not {number}", node.span,
                                   "items[0] is the first item; last(...) gives the last one")
                return NONE
            return self._set(f"_at_index({code}, {int(number)!r})", pure=True)
        return self._filter(value, node, frame)

    def _filter(self, value: Value, condition: ast.Expr, frame: Frame) -> Value:
        """The elements of `value` for which `condition` holds, each element being the current value
        (a list stays a list, possibly empty; a single value is kept or becomes missing)."""
        source = self.source
        result, single, kept, item, item_is_dict = (source.name(prefix) for prefix in ("v", "s", "k", "c", "d"))
        source.line(f"{result} = {value.code}")
        source.line(f"if {result} is not None:")
        with source.block():
            source.line(f"{single} = not isinstance({result}, list)")
            source.line(f"{kept} = []")
            source.line(f"for {item} in ({result},) if {single} else {result}:")
            with source.block():
                source.line(f"{item_is_dict} = type({item}) is dict")
                inner = Frame(item, item_is_dict, frame.out, frame.index, frame.count)
                source.line(f"if {holds(self.emit(condition, inner))}:")
                with source.block():
                    source.line(f"{kept}.append({item})")
            source.line(f"{result} = ({kept}[0] if {kept} else None) if {single} else {kept}")
        return Value(result)

    def _lookup(self, step: ast.PathStep, frame: Frame) -> Value:
        """`table[key]` (see Tables above)."""
        assert step.qualifier is not None
        table = self.env.tables[step.name]
        key = self.emit(step.qualifier, frame).code
        name = self.source.hoist(table, "tab")
        text_values = all(type(value) is str for value in table.values())
        return self._set(f"{name}.get({key}) if type({key}) is str else _lookup({name}, {py_str(step.name)}, {key})",
                         str if text_values else None, pure=True)


def _equal(left: Value, right: Value) -> str:
    """A Python expression, true or false, for `left = right` (see Comparisons above)."""
    if left.type is str and not left.optional:
        left, right = right, left  # equality is symmetric: the known text goes right
    a, b = left.code, right.code
    if right.type is str and not right.optional:
        # text with text compares as text, exactly; other values take the general rule
        if left.type is str and not left.optional:
            return f"({a} == {b})"
        return f"({a} == {b} if type({a}) is str else _equal({a}, {b}))"
    if left.type is Decimal and right.type is Decimal and not left.optional and not right.optional:
        return f"({a} == {b})"
    return f"_equal({a}, {b})"


def _order(op: str, left: Value, right: Value) -> str:
    """A Python expression, true or false, for `left op right` with op one of < <= > >=."""
    if left.type is Decimal and right.type is Decimal:
        present = [f"{value.code} is not None" for value in (left, right) if value.optional]
        return "(" + " and ".join([*present, f"{left.code} {op} {right.code}"]) + ")"
    return f"{_ORDER_HELPERS[op]}({left.code}, {right.code})"


def _is_multi(text: str) -> bool:
    """Whether a JSONPath can match several values: a wildcard, a descent, a filter, a slice or a union."""
    return any(mark in text for mark in ("*", "..", "?", ":", ","))


def _is_index(node: ast.Expr) -> bool:
    """A number literal, or a negated one (`[-1]`, refused with a hint rather than read as a condition)."""
    if isinstance(node, ast.Unary) and node.op == "-":
        node = node.operand
    return isinstance(node, ast.Literal) and isinstance(node.value, Decimal)


_WRITERS: dict[type, Callable[[ExprWriter, Any, Frame], Value]] = {
    ast.Literal: ExprWriter._literal,
    ast.Binary: ExprWriter._binary,
    ast.Unary: ExprWriter._unary,
    ast.InList: ExprWriter._in_list,
    ast.Presence: ExprWriter._presence,
    ast.Call: ExprWriter._call,
    ast.JsonPath: ExprWriter._jsonpath,
    ast.Path: ExprWriter._path,
}


def compile_expr(node: ast.Expr, env: CompileEnv) -> Getter:
    """Compile an expression to a function of a :class:`Scope`; problems are reported in `env.bag`
    and compile to null."""
    source = Source(RUNTIME)
    frame = Frame("cur", "cur_is_dict", "out", Value("idx", int), Value("cnt", int))
    source.line("def _expression(scope):")
    with source.block("function"):
        source.line("root, cur, out, ctx = scope.root, scope.current, scope.out, scope.functions")
        source.line("idx, cnt, msg = scope.loop_index, scope.loop_count, scope.message")
        source.line("cur_is_dict = type(cur) is dict")
        value = ExprWriter(source, env).emit(node, frame)
        source.line(f"return {value.code}")
    return source.build("_expression", "<crossdock expression>")
