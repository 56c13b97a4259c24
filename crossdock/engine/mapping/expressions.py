"""Compiles route-language expressions into Python closures, once, when a route or map is loaded.

An expression never runs Python from the route file: the only operations are the fixed operators
below, paths into the message, table lookups and the functions of
:mod:`crossdock.engine.mapping.functions`. Each AST node becomes one closure taking a :class:`Scope`,
so evaluating a map is plain function calls, with no tree walking per message. The closures are
specialised when they are built (a one-name path, a call with two arguments, Decimal arithmetic)
because a map runs for every message.

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
from crossdock.engine.mapping.functions import FUNCTIONS, FunctionContext, FunctionError

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

    def enter(self, current: Any, out: dict[str, Any], index: int | None = None, count: int | None = None) -> Scope:
        """A scope for a nested block: another current element and output, the same document."""
        return Scope(self.root, current, out, self.functions, index, count, self.message)


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


# The slow paths: any operand types. The compiled closures try Decimal with Decimal first.
_ARITH: dict[str, Callable[[Any, Any], Any]] = {"+": _add, "-": _subtract, "*": _multiply, "/": _divide}


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


def compile_expr(node: ast.Expr, env: CompileEnv) -> Getter:
    """Compile an expression; problems are reported in `env.bag` and compile to a getter of None."""
    builder = _BUILDERS.get(type(node))
    if builder is None:  # the transformer builds only the node types above
        raise TypeError(f"not an expression: {node!r}")
    return builder(node, env)


def _none(scope: Scope) -> None:
    return None


def _literal(node: ast.Literal, env: CompileEnv) -> Getter:
    value = node.value
    return lambda scope: value


def _binary(node: ast.Binary, env: CompileEnv) -> Getter:
    left = compile_expr(node.left, env)
    right = compile_expr(node.right, env)
    op = node.op
    if op in _ARITH:
        return _arithmetic(op, left, right)
    if op == "=":
        return lambda scope: values_equal(left(scope), right(scope))
    if op == "!=":
        return lambda scope: not values_equal(left(scope), right(scope))
    if op in _COMPARE:
        compare = _COMPARE[op]
        return lambda scope: compare(left(scope), right(scope))
    if op == "and":
        return lambda scope: truthy(left(scope)) and truthy(right(scope))
    if op == "or":
        return lambda scope: truthy(left(scope)) or truthy(right(scope))
    if op == "default":
        return _default(node, left, right)
    raise TypeError(f"unknown operator {op!r}")


def _arithmetic(op: str, left: Getter, right: Getter) -> Getter:
    slow = _ARITH[op]
    # Decimal with Decimal is the common case (money) and skips the checks; every other pair takes
    # the checked path. Decimal itself raises only on overflow, which the error names.
    if op == "+":

        def add(scope: Scope) -> Any:
            a, b = left(scope), right(scope)
            try:
                if type(a) is Decimal and type(b) is Decimal:
                    return a + b
                return slow(a, b)
            except DecimalException as error:
                raise _decimal_error(op, a, b, error) from None

        return add
    if op == "-":

        def subtract(scope: Scope) -> Any:
            a, b = left(scope), right(scope)
            try:
                if type(a) is Decimal and type(b) is Decimal:
                    return a - b
                return slow(a, b)
            except DecimalException as error:
                raise _decimal_error(op, a, b, error) from None

        return subtract
    if op == "*":

        def multiply(scope: Scope) -> Any:
            a, b = left(scope), right(scope)
            try:
                if type(a) is Decimal and type(b) is Decimal:
                    return a * b
                return slow(a, b)
            except DecimalException as error:
                raise _decimal_error(op, a, b, error) from None

        return multiply

    def divide(scope: Scope) -> Any:
        a, b = left(scope), right(scope)
        try:
            return slow(a, b)
        except DecimalException as error:
            raise _decimal_error(op, a, b, error) from None

    return divide


def _decimal_error(op: str, a: Any, b: Any, error: DecimalException) -> EvaluationError:
    reason = "the result is too large" if isinstance(error, Overflow) else "not defined for these numbers"
    return EvaluationError(f"cannot compute {a} {op} {b}: {reason}")


def _default(node: ast.Binary, left: Getter, right: Getter) -> Getter:
    if isinstance(node.right, ast.Literal):
        fallback = node.right.value

        def default_literal(scope: Scope) -> Any:
            value = left(scope)
            if value is None or (not value and type(value) in _EMPTY_TYPES):
                return fallback
            return value

        return default_literal

    def default(scope: Scope) -> Any:
        value = left(scope)
        if value is None or (not value and type(value) in _EMPTY_TYPES):
            return right(scope)
        return value

    return default


def _unary(node: ast.Unary, env: CompileEnv) -> Getter:
    operand = compile_expr(node.operand, env)
    if node.op == "not":
        return lambda scope: not truthy(operand(scope))

    def negate(scope: Scope) -> Any:
        value = operand(scope)
        if is_missing(value):
            return None
        number = to_number(value)
        if number is None:
            raise EvaluationError(f"'-' needs a number, got {describe(value)}")
        return -number

    return negate


def _in_list(node: ast.InList, env: CompileEnv) -> Getter:
    value = compile_expr(node.value, env)
    options = tuple(compile_expr(o, env) for o in node.options)

    def contained(scope: Scope) -> bool:
        # evaluated once, not once per option: it may be a call such as uuid() or upper(...)
        found = value(scope)
        return any(values_equal(found, option(scope)) for option in options)

    return contained


def _presence(node: ast.Presence, env: CompileEnv) -> Getter:
    value = compile_expr(node.value, env)
    if node.present:
        return lambda scope: not is_missing(value(scope))
    return lambda scope: is_missing(value(scope))


def _call(node: ast.Call, env: CompileEnv) -> Getter:
    spec = FUNCTIONS.get(node.name)
    if spec is None:
        env.bag.error("NAME009", f"unknown function '{node.name}'", node.span,
                      did_you_mean(node.name, FUNCTIONS) or "see docs/functions.md for the function library")
        return _none
    count = len(node.args)
    if count < spec.min_args or (spec.max_args is not None and count > spec.max_args):
        expected = (
            f"{spec.min_args}" if spec.min_args == spec.max_args
            else f"{spec.min_args} or more" if spec.max_args is None
            else f"{spec.min_args} to {spec.max_args}"
        )
        env.bag.error("MAP006", f"{node.name}() takes {expected} argument(s), got {count}", node.span,
                      f"for example: {spec.example}")
        return _none
    args = tuple(compile_expr(a, env) for a in node.args)
    impl = spec.impl
    name = node.name

    def fail(error: FunctionError) -> EvaluationError:
        return EvaluationError(f"{name}(): {error.message}")

    if spec.lazy:

        def call_lazy(scope: Scope) -> Any:
            try:
                return impl(*[_thunk(a, scope) for a in args])
            except FunctionError as error:
                raise fail(error) from None

        return call_lazy
    if spec.needs_context:

        def call_with_context(scope: Scope) -> Any:
            try:
                return impl(scope.functions, *[a(scope) for a in args])
            except FunctionError as error:
                raise fail(error) from None

        return call_with_context
    if count == 1:
        return _call_one(name, impl, args[0], current_field(node.args[0], env), fail)
    if count == 2 and isinstance(node.args[1], ast.Literal):
        first = args[0]
        constant = node.args[1].value  # a format or a separator, most of the time

        def call_with_constant(scope: Scope) -> Any:
            try:
                return impl(first(scope), constant)
            except FunctionError as error:
                raise fail(error) from None

        return call_with_constant
    if count == 2:
        first, second = args

        def call_two(scope: Scope) -> Any:
            try:
                return impl(first(scope), second(scope))
            except FunctionError as error:
                raise fail(error) from None

        return call_two
    if count == 3:
        first, second, third = args

        def call_three(scope: Scope) -> Any:
            try:
                return impl(first(scope), second(scope), third(scope))
            except FunctionError as error:
                raise fail(error) from None

        return call_three

    def call(scope: Scope) -> Any:
        try:
            return impl(*[a(scope) for a in args])
        except FunctionError as error:
            raise fail(error) from None

    return call


def _thunk(getter: Getter, scope: Scope) -> Callable[[], Any]:
    return lambda: getter(scope)


# The hottest one-argument functions get a shortcut for the argument types that need no checking;
# each gives exactly what the library's function gives, which still handles every other argument.
# `lower` and `upper` of text are the str methods.
_TEXT_METHODS: dict[str, Callable[[str], str]] = {"lower": str.lower, "upper": str.upper}


def _call_one(
    name: str,
    impl: Callable[..., Any],
    only: Getter,
    source: str | None,
    fail: Callable[[FunctionError], EvaluationError],
) -> Getter:
    if name == "decimal":
        return _call_decimal(impl, only, source, fail)
    if name == "sum":
        return _call_sum(impl, only, fail)
    method = _TEXT_METHODS.get(name)
    if method is not None:

        def call_text(scope: Scope) -> Any:
            value = only(scope)
            if type(value) is str:
                return method(value)
            try:
                return impl(value)
            except FunctionError as error:
                raise fail(error) from None

        return call_text

    def call_one(scope: Scope) -> Any:
        try:
            return impl(only(scope))
        except FunctionError as error:
            raise fail(error) from None

    return call_one


def _call_decimal(
    impl: Callable[..., Any], only: Getter, source: str | None, fail: Callable[[FunctionError], EvaluationError]
) -> Getter:
    """`decimal(x)`, the most frequent call of a map, with `x` read inline when it is one field
    (`source`, see :func:`current_field`): a Decimal is itself (values here are always finite: the
    JSON decoder, literals and arithmetic never make NaN or Infinity); an int and numeric text
    convert directly."""

    def call_decimal(scope: Scope) -> Any:
        if source is None:
            value = only(scope)
        else:
            value = scope.current
            value = value.get(source) if type(value) is dict else step(value, source)
        kind = type(value)
        if kind is Decimal:
            return value
        if kind is int:
            return Decimal(value)
        if kind is str:
            number = number_text(value)
            if number is not None:
                return number
        try:
            return impl(value)
        except FunctionError as error:
            raise fail(error) from None

    return call_decimal


def _call_sum(impl: Callable[..., Any], only: Getter, fail: Callable[[FunctionError], EvaluationError]) -> Getter:
    """`sum(list)`: a list of Decimals (amounts built by the map) adds up directly."""

    def call_sum(scope: Scope) -> Any:
        value = only(scope)
        if type(value) is list:
            total = Decimal(0)
            for item in value:
                if type(item) is not Decimal:
                    break
                total += item
            else:
                return total
        try:
            return impl(value)
        except FunctionError as error:
            raise fail(error) from None

    return call_sum


def _jsonpath(node: ast.JsonPath, env: CompileEnv) -> Getter:
    try:
        compiled = parse_jsonpath(node.text)
    except Exception as error:  # jsonpath-ng raises its own errors and plain Exception
        env.bag.error("MAP010", f"invalid JSONPath {node.text!r}: {error}", node.span,
                      "see https://github.com/h2non/jsonpath-ng for the syntax")
        return _none
    multi = _is_multi(node.text)

    def find(scope: Scope) -> Any:
        matches = [m.value for m in compiled.find(scope.root)]
        if not matches:
            return None
        return matches if multi else matches[0]

    return find


def _is_multi(text: str) -> bool:
    """Whether a JSONPath can match several values: a wildcard, a descent, a filter or a slice."""
    return "*" in text or ".." in text or "?" in text or ":" in text


def _path(node: ast.Path, env: CompileEnv) -> Getter:
    first = node.steps[0]
    rest = node.steps[1:]
    if first.name in env.tables and not rest and first.qualifier is not None:
        return _table_lookup(first, env)
    if first.name == OUT_ROOT and first.qualifier is None and env.allow_out:
        if len(rest) == 1 and rest[0].qualifier is None:
            key = rest[0].name
            return lambda scope: scope.out.get(key)
        out_path = dict_path(rest, env)
        return lambda scope: out_path(scope.out, scope)
    if first.name == LOOP_ROOT and len(rest) == 1 and first.qualifier is None:
        which = rest[0].name
        if which == "index":
            return lambda scope: scope.loop_index
        if which == "count":
            return lambda scope: scope.loop_count
        env.bag.error("MAP011", f"'loop.{which}' is not known", rest[0].span, "use loop.index or loop.count")
        return _none
    if first.name == MESSAGE_ROOT and first.qualifier is None and env.allow_message:
        message_path = dict_path(rest, env)
        return lambda scope: message_path(scope.message, scope)
    if env.paths is not None:
        compiled = env.paths.compile_path(node, env)
        return compiled or _none
    if len(node.steps) == 1 and first.qualifier is None:
        name = first.name

        def field(scope: Scope) -> Any:
            value = scope.current
            if type(value) is dict:
                return value.get(name)
            return step(value, name)

        return field
    getter = dict_path(node.steps, env)
    return lambda scope: getter(scope.current, scope)


def current_field(node: ast.Expr, env: CompileEnv) -> str | None:
    """The field name when `node` only reads one field of the current value (`sku`), else None.

    The map compiler reads such a field itself, with :func:`step`, instead of calling a getter: it
    is the most common right-hand side of a map.
    """
    if not isinstance(node, ast.Path) or len(node.steps) != 1 or env.paths is not None:
        return None
    (only,) = node.steps
    reserved = (only.name == OUT_ROOT and env.allow_out) or (only.name == MESSAGE_ROOT and env.allow_message)
    return only.name if only.qualifier is None and not reserved else None


def _table_lookup(step: ast.PathStep, env: CompileEnv) -> Getter:
    table = env.tables[step.name]
    assert step.qualifier is not None
    key = compile_expr(step.qualifier, env)
    name = step.name

    def lookup(scope: Scope) -> Any:
        value = key(scope)
        if type(value) is str:
            return table.get(value)
        if value is None:
            return None
        if isinstance(value, list | dict):
            raise EvaluationError(f"table '{name}' is looked up by one value, got {describe(value)}")
        found = table.get(value)
        if found is None and not isinstance(value, bool):
            # a number read from JSON or computed also finds the key written as text
            found = table.get(format(value, "f") if isinstance(value, Decimal) else str(value))
        return found

    return lookup


PathFn = Callable[[Any, Scope], Any]


def dict_path(steps: tuple[ast.PathStep, ...], env: CompileEnv) -> PathFn:
    """A function from a JSON-like value to the value at `steps`; lists on the way are mapped over.

    The scope is passed along for qualifiers, whose conditions are evaluated with each element as
    the current value.
    """
    if not steps:
        return lambda value, scope: value
    if all(s.qualifier is None for s in steps):
        names = tuple(s.name for s in steps)
        if len(names) == 1:
            (name,) = names

            def one(value: Any, scope: Scope) -> Any:
                if type(value) is dict:
                    return value.get(name)
                return step(value, name)

            return one

        def plain(value: Any, scope: Scope) -> Any:
            for name in names:
                if type(value) is dict:
                    value = value.get(name)
                elif value is None:
                    return None
                else:
                    value = step(value, name)
            return value

        return plain
    parts = tuple((s.name, qualifier(s.qualifier, env) if s.qualifier is not None else None) for s in steps)

    def walk(value: Any, scope: Scope) -> Any:
        for name, qualify in parts:
            value = step(value, name)
            if qualify is not None and value is not None:
                value = qualify(value, scope)
        return value

    return walk


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


def qualifier(node: ast.Expr, env: CompileEnv) -> PathFn:
    """`[..]` after a path step: a key (string literal), an index (number literal) or a condition."""
    if isinstance(node, ast.Literal) and isinstance(node.value, str):
        key = node.value
        return lambda value, scope: value.get(key) if isinstance(value, dict) else step(value, key)
    if _is_index(node):
        number = node.value if isinstance(node, ast.Literal) else -node.operand.value  # type: ignore[union-attr]
        if number != number.to_integral_value() or number < 0:
            env.bag.error("MAP012", f"an index must be a whole number from 0, not {number}", node.span,
                          "items[0] is the first item; last(...) gives the last one")
            return lambda value, scope: None
        index = int(number)

        def at(value: Any, scope: Scope) -> Any:
            if isinstance(value, list):
                return value[index] if index < len(value) else None
            return value if index == 0 else None

        return at
    condition = compile_expr(node, env)

    def keep(value: Any, scope: Scope) -> Any:
        inner = scope.enter(None, scope.out, scope.loop_index, scope.loop_count)
        if not isinstance(value, list):
            inner.current = value
            return value if truthy(condition(inner)) else None
        kept = []
        for item in value:
            inner.current = item
            if truthy(condition(inner)):
                kept.append(item)
        return kept

    return keep


def _is_index(node: ast.Expr) -> bool:
    """A number literal, or a negated one (`[-1]`, refused with a hint rather than read as a condition)."""
    if isinstance(node, ast.Unary) and node.op == "-":
        node = node.operand
    return isinstance(node, ast.Literal) and isinstance(node.value, Decimal)


_BUILDERS: dict[type, Callable[[Any, CompileEnv], Getter]] = {
    ast.Literal: _literal,
    ast.Binary: _binary,
    ast.Unary: _unary,
    ast.InList: _in_list,
    ast.Presence: _presence,
    ast.Call: _call,
    ast.JsonPath: _jsonpath,
    ast.Path: _path,
}
