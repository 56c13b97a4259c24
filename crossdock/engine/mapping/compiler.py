"""Compiles a `map` block into a :class:`CompiledMap`: one generated Python function that builds the output.

Compilation happens once, when routes are loaded: the map is written as Python source (see
:mod:`crossdock.engine.mapping.codegen` for what may appear in it, and
:mod:`crossdock.engine.mapping.expressions` for expressions and paths), compiled and kept as a
function; running a map is one call. What each statement does:

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
message also says which element. The generated function has no bookkeeping for this: every line of
it is tagged with the map line it was written for, and :func:`map_failure` finds the failing line in
the traceback. :meth:`CompiledMap.run_validated` then validates the output against the target model
(``to Order``), raising :class:`~crossdock.engine.errors.ValidationFailed` that names each bad field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from crossdock.canonical import MODELS, plain_converter
from crossdock.dsl import ast
from crossdock.dsl.diagnostics import DiagnosticBag, Span
from crossdock.engine.errors import FieldProblem, MapError, ValidationFailed
from crossdock.engine.mapping.codegen import Source, py_str
from crossdock.engine.mapping.expressions import (
    NONE,
    RUNTIME,
    CompileEnv,
    EvaluationError,
    ExprWriter,
    Frame,
    PathCompiler,
    Value,
    frame_parameters,
    holds,
    missing_test,
    present_test,
)
from crossdock.engine.mapping.functions import FunctionContext

MapFunction = Callable[[Any, FunctionContext, Mapping[str, Any] | None], dict[str, Any]]

# Blocks a map function (or a local function in it) may nest before a block goes into a local function
# of its own: well below the 20 nested loops and `try` blocks Python allows in one function, as one
# statement may add a few (a qualifier's loop, a `try` around a call).
_MAX_NESTING = 12


@dataclass
class CompiledMap:
    """A map ready to run: `run(document)` returns the output as plain JSON-like data."""

    name: str
    definition: ast.MapDef
    function: MapFunction
    """The generated function: (document, functions, message) -> output."""
    source: str
    """The Python source `function` was compiled from, for reading (and for tests)."""
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
        return self.function(document, functions or self.default_functions, message)

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

    The plain data is what :func:`crossdock.canonical.to_plain` gives.
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


# ---- errors ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Loop:
    """A `for each` around a failing line: its map line, and the locals counting its elements."""

    line: int
    index: str
    count: str


@dataclass(frozen=True, slots=True)
class Place:
    """What a line of generated code was written for: a map line, inside these loops (innermost first)."""

    span: Span
    loops: tuple[Loop, ...]


def map_failure(error: Exception, places: Sequence[Place | None]) -> MapError:
    """The MapError for `error`, raised in a generated map function whose lines are `places`.

    The traceback starts at the map function (it caught the error) and goes through the local
    functions it defined (`if` branches, deeply nested blocks), which share its namespace: the last
    of them was at the line that failed, and their locals tell which element each `for each` was at.
    """
    first = error.__traceback__
    assert first is not None
    namespace = first.tb_frame.f_globals
    generated = []
    trace = first
    while trace is not None:
        if trace.tb_frame.f_globals is namespace:
            generated.append(trace)
        trace = trace.tb_next
    place = places[generated[-1].tb_lineno]
    assert place is not None  # every line in the map function's `try` has one
    if isinstance(error, MapError):  # a nested target that cannot be set: it names its own line
        failure = error
    elif isinstance(error, EvaluationError):
        failure = MapError(str(error), place.span, code="M001")
    else:
        failure = MapError(f"{type(error).__name__}: {error}", place.span, code="M002")
    locals_ = {name: value for entry in generated for name, value in entry.tb_frame.f_locals.items()}
    for loop in place.loops:
        element = f"for each at line {loop.line}, element {locals_[loop.index]} of {locals_[loop.count]}"
        failure = MapError(f"{failure.message} ({element})", failure.span, code=failure.code)
    return failure


def put_nested(out: dict[str, Any], target: ast.Target, value: Any) -> None:
    """Set `target` (two or more dotted parts) in `out`, creating the objects on the way."""
    *parents, last = target.parts
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
    source = Source({**RUNTIME, "_map_failure": map_failure, "_put": put_nested})
    places: list[Place | None] = []
    writer = _MapWriter(source, ExprWriter(source, env))
    top = Frame("root", "root_is_dict", "out", NONE, NONE)
    source.line("def _map(root, ctx, msg):")
    with source.block("function"):
        source.line("out = {}")
        source.line("root_is_dict = type(root) is dict")
        source.line("try:")
        with source.block("try"), source.tagged(Place(definition.span, ())):
            writer.items(definition.items, top, ())
        source.line("except Exception as _exc:")
        with source.block():
            source.line(f"raise _map_failure(_exc, {source.hoist(places, 'places')}) from _exc")
        source.line("return out")
    places.extend(source.tags())
    function = source.build("_map", f"<map {definition.name!r}>")
    target = MODELS.get(definition.target.kind.text)
    return CompiledMap(definition.name, definition, function, source.text(), target)


class _MapWriter:
    """Writes the statements of a map; expressions are written by the ExprWriter."""

    def __init__(self, source: Source, exprs: ExprWriter) -> None:
        self.source = source
        self.exprs = exprs

    def items(self, items: tuple[ast.MapItem, ...], frame: Frame, loops: tuple[Loop, ...]) -> None:
        for item in items:
            if isinstance(item, ast.Assign):
                self.assign(item, frame, loops)
            elif isinstance(item, ast.AssignEach | ast.AssignObject | ast.MapWhen):
                if self.source.nesting < _MAX_NESTING:
                    self.compound(item, frame, loops)
                else:
                    self.apart(item, frame, loops)
            # tables and tests are declarations, not statements

    def compound(self, item: ast.AssignEach | ast.AssignObject | ast.MapWhen, frame: Frame,
                 loops: tuple[Loop, ...]) -> None:
        """A statement with statements inside."""
        if isinstance(item, ast.AssignEach):
            self.each(item, frame, loops)
        elif isinstance(item, ast.AssignObject):
            self.object(item, frame, loops)
        else:
            self.when(item, frame, loops)

    def apart(self, item: ast.AssignEach | ast.AssignObject | ast.MapWhen, frame: Frame,
              loops: tuple[Loop, ...]) -> None:
        """A statement with statements inside, deep down: in a local function of its own, called in place."""
        name = self.source.name("part")
        with self.source.tagged(Place(item.span, loops)):
            self.source.line(f"def {name}({frame_parameters(frame)}):")
            with self.source.block("function"):
                self.compound(item, frame, loops)
            self.source.line(f"{name}()")

    def store(self, target: ast.Target, value: Value, out: str) -> None:
        """Set `target` in the output `out` to `value` unless it is missing."""
        if len(target.parts) == 1:
            statement = f"{out}[{py_str(target.parts[0])}] = {value.code}"
        else:
            statement = f"_put({out}, {self.source.hoist(target, 'target')}, {value.code})"
        present = present_test(value)
        if present == "True":
            self.source.line(statement)
        elif present != "False":
            self.source.line(f"if {present}:")
            with self.source.block():
                self.source.line(statement)
        if len(target.parts) > 1:
            # `_put` sets fields in objects already in the output, which may be objects of the
            # document (`a = customer` then `a.b = 1`): what was read from it may have changed
            self.source.forget()

    def assign(self, item: ast.Assign, frame: Frame, loops: tuple[Loop, ...]) -> None:
        with self.source.tagged(Place(item.span, loops)):
            self.source.line(f"# line {item.span.line}")
            self.store(item.target, self.exprs.emit(item.expr, frame), frame.out)

    def each(self, item: ast.AssignEach, frame: Frame, loops: tuple[Loop, ...]) -> None:
        source = self.source
        with source.tagged(Place(item.span, loops)):
            source.line(f"# line {item.span.line}: for each")
            over = self.exprs.emit(item.over, frame)
            elements = source.name("e")
            missing = f"[] if {missing_test(over)} else [{over.code}]"
            source.line(f"{elements} = {over.code} if type({over.code}) is list else {missing}")
            if item.where is not None:
                self._where(item.where, elements, frame)
            count, index, element, is_dict, out, results = (source.name(p) for p in ("n", "i", "c", "d", "o", "r"))
            source.line(f"{count} = len({elements})")
            source.line(f"{results} = []")
            source.line(f"for {index}, {element} in enumerate({elements}, 1):")
            with source.block():
                source.line(f"{out} = {{}}")
                source.line(f"{is_dict} = type({element}) is dict")
                inner = Frame(element, is_dict, out, Value(index, int, False), Value(count, int, False))
                self.items(item.items, inner, (Loop(item.span.line, index, count), *loops))
                source.line(f"{results}.append({out})")
            self.store(item.target, Value(results, list, False), frame.out)

    def _where(self, condition: ast.Expr, elements: str, frame: Frame) -> None:
        """Keep the elements for which `condition` holds; loop.index/count are those of the list read."""
        source = self.source
        count, index, element, is_dict, kept = (source.name(p) for p in ("n", "i", "c", "d", "k"))
        source.line(f"{count} = len({elements})")
        source.line(f"{kept} = []")
        source.line(f"for {index}, {element} in enumerate({elements}, 1):")
        with source.block():
            source.line(f"{is_dict} = type({element}) is dict")
            inner = Frame(element, is_dict, frame.out, Value(index, int, False), Value(count, int, False))
            source.line(f"if {holds(self.exprs.emit(condition, inner))}:")
            with source.block():
                source.line(f"{kept}.append({element})")
        source.line(f"{elements} = {kept}")

    def object(self, item: ast.AssignObject, frame: Frame, loops: tuple[Loop, ...]) -> None:
        source = self.source
        with source.tagged(Place(item.span, loops)):
            source.line(f"# line {item.span.line}: object")
            if item.context is None:
                self._object_body(item, frame.cur, frame.cur_is_dict, frame, loops)
                return
            context = self.exprs.emit(item.context, frame).code
            current, is_dict = source.name("c"), source.name("d")
            source.line(f"{current} = {context}")
            source.line(f"if type({current}) is list:")
            with source.block():
                source.line(f"{current} = {current}[0] if {current} else None")
            source.line(f"if {present_test(Value(current))}:")
            with source.block():
                source.line(f"{is_dict} = type({current}) is dict")
                self._object_body(item, current, is_dict, frame, loops)

    def _object_body(
        self, item: ast.AssignObject, current: str, is_dict: str, frame: Frame, loops: tuple[Loop, ...]
    ) -> None:
        # loop.index and loop.count stay those of the enclosing `for each`
        out = self.source.name("o")
        self.source.line(f"{out} = {{}}")
        self.items(item.items, Frame(current, is_dict, out, frame.index, frame.count), loops)
        self.source.line(f"if {out}:")
        with self.source.block():
            self.store(item.target, Value(out, dict, False), frame.out)

    def when(self, item: ast.MapWhen, frame: Frame, loops: tuple[Loop, ...]) -> None:
        source = self.source
        # One flag instead of nested else blocks: a long chain of clauses does not nest the code.
        looking = source.name("m")
        with source.tagged(Place(item.span, loops)):
            source.line(f"{looking} = True")
        for number, (condition, items) in enumerate(item.clauses):
            with source.tagged(Place(condition.span, loops)):
                if number == 0:
                    self._clause(condition, items, looking, frame, loops)
                    continue
                source.line(f"if {looking}:")
                with source.block():
                    self._clause(condition, items, looking, frame, loops)
        if item.otherwise is not None:
            with source.tagged(Place(item.span, loops)):
                source.line(f"if {looking}:")
                with source.block():
                    self.items(item.otherwise, frame, loops)

    def _clause(
        self, condition: ast.Expr, items: tuple[ast.MapItem, ...], looking: str, frame: Frame, loops: tuple[Loop, ...]
    ) -> None:
        self.source.line(f"# line {condition.span.line}: when")
        self.source.line(f"if {holds(self.exprs.emit(condition, frame))}:")
        with self.source.block():
            self.source.line(f"{looking} = False")
            self.items(items, frame, loops)
