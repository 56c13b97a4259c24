"""Compiles route-language expressions into Python closures, once, when a route or map is loaded.

An expression never runs Python from the route file: the only operations are the fixed operators
below, paths into the message, table lookups and the functions of
:mod:`crossdock.engine.mapping.functions`. Each AST node becomes one closure taking a :class:`Scope`,
so evaluating a map is plain function calls, with no tree walking per message.

Values follow JSON with exact numbers: str, Decimal, int, bool, None, list and dict. Missing values
are None and propagate: arithmetic with a missing operand is missing, a comparison with one is false,
and `x default y` picks `y` when `x` is missing or empty.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
from jsonpath_ng.ext import parse as parse_jsonpath

from crossdock.dsl import ast
from crossdock.dsl.diagnostics import DiagnosticBag, did_you_mean
from crossdock.engine.mapping.functions import FUNCTIONS, FunctionContext, FunctionError

Getter = Callable[["Scope"], Any]

# Path roots with a meaning of their own; everything else is a path into the current value.
OUT_ROOT = "out"
LOOP_ROOT = "loop"
MESSAGE_ROOT = "message"


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
    return value is None or value == "" or value == []


def to_number(value: Any) -> Decimal | None:
    """A Decimal for numbers and numeric text; None when it is not a number."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return f"text {value!r}"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _arith(op: str, fn: Callable[[Decimal, Decimal], Decimal]) -> Callable[[Any, Any], Any]:
    def apply(left: Any, right: Any) -> Any:
        if left is None or right is None:
            return None
        a, b = to_number(left), to_number(right)
        if a is None or b is None:
            if op == "+" and isinstance(left, str) and isinstance(right, str):
                return left + right
            bad = left if a is None else right
            raise EvaluationError(f"'{op}' needs numbers, got {_describe(bad)}")
        try:
            return fn(a, b)
        except ZeroDivisionError:
            raise EvaluationError("division by zero") from None
        except InvalidOperation as error:
            raise EvaluationError(f"cannot compute {a} {op} {b}: {error}") from None

    return apply


_ARITH = {
    "+": _arith("+", lambda a, b: a + b),
    "-": _arith("-", lambda a, b: a - b),
    "*": _arith("*", lambda a, b: a * b),
    "/": _arith("/", lambda a, b: a / b),
}


def _comparable(left: Any, right: Any) -> tuple[Any, Any] | None:
    if isinstance(left, str) and isinstance(right, str):
        return left, right
    a, b = to_number(left), to_number(right)
    if a is not None and b is not None:
        return a, b
    return None


def values_equal(left: Any, right: Any) -> bool:
    """Equality as analysts expect it: 10 = "10.0" is true, "DAL" = "dal" is not."""
    if left is None or right is None:
        return left is right
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right
    pair = _comparable(left, right)
    if pair is not None:
        return pair[0] == pair[1]
    return bool(left == right)


def _order(op: str) -> Callable[[Any, Any], bool]:
    fn = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}[op]

    def apply(left: Any, right: Any) -> bool:
        if left is None or right is None:
            return False
        pair = _comparable(left, right)
        if pair is None:
            raise EvaluationError(f"cannot compare {_describe(left)} with {_describe(right)} using '{op}'")
        return bool(fn(*pair))

    return apply


_COMPARE = {op: _order(op) for op in ("<", "<=", ">", ">=")}


def truthy(value: Any) -> bool:
    """Conditions: missing and false are false; everything else is true."""
    if isinstance(value, bool):
        return value
    return not is_missing(value)


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
        fn = _ARITH[op]
        return lambda scope: fn(left(scope), right(scope))
    if op == "=":
        return lambda scope: values_equal(left(scope), right(scope))
    if op == "!=":
        return lambda scope: not values_equal(left(scope), right(scope))
    if op in _COMPARE:
        cmp = _COMPARE[op]
        return lambda scope: cmp(left(scope), right(scope))
    if op == "and":
        return lambda scope: truthy(left(scope)) and truthy(right(scope))
    if op == "or":
        return lambda scope: truthy(left(scope)) or truthy(right(scope))
    if op == "default":

        def default(scope: Scope) -> Any:
            value = left(scope)
            return right(scope) if is_missing(value) else value

        return default
    raise TypeError(f"unknown operator {op!r}")


def _unary(node: ast.Unary, env: CompileEnv) -> Getter:
    operand = compile_expr(node.operand, env)
    if node.op == "not":
        return lambda scope: not truthy(operand(scope))

    def negate(scope: Scope) -> Any:
        value = operand(scope)
        if value is None:
            return None
        number = to_number(value)
        if number is None:
            raise EvaluationError(f"'-' needs a number, got {_describe(value)}")
        return -number

    return negate


def _in_list(node: ast.InList, env: CompileEnv) -> Getter:
    value = compile_expr(node.value, env)
    options = [compile_expr(o, env) for o in node.options]
    return lambda scope: any(values_equal(value(scope), o(scope)) for o in options)


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
    args = [compile_expr(a, env) for a in node.args]
    impl = spec.impl
    name = node.name

    def fail(error: Exception) -> EvaluationError:
        return EvaluationError(f"{name}(): {error}")

    if spec.lazy:
        def call_lazy(scope: Scope) -> Any:
            try:
                return impl(*[functools.partial(a, scope) for a in args])
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
    if len(args) == 1:
        (only,) = args

        def call_one(scope: Scope) -> Any:
            try:
                return impl(only(scope))
            except FunctionError as error:
                raise fail(error) from None

        return call_one

    def call(scope: Scope) -> Any:
        try:
            return impl(*[a(scope) for a in args])
        except FunctionError as error:
            raise fail(error) from None

    return call


def _jsonpath(node: ast.JsonPath, env: CompileEnv) -> Getter:
    try:
        compiled = parse_jsonpath(node.text)
    except (JsonPathLexerError, JsonPathParserError, Exception) as error:  # jsonpath-ng raises plain Exception too
        env.bag.error("MAP010", f"invalid JSONPath {node.text!r}: {error}", node.span,
                      "see https://github.com/h2non/jsonpath-ng for the syntax")
        return _none

    def find(scope: Scope) -> Any:
        matches = [m.value for m in compiled.find(scope.root)]
        if not matches:
            return None
        return matches[0] if len(matches) == 1 and not _is_multi(node.text) else matches

    return find


def _is_multi(text: str) -> bool:
    return "*" in text or ".." in text or "?" in text or ":" in text


def _path(node: ast.Path, env: CompileEnv) -> Getter:
    first = node.steps[0]
    if first.name in env.tables and len(node.steps) == 1 and first.qualifier is not None:
        return _table_lookup(first, env)
    if first.name == OUT_ROOT and env.allow_out:
        rest = dict_path(node.steps[1:], env)
        return lambda scope: rest(scope.out, scope)
    if first.name == LOOP_ROOT and len(node.steps) == 2 and first.qualifier is None:
        which = node.steps[1].name
        if which == "index":
            return lambda scope: scope.loop_index
        if which == "count":
            return lambda scope: scope.loop_count
        env.bag.error("MAP011", f"'loop.{which}' is not known", node.steps[1].span, "use loop.index or loop.count")
        return _none
    if first.name == MESSAGE_ROOT and env.allow_message:
        rest = dict_path(node.steps[1:], env)
        return lambda scope: rest(scope.message, scope)
    if env.paths is not None:
        compiled = env.paths.compile_path(node, env)
        return compiled or _none
    getter = dict_path(node.steps, env)
    return lambda scope: getter(scope.current, scope)


def _table_lookup(step: ast.PathStep, env: CompileEnv) -> Getter:
    table = env.tables[step.name]
    assert step.qualifier is not None
    key = compile_expr(step.qualifier, env)

    def lookup(scope: Scope) -> Any:
        value = key(scope)
        if value is None:
            return None
        found = table.get(value)
        if found is None and not isinstance(value, str):
            found = table.get(str(value))
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
                return _step(value, name)

            return one

        def plain(value: Any, scope: Scope) -> Any:
            for name in names:
                if type(value) is dict:
                    value = value.get(name)
                elif value is None:
                    return None
                else:
                    value = _step(value, name)
            return value

        return plain
    parts = [(s.name, qualifier(s.qualifier, env) if s.qualifier is not None else None) for s in steps]

    def walk(value: Any, scope: Scope) -> Any:
        for name, qualify in parts:
            value = _step(value, name)
            if qualify is not None and value is not None:
                value = qualify(value, scope)
        return value

    return walk


def _step(value: Any, name: str) -> Any:
    if isinstance(value, dict):
        return value.get(name)
    if isinstance(value, list):
        out: list[Any] = []
        for item in value:
            got = _step(item, name)
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
        return lambda value, scope: value.get(key) if isinstance(value, dict) else _step(value, key)
    if isinstance(node, ast.Literal) and isinstance(node.value, Decimal):
        if node.value != node.value.to_integral_value() or node.value < 0:
            env.bag.error("MAP012", f"an index must be a whole number from 0, not {node.value}", node.span)
            return lambda value, scope: None
        index = int(node.value)

        def at(value: Any, scope: Scope) -> Any:
            if isinstance(value, list):
                return value[index] if index < len(value) else None
            return value if index == 0 else None

        return at
    condition = compile_expr(node, env)

    def keep(value: Any, scope: Scope) -> Any:
        items = value if isinstance(value, list) else [value]
        kept = [item for item in items if truthy(condition(scope.enter(item, scope.out)))]
        if isinstance(value, list):
            return kept
        return kept[0] if kept else None

    return keep


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
