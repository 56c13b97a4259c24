"""Compiles a `map` block into a :class:`CompiledMap`: a list of closures that fill the output.

Compilation happens once, when routes are loaded; running a map is calling closures (see
:mod:`crossdock.engine.mapping.expressions`). Any failure while running is a
:class:`~crossdock.engine.errors.MapError` carrying the map line that failed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from crossdock.canonical import MODELS, to_plain
from crossdock.dsl import ast
from crossdock.dsl.diagnostics import DiagnosticBag, Span
from crossdock.engine.errors import FieldProblem, MapError, ValidationFailed
from crossdock.engine.mapping.expressions import (
    CompileEnv,
    EvaluationError,
    PathCompiler,
    Scope,
    compile_expr,
    truthy,
)
from crossdock.engine.mapping.functions import FunctionContext

Statement = Callable[[Scope], None]


@dataclass
class CompiledMap:
    """A map ready to run: `run(document)` returns the output as plain JSON-like data."""

    name: str
    definition: ast.MapDef
    body: tuple[Statement, ...]
    target_model: type[BaseModel] | None

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
        scope = Scope(document, document, out, functions or FunctionContext(), message=message)
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
    """Validate `data` as `model` and return it as plain data; ValidationFailed names each bad field."""
    try:
        instance = model.model_validate(data)
    except PydanticValidationError as error:
        problems = [
            FieldProblem(".".join(str(p) for p in e["loc"]) or "(root)", e["msg"]) for e in error.errors()
        ]
        summary = "; ".join(f"{p.path}: {p.message}" for p in problems[:5])
        raise ValidationFailed(f"{what} produced an invalid {model.__name__}: {summary}", problems) from None
    return to_plain(instance)


def compile_map(
    definition: ast.MapDef,
    bag: DiagnosticBag,
    tables: Mapping[str, Mapping[Any, Any]],
    paths: PathCompiler | None = None,
) -> CompiledMap:
    """Compile `definition`; problems go to `bag` (the result is still returned, for lint to go on)."""
    env = CompileEnv(bag=bag, tables=tables, paths=paths)
    body = _compile_items(definition.items, env)
    target = MODELS.get(definition.target.kind.text)
    return CompiledMap(definition.name, definition, body, target)


def _compile_items(items: tuple[ast.MapItem, ...], env: CompileEnv) -> tuple[Statement, ...]:
    statements: list[Statement] = []
    for item in items:
        if isinstance(item, ast.Assign):
            statements.append(_assign(item, env))
        elif isinstance(item, ast.AssignEach):
            statements.append(_assign_each(item, env))
        elif isinstance(item, ast.AssignObject):
            statements.append(_assign_object(item, env))
        elif isinstance(item, ast.MapWhen):
            statements.append(_when(item, env))
        # tables and tests are declarations, not statements
    return tuple(statements)


def _setter(target: ast.Target) -> Callable[[dict[str, Any], Any], None]:
    parts = target.parts
    if len(parts) == 1:
        (key,) = parts

        def set_one(out: dict[str, Any], value: Any) -> None:
            out[key] = value

        return set_one
    *parents, last = parts

    def set_nested(out: dict[str, Any], value: Any) -> None:
        node = out
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[last] = value

    return set_nested


def _fail(error: Exception, span: Span) -> MapError:
    if isinstance(error, EvaluationError):
        return MapError(str(error), span, code="M001")
    return MapError(f"{type(error).__name__}: {error}", span, code="M002")


def _assign(item: ast.Assign, env: CompileEnv) -> Statement:
    expr = compile_expr(item.expr, env)
    put = _setter(item.target)
    span = item.span

    def assign(scope: Scope) -> None:
        try:
            value = expr(scope)
        except MapError:
            raise
        except Exception as error:
            raise _fail(error, span) from error
        if value is not None:
            put(scope.out, value)

    return assign


def _assign_each(item: ast.AssignEach, env: CompileEnv) -> Statement:
    over = compile_expr(item.over, env)
    where = compile_expr(item.where, env) if item.where is not None else None
    body = _compile_items(item.items, env)
    put = _setter(item.target)
    span = item.span

    def each(scope: Scope) -> None:
        try:
            value = over(scope)
        except Exception as error:
            raise _fail(error, span) from error
        elements = [] if value is None else value if isinstance(value, list) else [value]
        results: list[dict[str, Any]] = []
        count = len(elements)
        for index, element in enumerate(elements, start=1):
            child = scope.enter(element, {}, index, count)
            if where is not None:
                try:
                    if not truthy(where(child)):
                        continue
                except Exception as error:
                    raise _fail(error, span) from error
            for statement in body:
                statement(child)
            results.append(child.out)
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
            if isinstance(current, list):
                current = current[0] if current else None
            if current is None:
                return
        child = scope.enter(current, {}, scope.loop_index, scope.loop_count)
        for statement in body:
            statement(child)
        if child.out:
            put(scope.out, child.out)

    return build


def _when(item: ast.MapWhen, env: CompileEnv) -> Statement:
    clauses = [(compile_expr(cond, env), _compile_items(items, env), cond.span) for cond, items in item.clauses]
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
