"""The map code generator: deterministic source, route text that stays data, errors that name the map line."""

from __future__ import annotations

import ast as pyast
import os
import re
import subprocess
import sys
import textwrap
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from crossdock.dsl import ast
from crossdock.dsl.diagnostics import DiagnosticBag, Span
from crossdock.dsl.lint import lint
from crossdock.dsl.parser import parse_text
from crossdock.engine.errors import MapError
from crossdock.engine.mapping.compiler import CompiledMap, compile_map
from crossdock.engine.mapping.expressions import CompileEnv, Getter, Scope, compile_expr
from crossdock.engine.mapping.functions import FunctionContext

REPO = Path(__file__).resolve().parents[2]


def compile_text(body: str, paths: Any = None) -> CompiledMap:
    """Compile map "m" (from json to json) with `body` as its lines; it must compile clean."""
    text = f'map "m"\n  from json\n  to json\n{textwrap.indent(textwrap.dedent(body).strip(), "  ")}\nend\n'
    module, diagnostics = parse_text(text, "m.route")
    assert module is not None and not diagnostics, [str(d) for d in diagnostics]
    (definition,) = module.definitions
    assert isinstance(definition, ast.MapDef)
    bag = DiagnosticBag()
    compiled = compile_map(definition, bag, {}, paths)
    assert not bag.items, [str(d) for d in bag.items]
    return compiled


def failure(compiled: CompiledMap, document: Any) -> MapError:
    with pytest.raises(MapError) as excinfo:
        compiled.run(document)
    return excinfo.value


def line_of(body: str, fragment: str) -> int:
    """The line of map "m" (as compile_text writes it) that contains `fragment`: its body starts at line 4."""
    lines = textwrap.dedent(body).strip().splitlines()
    (number,) = [n for n, line in enumerate(lines, start=4) if fragment in line]
    return number


# ---- the generated source -----------------------------------------------------------------------

SMALL_MAP = """
    sku = upper(code)
    total = decimal(qty) * 2
"""

SMALL_SOURCE = """\
def _map(root, ctx, msg):
    out = {}
    root_is_dict = type(root) is dict
    try:
        # line 4
        _v1 = root.get('code') if root_is_dict else _step(root, 'code')
        try:
            _v3 = _v1.upper() if type(_v1) is str else _fn2(_v1)
        except _FunctionError as _exc:
            raise _function_failed('upper', _exc) from None
        if _v3:
            out['sku'] = _v3
        # line 5
        _v4 = root.get('qty') if root_is_dict else _step(root, 'qty')
        try:
            _v5 = _v4 if type(_v4) is _Decimal else _to_decimal(_v4)
        except _FunctionError as _exc:
            raise _function_failed('decimal', _exc) from None
        try:
            _v7 = None if _v5 is None else _v5 * _dec6
        except _DecimalException as _exc:
            raise _decimal_error('*', _v5, _dec6, _exc) from None
        if _v7 is not None:
            out['total'] = _v7
    except Exception as _exc:
        raise _map_failure(_exc, _places8) from _exc
    return out
"""


def test_a_small_map_compiles_to_this_source() -> None:
    compiled = compile_text(SMALL_MAP)
    assert compiled.source == SMALL_SOURCE
    assert compiled.function.__globals__["_dec6"] == Decimal(2)  # the literal, built once
    assert compiled.run({"code": "ab", "qty": "1.5"}) == {"sku": "AB", "total": Decimal("3.0")}


def test_generated_source_is_deterministic() -> None:
    def demo_source() -> str:
        result = lint([REPO / "routes"])
        assert result.plan is not None
        return result.plan.maps["Web order to Order"].source

    here = demo_source()
    assert here == demo_source()
    script = ("from pathlib import Path; from crossdock.dsl.lint import lint; "
              "print(lint([Path('routes')]).plan.maps['Web order to Order'].source, end='')")
    for seed in ("1", "2"):  # another process, other string hashes
        env = {**os.environ, "PYTHONHASHSEED": seed}
        run = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                             check=True)
        assert run.stdout == here


def test_the_same_value_is_computed_once() -> None:
    compiled = compile_text("""
        quantity = decimal(qty)
        amount = decimal(qty) * decimal(price)
    """)
    assert compiled.source.count("_to_decimal(") == 2  # qty once, price once
    assert compiled.source.count(".get('qty')") == 1
    assert compiled.run({"qty": 3, "price": "4.10"}) == {"quantity": Decimal(3), "amount": Decimal("12.30")}


# ---- route text is data, never code -------------------------------------------------------------

HOSTILE_ROUTE = r"""
map "m\"); import os; (\""
  from json
  to json
  table codes
    "\"); import os; (\"" -> "__import__('os').system('echo pwned')"
    "a\\nb" -> "line\nbreak"
  end
  quote = "\"); import os; (\""
  backslash = "C:\\temp\\"
  breaks = "first\nsecond\r\t"
  call = "__import__('os').system('echo pwned')"
  triple = "''' + \"\"\" + '''"
  field = __import__
  keyed = item["'); import os; ('"]
  escaped = item["\\\"\n"]
  looked = codes["\"); import os; (\""]
  looked_escaped = codes["a\\nb"]
  __class__ = "dunder target"
  __builtins__ = __builtins__
  nested.__globals__ = "x"
  lines = for each exec
    os = system
  end
  check = if(field = "\"); import os; (\"", "no", "\"; import os")
end
"""

HOSTILE_DOCUMENT = {
    "__import__": "just data",
    "__builtins__": "the document's",
    "item": {"'); import os; ('": "k1", '\\"\n': "k2"},
    "exec": [{"system": "rm -rf /"}],
}

HOSTILE_OUTPUT = {
    "quote": '"); import os; ("',
    "backslash": "C:\\temp\\",
    "breaks": "first\nsecond\r\t",
    "call": "__import__('os').system('echo pwned')",
    "triple": "''' + \"\"\" + '''",
    "field": "just data",
    "keyed": "k1",
    "escaped": "k2",
    "looked": "__import__('os').system('echo pwned')",
    "looked_escaped": "line\nbreak",
    "__class__": "dunder target",
    "__builtins__": "the document's",
    "nested": {"__globals__": "x"},
    "lines": [{"os": "rm -rf /"}],
    "check": '"; import os',
}

# What generated code may name besides its numbered locals and hoisted values.
FIXED_NAMES = {"root", "ctx", "msg", "out", "root_is_dict", "scope", "cur", "idx", "cnt", "cur_is_dict", "_exc"}
ATTRIBUTES = {"get", "append", "lower", "upper", "root", "current", "out", "functions", "loop_index", "loop_count",
              "message"}
NUMBERED = re.compile(r"_[a-z]+\d+")


def assert_only_generator_code(source: str, namespace: dict[str, Any]) -> None:
    """The source names only helpers, hoisted values and the generator's own locals; it imports nothing."""
    assert namespace["__builtins__"] == {}
    for node in pyast.walk(pyast.parse(source)):
        assert not isinstance(node, pyast.Import | pyast.ImportFrom | pyast.Global | pyast.Nonlocal | pyast.Lambda)
        name = (node.id if isinstance(node, pyast.Name) else node.arg if isinstance(node, pyast.arg)
                else node.name if isinstance(node, pyast.FunctionDef) else None)
        if name is not None:
            assert name in namespace or name in FIXED_NAMES or NUMBERED.fullmatch(name) or name == "_map", name
        if isinstance(node, pyast.Attribute):
            assert node.attr in ATTRIBUTES, node.attr


def test_hostile_text_in_a_route_is_data(tmp_path: Path) -> None:
    (tmp_path / "hostile.route").write_text(HOSTILE_ROUTE, encoding="utf-8")
    result = lint([tmp_path])
    assert not result.errors, [str(d) for d in result.errors]
    assert result.plan is not None
    (compiled,) = result.plan.maps.values()
    assert compiled.run(HOSTILE_DOCUMENT) == HOSTILE_OUTPUT
    namespace = compiled.function.__globals__
    assert_only_generator_code(compiled.source, namespace)
    assert "__import__" not in namespace and "open" not in namespace


def test_names_the_grammar_cannot_write_are_data_too() -> None:
    """A syntax tree built by code (not by the parser) with quotes and line breaks in names."""
    span = Span("h.route", 1, 1)
    evil = "x'] = 1\nimport os\nout['y"
    json = ast.MapType(ast.Name("json", span), (), span)
    items = (
        ast.Assign(ast.Target((evil,), span), ast.Path((ast.PathStep(evil, span),), span), span),
        ast.Assign(ast.Target(("a\n", evil), span), ast.Literal("v", span), span),
    )
    definition = ast.MapDef("m'\nimport os", span, json, json, items, span)
    bag = DiagnosticBag()
    compiled = compile_map(definition, bag, {})
    assert not bag.items
    assert compiled.run({evil: "value"}) == {evil: "value", "a\n": {evil: "v"}}
    assert_only_generator_code(compiled.source, compiled.function.__globals__)


def test_a_text_subclass_is_refused_as_a_literal() -> None:
    class Sneaky(str):
        def __repr__(self) -> str:
            return "__import__('os')"

    span = Span("h.route", 1, 1)
    with pytest.raises(TypeError):
        compile_expr(ast.Literal(Sneaky("x"), span), CompileEnv(DiagnosticBag()))


def test_expressions_compiled_alone_name_only_generator_code() -> None:
    module, _ = parse_text('map "m"\n  from json\n  to json\n  v = if(a["k\\"\\n"] > 1, upper(b), c[x = "y"])\nend\n',
                           "m.route")
    assert module is not None
    (definition,) = module.definitions
    assert isinstance(definition, ast.MapDef) and isinstance(definition.items[0], ast.Assign)
    getter: Getter = compile_expr(definition.items[0].expr, CompileEnv(DiagnosticBag()))
    namespace = getter.__globals__  # type: ignore[attr-defined]
    assert namespace["__builtins__"] == {}
    document = {"a": {'k"\n': 2}, "b": "up"}
    assert getter(Scope(document, document, {}, FunctionContext())) == "UP"


# ---- errors name the map line -------------------------------------------------------------------


def test_an_error_names_its_line_and_code() -> None:
    body = """
        first = number
        second = decimal(qty)
        third = "x"
    """
    error = failure(compile_text(body), {"number": "1", "qty": "abc"})
    assert (error.code, error.message) == ("M001", 'decimal(): "abc" is not a number')
    assert error.span is not None and error.span.line == line_of(body, "second =")


def test_an_error_in_nested_loops_names_both_elements() -> None:
    body = """
        orders = for each orders
          id = id
          lines = for each lines
            amount = qty * 2
          end
        end
    """
    document = {"orders": [{"id": "a", "lines": [{"qty": 1}]}, {"id": "b", "lines": [{"qty": 1}, {"qty": "x"}]}]}
    error = failure(compile_text(body), document)
    assert error.span is not None and error.span.line == line_of(body, "amount =")
    outer, inner = line_of(body, "orders ="), line_of(body, "lines =")
    assert error.message == (f"'*' needs numbers, got text 'x' (for each at line {inner}, element 2 of 2)"
                             f" (for each at line {outer}, element 2 of 2)")


def test_an_error_in_a_lazy_branch_names_its_line() -> None:
    body = 'lazy = if(flag, decimal(bad), "no")'
    compiled = compile_text(body)
    error = failure(compiled, {"flag": True, "bad": "x"})
    assert error.span is not None and error.span.line == line_of(body, "lazy =")
    assert compiled.run({"flag": False, "bad": "x"}) == {"lazy": "no"}


def test_an_error_in_a_qualifier_condition_names_its_line_and_element() -> None:
    body = """
        items = for each items
          big = tags[decimal(size) > 1]
        end
    """
    error = failure(compile_text(body), {"items": [{"tags": [{"size": "L"}]}]})
    assert error.span is not None and error.span.line == line_of(body, "big =")
    assert error.message.endswith(f"(for each at line {line_of(body, 'items =')}, element 1 of 1)")


def test_setting_under_a_value_inside_a_loop_names_the_target_and_the_element() -> None:
    body = """
        lines = for each items
          a = "text"
          a.b = 1
        end
    """
    error = failure(compile_text(body), {"items": [{}]})
    assert error.code == "M003"
    assert error.span is not None and error.span.line == line_of(body, "a.b =")
    assert error.message.endswith(f"(for each at line {line_of(body, 'lines =')}, element 1 of 1)")


class FailingPaths:
    """A path compiler whose getters fail as a bug would: not an EvaluationError."""

    def compile_path(self, path: ast.Path, env: CompileEnv) -> Getter:
        def getter(scope: Scope) -> Any:
            raise RuntimeError(f"cannot read {path.dotted}")

        return getter


def test_an_unexpected_error_is_m002_with_its_line() -> None:
    body = """
        fine = "x"
        broken = BEG03
    """
    error = failure(compile_text(body, paths=FailingPaths()), {})
    assert (error.code, error.message) == ("M002", "RuntimeError: cannot read BEG03")
    assert error.span is not None and error.span.line == line_of(body, "broken =")


# ---- values computed once are the values the map means ------------------------------------------


def test_a_value_computed_in_a_branch_is_computed_again_after_it() -> None:
    compiled = compile_text("""
        when flag
          a = decimal(x)
        end
        b = decimal(x)
    """)
    assert compiled.run({"flag": False, "x": "5"}) == {"b": Decimal(5)}
    assert compiled.run({"flag": True, "x": "5"}) == {"a": Decimal(5), "b": Decimal(5)}


def test_context_functions_and_the_output_are_read_each_time() -> None:
    compiled = compile_text("""
        first_id = uuid()
        second_id = uuid()
        x = "1"
        before = out.x
        x = "2"
        after = out.x
    """)
    ids = iter(range(1, 100))
    out = compiled.run({}, FunctionContext(uuid4=lambda: uuid.UUID(int=next(ids))))
    assert (out["first_id"], out["second_id"]) != (out["second_id"], out["second_id"])
    assert (out["before"], out["after"]) == ("1", "2")


def test_reads_after_setting_a_nested_field_see_the_change() -> None:
    compiled = compile_text("""
        before = customer.tier
        copy = customer
        copy.tier = "gold"
        after = customer.tier
    """)
    assert compiled.run({"customer": {"name": "Ana"}})["after"] == "gold"


def test_deeply_nested_blocks_compile_and_name_their_line_and_elements() -> None:
    """Python refuses more than 20 nested blocks in one function: deep blocks go into local functions."""
    depth = 24
    opening = "".join(f"{'  ' * level}level{level} = for each items\n" for level in range(depth))
    inner = "  " * depth + "amount = price * 2\n"
    closing = "".join(f"{'  ' * level}end\n" for level in reversed(range(depth)))
    body = opening + inner + closing
    compiled = compile_text(body)
    assert "def _part" in compiled.source

    def document(price: Any) -> dict[str, Any]:
        value: dict[str, Any] = {"price": price}
        for _ in range(depth):
            value = {"items": [{"items": []}, value]}
        return value

    out: Any = compiled.run(document("1.5"))
    for level in range(depth):
        out = out[f"level{level}"][1]
    assert out == {"amount": Decimal("3.0")}
    error = failure(compiled, document("x"))
    assert error.span is not None and error.span.line == line_of(body, "amount =")
    assert error.message.count("element 2 of 2") == depth
    assert f"(for each at line {line_of(body, 'level0 =')}, element 2 of 2)" in error.message
