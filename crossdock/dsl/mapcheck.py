"""Checks maps against their target model and, for JSON sources with a schema, their source paths.

Every assigned field must exist in the target (MAP001), every required field must be assigned
(MAP002), the shape must fit (a `for each` goes to a list, an `object` to a nested model, a text
literal does not go to a number: MAP003), `out.` may only read what the map already built (MAP007),
and with `from json schema "file"` every source path must exist in that schema (MAP004); maps
`from xml ... schema "file.xsd"` are checked against their XSD by :mod:`crossdock.dsl.xmlcheck`.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from crossdock.canonical import MODELS
from crossdock.dsl import ast
from crossdock.dsl.diagnostics import DiagnosticBag, Span, did_you_mean
from crossdock.dsl.x12targets import check_x12_target
from crossdock.dsl.xmlcheck import check_xml_source


@dataclass(frozen=True)
class Shape:
    """What a target field holds: a nested model, a list of something, or a scalar type."""

    kind: str  # "model", "list", "scalar"
    model: type[BaseModel] | None = None
    item: Shape | None = None
    scalar: Any = None


def shape_of(annotation: Any) -> Shape:
    """The shape of a pydantic field annotation (Optional and Annotated unwrapped)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return shape_of(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        return shape_of(options[0]) if len(options) == 1 else Shape("scalar", scalar=Any)
    if origin in (list, tuple, set, frozenset, typing.Sequence):
        args = typing.get_args(annotation)
        return Shape("list", item=shape_of(args[0]) if args else Shape("scalar", scalar=Any))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return Shape("model", model=annotation)
    return Shape("scalar", scalar=annotation)


def _fields(model: type[BaseModel]) -> dict[str, Any]:
    return dict(model.model_fields)


class MapChecker:
    """Checks one map; see the module docstring."""

    def __init__(self, definition: ast.MapDef, tables: set[str], bag: DiagnosticBag) -> None:
        self.definition = definition
        self.tables = tables | {t.name.text for t in definition.tables}
        self.bag = bag
        self.schema = self._load_schema()

    def _load_schema(self) -> dict[str, Any] | None:
        args = self.definition.source.args
        if self.definition.source.kind.text != "json" or not args:
            return None
        if len(args) == 2 and isinstance(args[0], ast.Word) and args[0].text == "schema" \
                and isinstance(args[1], ast.StringLit):
            path = Path(self.definition.span.file).parent / args[1].value
            try:
                return json.loads(path.read_text(encoding="utf-8"))
            except OSError as error:
                self.bag.error("MAP008", f"cannot read the source schema '{path}': {error.strerror}", args[1].span,
                               "paths are relative to the route file")
            except json.JSONDecodeError as error:
                self.bag.error("MAP008", f"the source schema '{path}' is not JSON: {error.msg} at line {error.lineno}",
                               args[1].span)
            return None
        self.bag.error("OPT001", "a map source takes `schema \"file\"` and nothing else", args[0].span,
                       'write: from json schema "schemas/source.json"')
        return None

    def check(self) -> None:
        if self.definition.source.kind.text == "xml":
            check_xml_source(self.definition, self.tables, self.bag)
        if self.definition.target.kind.text == "x12":
            check_x12_target(self.definition, self.bag)
        model = MODELS.get(self.definition.target.kind.text)
        self._items(self.definition.items, model, self.schema, self.definition.target.span)

    def _items(
        self, items: tuple[ast.MapItem, ...], model: type[BaseModel] | None, schema: dict[str, Any] | None,
        anchor: Span,
    ) -> set[str]:
        assigned: dict[str, Span] = {}
        for item in items:
            if isinstance(item, ast.MapWhen):
                for condition, body in item.clauses:
                    self._source(condition, schema, assigned)
                    for name in self._branch(body, model, schema, assigned):
                        assigned.setdefault(name, item.span)
                if item.otherwise:
                    for name in self._branch(item.otherwise, model, schema, assigned):
                        assigned.setdefault(name, item.span)
                continue
            if not isinstance(item, ast.Assign | ast.AssignEach | ast.AssignObject):
                continue
            self._assignment(item, model, schema, assigned)
        if model is not None:
            for name, info in _fields(model).items():
                if info.is_required() and name not in assigned:
                    self.bag.error("MAP002", f"required field '{name}' of {model.__name__} is never assigned", anchor,
                                   f"add a line: {name} = ...")
        return set(assigned)

    def _branch(
        self, items: tuple[ast.MapItem, ...], model: type[BaseModel] | None, schema: dict[str, Any] | None,
        outer: dict[str, Span],
    ) -> set[str]:
        local = dict(outer)
        for item in items:
            if isinstance(item, ast.Assign | ast.AssignEach | ast.AssignObject):
                self._assignment(item, model, schema, local, duplicate_check=False)
        return set(local) - set(outer)

    def _assignment(
        self, item: ast.Assign | ast.AssignEach | ast.AssignObject, model: type[BaseModel] | None,
        schema: dict[str, Any] | None, assigned: dict[str, Span], *, duplicate_check: bool = True,
    ) -> None:
        target = item.target
        top = target.parts[0]
        if isinstance(item, ast.Assign):
            self._source(item.expr, schema, assigned)
        elif isinstance(item, ast.AssignEach):
            self._source(item.over, schema, assigned)
        elif item.context is not None:
            self._source(item.context, schema, assigned)
        shape = self._target_shape(target, model)
        if duplicate_check and top in assigned and len(target.parts) == 1:
            self.bag.warning("MAP005", f"'{top}' is assigned twice; the last assignment wins", target.span,
                             f"the first is at line {assigned[top].line}")
        assigned.setdefault(top, target.span)
        if shape is None:
            return
        if isinstance(item, ast.AssignEach):
            if shape.kind != "list":
                self.bag.error("MAP003", f"'{target.dotted}' is not a list, so it cannot take `for each`",
                               target.span)
                return
            item_model = shape.item.model if shape.item is not None else None
            inner_schema = _schema_items(self._schema_at(item.over, schema))
            self._items(item.items, item_model, inner_schema, item.span)
            if item.where is not None:
                self._source(item.where, inner_schema)
        elif isinstance(item, ast.AssignObject):
            if shape.kind != "model":
                self.bag.error("MAP003", f"'{target.dotted}' is not an object, so it cannot take `object`",
                               target.span)
                return
            inner_schema = self._schema_at(item.context, schema) if item.context is not None else schema
            self._items(item.items, shape.model, inner_schema, item.span)
        else:
            self._check_value(item, shape)

    def _target_shape(self, target: ast.Target, model: type[BaseModel] | None) -> Shape | None:
        if model is None:
            return None
        current: type[BaseModel] = model
        shape: Shape | None = None
        for index, part in enumerate(target.parts):
            fields = _fields(current)
            if part not in fields:
                self.bag.error("MAP001", f"{current.__name__} has no field '{part}'", target.span,
                               did_you_mean(part, fields) or "fields: " + ", ".join(fields))
                return None
            shape = shape_of(fields[part].annotation)
            if index < len(target.parts) - 1:
                if shape.kind != "model" or shape.model is None:
                    self.bag.error("MAP003", f"'{'.'.join(target.parts[:index + 1])}' is not an object",
                                   target.span)
                    return None
                current = shape.model
        return shape

    def _check_value(self, item: ast.Assign, shape: Shape) -> None:
        expr = item.expr
        if shape.kind in ("list", "model") and isinstance(expr, ast.Literal) and expr.value is not None:
            what = "a list" if shape.kind == "list" else "an object"
            self.bag.error("MAP003", f"'{item.target.dotted}' holds {what}, not a single value", expr.span,
                           "use `= for each ...` or `= object ... end`")
            return
        if shape.kind != "scalar" or not isinstance(expr, ast.Literal):
            return
        wanted, value = shape.scalar, expr.value
        if wanted in (Decimal, int, float) and isinstance(value, str):
            try:
                Decimal(value)
            except InvalidOperation:
                self.bag.error("MAP003", f"'{item.target.dotted}' is a number, but {value!r} is not", expr.span)
        elif wanted in (date, datetime) and isinstance(value, Decimal):
            self.bag.error("MAP003", f"'{item.target.dotted}' is a date; write it as text such as \"2026-01-31\"",
                           expr.span)
        elif wanted is bool and not isinstance(value, bool):
            self.bag.error("MAP003", f"'{item.target.dotted}' is true or false", expr.span)

    # ---- source paths ---------------------------------------------------------------------------

    def _source(self, expr: ast.Expr | None, schema: dict[str, Any] | None,
                assigned: dict[str, Span] | None = None) -> None:
        for path in _paths(expr):
            first = path.steps[0].name
            if first in self.tables and path.steps[0].qualifier is not None:
                self._source(path.steps[0].qualifier, schema, assigned)
                continue
            if first == "out":
                if assigned is not None and len(path.steps) > 1 and path.steps[1].name not in assigned:
                    self.bag.error("MAP007", f"'out.{path.steps[1].name}' is read before it is assigned",
                                   path.span, "assign it on an earlier line; maps run top to bottom")
                continue
            if first in ("loop", "message") or schema is None:
                continue
            self._schema_at(path, schema)

    def _schema_at(self, expr: ast.Expr | None, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        if schema is None or not isinstance(expr, ast.Path):
            return None
        node: dict[str, Any] | None = schema
        for step in expr.steps:
            node = _schema_items(node) if _is_array(node) else node
            properties = (node or {}).get("properties")
            if properties is None:
                return None
            if step.name not in properties:
                if (node or {}).get("additionalProperties") not in (None, False):
                    return None
                self.bag.error("MAP004", f"the source schema has no '{step.name}' here", step.span,
                               did_you_mean(step.name, properties) or "known: " + ", ".join(properties))
                return None
            node = properties[step.name]
        return node


def _is_array(node: dict[str, Any] | None) -> bool:
    return bool(node) and node.get("type") == "array"  # type: ignore[union-attr]


def _schema_items(node: dict[str, Any] | None) -> dict[str, Any] | None:
    if node and node.get("type") == "array":
        items = node.get("items")
        return items if isinstance(items, dict) else None
    return node


def _paths(expr: ast.Expr | None) -> list[ast.Path]:
    """The paths an expression reads (not those inside qualifiers, which are relative to an element)."""
    if expr is None:
        return []
    if isinstance(expr, ast.Path):
        return [expr]
    if isinstance(expr, ast.Binary):
        return _paths(expr.left) + _paths(expr.right)
    if isinstance(expr, ast.Unary):
        return _paths(expr.operand)
    if isinstance(expr, ast.Call):
        return [p for a in expr.args for p in _paths(a)]
    if isinstance(expr, ast.InList):
        return _paths(expr.value) + [p for o in expr.options for p in _paths(o)]
    if isinstance(expr, ast.Presence):
        return _paths(expr.value)
    return []


def check_maps(maps: dict[str, ast.MapDef], tables: set[str], bag: DiagnosticBag) -> None:
    """Check every map of a project."""
    for definition in maps.values():
        MapChecker(definition, tables, bag).check()
