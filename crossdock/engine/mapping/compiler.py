"""Compiles a `map` block into a :class:`CompiledMap`: a list of closures that fill the output.

Compilation happens once, when routes are loaded; running a map is calling closures (see
:mod:`crossdock.engine.mapping.expressions` for expressions and paths). What each statement does:

- ``a = EXPR`` sets field ``a`` of the output; ``a.b.c = EXPR`` sets it in nested objects, creating
  them as needed. A missing value (null, empty text, an empty list) is left out of the output, so a
  field the document lacks is absent, never null or "".
- ``a = for each PATH [where CONDITION] ... end`` builds a list with one object per element of
  ``PATH`` (a single value counts as a list of one; a missing one gives an empty list). ``where``
  skips the elements for which the condition does not hold. Inside the block, paths start at the
  element, ``out.`` reads the object being built and ``loop.index`` counts the objects built, from 1.
- ``a = object [from PATH] ... end`` builds a nested object. With ``from``, paths inside start at
  ``PATH`` (the first element when it is a list) and nothing is set when it is missing; without it
  they stay where they were. An object left empty is not set.
- ``when CONDITION ... when ... otherwise ... end`` runs the assignments of the first clause whose
  condition holds, or those of ``otherwise``.
- Statements run top to bottom, so ``out.x`` reads only what earlier lines built.

Any failure while running is a :class:`~crossdock.engine.errors.MapError` carrying the map line that
failed (code M001 for an expression error, M002 for anything unexpected); inside a ``for each`` the
message also says which element. :meth:`CompiledMap.run_validated` then validates the output
against the target model (``to Order``), raising :class:`~crossdock.engine.errors.ValidationFailed`
that names each bad field.
"""

from __future__ import annotations

import datetime as dt
import functools
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Any

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from crossdock.canonical import MODELS
from crossdock.dsl import ast
from crossdock.dsl.diagnostics import DiagnosticBag, Span
from crossdock.engine.errors import FieldProblem, MapError, ValidationFailed
from crossdock.engine.mapping.expressions import (
    CompileEnv,
    EvaluationError,
    Getter,
    PathCompiler,
    Scope,
    compile_expr,
    current_field,
    is_missing,
    step,
    truthy,
)
from crossdock.engine.mapping.functions import FunctionContext

Statement = Callable[[Scope], None]

# See expressions._EMPTY_TYPES: `not value and type(value) in _EMPTY_TYPES` is the inlined is_missing.
_EMPTY_TYPES = (str, list)


@dataclass
class CompiledMap:
    """A map ready to run: `run(document)` returns the output as plain JSON-like data."""

    name: str
    definition: ast.MapDef
    body: tuple[Statement, ...]
    target_model: type[BaseModel] | None
    default_functions: FunctionContext = field(default_factory=FunctionContext)
    """The clock and uuid source used when `run` is not given any (the system's)."""

    @property
    def source_kind(self) -> str:
        return self.definition.source.kind.text

    @property
    def target_kind(self) -> str:
        return self.definition.target.kind.text

    def run(
        self, document: Any, functions: FunctionContext | None = None, message: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Build the output from `document`; raises MapError with the failing map line."""
        out: dict[str, Any] = {}
        scope = Scope(document, document, out, functions or self.default_functions, None, None, message)
        for statement in self.body:
            statement(scope)
        return out

    def run_validated(
        self, document: Any, functions: FunctionContext | None = None, message: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """`run`, then validate against the target model when there is one (ValidationFailed if not)."""
        out = self.run(document, functions, message)
        if self.target_model is None:
            return out
        return validate_model(self.target_model, out, f"map '{self.name}'")


def validate_model(model: type[BaseModel], data: Any, what: str) -> dict[str, Any]:
    """Validate `data` as `model` and return it as plain data; ValidationFailed names each bad field.

    The plain data is what :func:`crossdock.canonical.to_plain` gives, made by a converter built once
    per model (see :func:`plain_converter`).
    """
    try:
        instance = model.model_validate(data)
    except PydanticValidationError as error:
        problems = [
            FieldProblem(".".join(str(p) for p in e["loc"]) or "(root)", e["msg"]) for e in error.errors()
        ]
        summary = "; ".join(f"{p.path}: {p.message}" for p in problems[:5])
        raise ValidationFailed(f"{what} produced an invalid {model.__name__}: {summary}", problems) from None
    return plain_converter(model)(instance)


# ---- plain data from a validated model ----------------------------------------------------------

Fix = Callable[[Any], Any]


@functools.cache
def plain_converter(model: type[BaseModel]) -> Callable[[BaseModel], dict[str, Any]]:
    """A function giving the same plain data as :func:`crossdock.canonical.to_plain`, faster.

    `to_plain` walks every value of the dump in Python to find dates and enums; for a 10-line Order
    that costs more than validating it. The model's field types say where dates and enums can be,
    so this converter dumps in pydantic's Rust code and then touches only those fields.
    """
    fix = _model_fix(model, frozenset())

    def convert(instance: BaseModel) -> dict[str, Any]:
        data = instance.model_dump(mode="python", exclude_none=True)
        return data if fix is None else fix(data)

    return convert


def _plain_value(value: Any) -> Any:
    """The general walk, for fields whose type does not say where dates and enums are (Any, dict)."""
    if isinstance(value, dict):
        return {key: _plain_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_value(item) for item in value]
    if isinstance(value, dt.date):  # datetime too
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value


def _enum_value(value: Any) -> Any:
    # `_value_` is the attribute behind the `value` property, without the descriptor's cost
    return value._value_ if isinstance(value, Enum) else value


# Types whose dumped values are plain already.
_PLAIN_TYPES = (str, int, float, bool, Decimal)


def _model_fix(model: type[BaseModel], seen: frozenset[type]) -> Fix | None:
    """What to change in a dumped `model` (None: nothing); `seen` stops at a model that contains itself."""
    if model in seen or model.model_config.get("extra") == "allow":
        return _plain_value
    seen = seen | {model}
    fixes = tuple(
        (name, fix) for name, info in model.model_fields.items()
        if (fix := _type_fix(info.annotation, seen)) is not None
    )
    if not fixes:
        return None

    def fix_model(data: Any) -> Any:
        if type(data) is dict:
            for name, fix in fixes:
                value = data.get(name)
                if value is not None:
                    data[name] = fix(value)
        return data

    return fix_model


def _type_fix(annotation: Any, seen: frozenset[type]) -> Fix | None:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _type_fix(typing.get_args(annotation)[0], seen)
    if origin is typing.Union or origin is types.UnionType:
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        fixes = [_type_fix(member, seen) for member in members]
        if all(fix is None for fix in fixes):
            return None
        return fixes[0] if len(members) == 1 else _plain_value
    if origin is list:
        (item_type,) = typing.get_args(annotation) or (Any,)
        item = _type_fix(item_type, seen)
        if item is None:
            return None
        return lambda value: [item(element) for element in value] if type(value) is list else value
    if isinstance(annotation, type) and origin is None:
        if issubclass(annotation, BaseModel):
            return _model_fix(annotation, seen)
        if issubclass(annotation, Enum):
            return _enum_value
        if issubclass(annotation, dt.date):
            return _iso
        if issubclass(annotation, _PLAIN_TYPES):
            return None
    return _plain_value


# ---- compiling ------------------------------------------------------------------------------------


def compile_map(
    definition: ast.MapDef,
    bag: DiagnosticBag,
    tables: Mapping[str, Mapping[Any, Any]],
    paths: PathCompiler | None = None,
) -> CompiledMap:
    """Compile `definition`; problems go to `bag` (the result is still returned, for lint to go on)."""
    # The runtime passes the message to a map (message.correlation_id, message.headers).
    env = CompileEnv(bag=bag, tables=tables, paths=paths, allow_message=True)
    body = _compile_items(definition.items, env)
    target = MODELS.get(definition.target.kind.text)
    return CompiledMap(definition.name, definition, body, target)


def _compile_items(items: tuple[ast.MapItem, ...], env: CompileEnv) -> tuple[Statement, ...]:
    statements: list[Statement] = []
    # Consecutive `field = expr` lines run as one statement: one call and one loop for all of them.
    simple: list[_Field] = []
    for item in items:
        if isinstance(item, ast.Assign) and len(item.target.parts) == 1:
            simple.append((item.target.parts[0], current_field(item.expr, env), compile_expr(item.expr, env),
                           item.span))
            continue
        if simple:
            statements.append(_assign_fields(tuple(simple)))
            simple = []
        if isinstance(item, ast.Assign):
            statements.append(_assign_nested(item, env))
        elif isinstance(item, ast.AssignEach):
            statements.append(_assign_each(item, env))
        elif isinstance(item, ast.AssignObject):
            statements.append(_assign_object(item, env))
        elif isinstance(item, ast.MapWhen):
            statements.append(_when(item, env))
        # tables and tests are declarations, not statements
    if simple:
        statements.append(_assign_fields(tuple(simple)))
    return tuple(statements)


def _fail(error: Exception, span: Span) -> MapError:
    if isinstance(error, EvaluationError):
        return MapError(str(error), span, code="M001")
    return MapError(f"{type(error).__name__}: {error}", span, code="M002")


# One `field = expr` line: the output key, the field of the current value it copies when it only
# does that (read directly, without calling the getter), the getter and the line.
_Field = tuple[str, str | None, Getter, Span]


def _assign_fields(fields: tuple[_Field, ...]) -> Statement:
    def assign(scope: Scope) -> None:
        out = scope.out
        current = scope.current
        from_dict = type(current) is dict
        for key, source, expr, span in fields:
            if source is not None:
                value = current.get(source) if from_dict else step(current, source)
            else:
                try:
                    value = expr(scope)
                except Exception as error:
                    raise _fail(error, span) from error
            if value is None or (not value and type(value) in _EMPTY_TYPES):
                continue
            out[key] = value

    return assign


def _setter(target: ast.Target) -> Callable[[dict[str, Any], Any], None]:
    """Sets `target` (one or more dotted parts) in an output object, creating nested objects."""
    *parents, last = target.parts
    if not parents:

        def set_one(out: dict[str, Any], value: Any) -> None:
            out[last] = value

        return set_one

    def set_nested(out: dict[str, Any], value: Any) -> None:
        node = out
        for depth, part in enumerate(parents):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif type(child) is not dict:
                taken = ".".join(target.parts[: depth + 1])
                raise MapError(f"cannot set '{target.dotted}': '{taken}' already holds a value that is not an object",
                               target.span, code="M003")
            node = child
        node[last] = value

    return set_nested


def _assign_nested(item: ast.Assign, env: CompileEnv) -> Statement:
    expr = compile_expr(item.expr, env)
    put = _setter(item.target)
    span = item.span

    def assign(scope: Scope) -> None:
        try:
            value = expr(scope)
        except Exception as error:
            raise _fail(error, span) from error
        if not is_missing(value):
            put(scope.out, value)

    return assign


def _assign_each(item: ast.AssignEach, env: CompileEnv) -> Statement:
    over = compile_expr(item.over, env)
    where = compile_expr(item.where, env) if item.where is not None else None
    body = _compile_items(item.items, env)
    put = _setter(item.target)
    span = item.span
    suffix = f"for each at line {span.line}"

    def elements_of(scope: Scope) -> list[Any]:
        try:
            value = over(scope)
        except Exception as error:
            raise _fail(error, span) from error
        elements = value if type(value) is list else [] if is_missing(value) else [value]
        if where is None:
            return elements
        check = scope.enter(None, scope.out, None, len(elements))
        kept = []
        for index, element in enumerate(elements, start=1):
            check.current, check.loop_index = element, index
            try:
                if truthy(where(check)):
                    kept.append(element)
            except Exception as error:
                raise _fail(error, span) from error
        return kept

    def each(scope: Scope) -> None:
        elements = elements_of(scope)
        count = len(elements)
        results: list[dict[str, Any]] = []
        # One scope for all elements: nothing keeps a scope after its statements return.
        child = scope.enter(None, {}, 0, count)
        index = 0
        try:
            for index, element in enumerate(elements, start=1):
                out: dict[str, Any] = {}
                child.current, child.out, child.loop_index = element, out, index
                for statement in body:
                    statement(child)
                results.append(out)
        except MapError as error:
            raise MapError(f"{error.message} ({suffix}, element {index} of {count})", error.span,
                           code=error.code) from error
        put(scope.out, results)

    return each


def _assign_object(item: ast.AssignObject, env: CompileEnv) -> Statement:
    context = compile_expr(item.context, env) if item.context is not None else None
    body = _compile_items(item.items, env)
    put = _setter(item.target)
    span = item.span

    def build(scope: Scope) -> None:
        current = scope.current
        if context is not None:
            try:
                current = context(scope)
            except Exception as error:
                raise _fail(error, span) from error
            if type(current) is list:
                current = current[0] if current else None
            if is_missing(current):
                return
        # The block runs in the caller's scope, moved to the object and put back after: no scope
        # is made per object, and nothing keeps a scope once its statements have returned.
        outer_current, outer_out = scope.current, scope.out
        out: dict[str, Any] = {}
        scope.current, scope.out = current, out
        try:
            for statement in body:
                statement(scope)
        finally:
            scope.current, scope.out = outer_current, outer_out
        if out:
            put(outer_out, out)

    return build


def _when(item: ast.MapWhen, env: CompileEnv) -> Statement:
    clauses = tuple(
        (compile_expr(cond, env), _compile_items(items, env), cond.span) for cond, items in item.clauses
    )
    otherwise = _compile_items(item.otherwise, env) if item.otherwise is not None else ()

    def when(scope: Scope) -> None:
        for condition, body, span in clauses:
            try:
                holds = truthy(condition(scope))
            except Exception as error:
                raise _fail(error, span) from error
            if holds:
                for statement in body:
                    statement(scope)
                return
        for statement in otherwise:
            statement(scope)

    return when
