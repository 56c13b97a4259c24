"""XML paths in the route language: `Item.sku`, `Item.Price[channel = "web"]`, `Item["@sku"]`, `xpath["..."]`.

The map compiler hands every path of a map `from xml ...` (and of route steps after `read xml`) to
:class:`XmlPathCompiler`, which translates it into XPath 1.0 and compiles it once with
:class:`lxml.etree.XPath`; the getter it returns evaluates that XPath from the current element.

The dotted form, as analysts write it:

- `Item.Price` reads the child elements `Item` of the current element, then their children
  `Price`; names are in the document's namespace: the one given after the format's name
  (`from xml "PriceList" "urn:erp:pricelist:v1"`), else the namespace of the document's root
  element, whatever it is.
- The last name reads an attribute when the element has no child element of that name: `Item.sku`
  is `<Item sku="A1">`'s attribute, or `<Item><sku>A1</sku></Item>`'s child. `Item["@sku"]` always
  reads the attribute; `Item["ship-to"]` and `Item["cac:Party"]` read elements whose names are not
  plain words or carry a prefix.
- `Price[channel = "web"]` keeps the elements for which the condition holds. Conditions compare
  paths (relative to the element) with text or numbers (`=`, `!=`, and `<`, `<=`, `>`, `>=` with a
  number), test `is present`/`is missing` or `in (...)`, and combine with `and`, `or`, `not`; other
  conditions belong in `for each ... where`. `Item[0]` is the first of all the `Item` elements read.
- `xpath["p:Item[p:Price > 10]/@sku"]` is XPath 1.0 as it is, from the current element (`/...` from
  the document's root); its prefixes are those of a table named `xmlns` (`"p" -> "urn:..."`), in the
  map or at the top level of a file.

Values (see :func:`crossdock.formats.xml.element_value`): an attribute is its text; an element with
only text is its text, and with attributes too an XmlText (text whose attributes paths still reach);
an element with child elements, or attributes and no text, is an XmlNode, which `for each` and
`object from` go into. Empty text is missing. No match is missing, one match is its value, several
a list. Text stays text: `decimal(Price)` makes the exact number. An XPath number (`count()`,
`sum()`) becomes a Decimal of the double XPath computed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from lxml import etree

from crossdock.dsl import ast
from crossdock.dsl.diagnostics import Span, did_you_mean
from crossdock.engine.mapping.expressions import CompileEnv, EvaluationError, Getter, Scope
from crossdock.formats.xml import ElementStream, element_of, element_value

XPATH_ROOT = "xpath"
"""`xpath["..."]`: a path in XPath itself."""
NAMESPACES_TABLE = "xmlns"
"""The table whose entries declare the namespace prefixes of XML paths: `"p" -> "urn:..."`."""
DEFAULT_PREFIX = "_default"
"""The prefix the translation binds to the document's namespace (a table may not declare it)."""

NCNAME = re.compile(r"[^\W\d][\w.\-]*")
_QNAME = re.compile(rf"(?:({NCNAME.pattern}):)?({NCNAME.pattern})")
_ORDER = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}


class _Refused(Exception):
    """A path that cannot be translated: the diagnostic's code, message, span and hint."""

    def __init__(self, message: str, span: Span, hint: str | None = None, diagnostic: str = "MAP016") -> None:
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint
        self.diagnostic = diagnostic  # MAP012 for a bad index, as everywhere in the language


def declared_prefixes(tables: Mapping[str, Mapping[Any, Any]]) -> dict[str, str]:
    """The prefixes of the `xmlns` table in scope: valid prefixes to namespaces (lint reports the rest)."""
    table = tables.get(NAMESPACES_TABLE) or {}
    return {key: value for key, value in table.items()
            if isinstance(key, str) and NCNAME.fullmatch(key) and key != DEFAULT_PREFIX
            and isinstance(value, str) and value}


class _Translation:
    """Writes one dotted path as XPath; literals become variables `$v1`, `$v2`... (no quoting at all)."""

    def __init__(self, namespace: str | None, prefixes: dict[str, str]) -> None:
        self.namespace = namespace  # None: the document's own, from `$ns` when evaluated
        self.prefixes = prefixes
        self.variables: dict[str, Any] = {}

    def element(self, name: str, span: Span) -> str:
        """The XPath test for child elements called `name` (`prefix:local` or a local name)."""
        prefix, local = self._split(name, span)
        if prefix is not None:
            return f"{prefix}:{local}"
        if self.namespace is None:
            return f'*[local-name() = "{local}" and namespace-uri() = $ns]'
        return f"{DEFAULT_PREFIX}:{local}" if self.namespace else local

    def attribute(self, name: str, span: Span) -> str:
        prefix, local = self._split(name, span)
        return f"@{prefix}:{local}" if prefix is not None else f"@{local}"

    def _split(self, name: str, span: Span) -> tuple[str | None, str]:
        match = _QNAME.fullmatch(name)
        if match is None:
            raise _Refused(f"'{name}' is not an XML name", span, 'names look like Item, ship-to or cac:Party')
        prefix, local = match.groups()
        if prefix is not None and prefix not in self.prefixes:
            hint = did_you_mean(prefix, self.prefixes) or (
                f'declare it: table {NAMESPACES_TABLE} "{prefix}" -> "urn:..." end')
            raise _Refused(f"the namespace prefix '{prefix}' is not declared", span, hint)
        return prefix, local

    def variable(self, value: Any) -> str:
        name = f"v{len(self.variables) + 1}"
        self.variables[name] = value
        return f"${name}"

    # ---- location paths -------------------------------------------------------------------------

    def location(self, steps: tuple[ast.PathStep, ...]) -> str:
        """`steps` from the context node; the last plain name reads an element, else an attribute."""
        expr = "."
        for position, step in enumerate(steps):
            last = position == len(steps) - 1
            qualifier = step.qualifier
            if isinstance(qualifier, ast.Literal) and isinstance(qualifier.value, str):
                expr = f"{expr}/{self.element(step.name, step.span)}"
                name = qualifier.value
                if name.startswith("@"):
                    if not last:
                        raise _Refused(f"the attribute '{name[1:]}' has no children to read", steps[position + 1].span)
                    expr = f"{expr}/{self.attribute(name[1:], qualifier.span)}"
                else:
                    expr = f"{expr}/{self.element(name, qualifier.span)}"
            elif qualifier is None:
                expr = self._either(expr, step) if last else f"{expr}/{self.element(step.name, step.span)}"
            elif _is_index(qualifier):
                expr = self._index(expr, step, qualifier, last)
            else:
                expr = f"{expr}/{self.element(step.name, step.span)}[{self.condition(qualifier)}]"
        return expr

    def _either(self, expr: str, step: ast.PathStep) -> str:
        """The child elements `name`, or the attribute `name` of the elements that have none."""
        element = self.element(step.name, step.span)
        return f"{expr}/{element} | {expr}/@{step.name}[not(../{element})]"

    def _index(self, expr: str, step: ast.PathStep, qualifier: ast.Expr, last: bool) -> str:
        number = qualifier.value if isinstance(qualifier, ast.Literal) else None
        if number is None or number != number.to_integral_value() or number < 0:
            raise _Refused(f"an index must be a whole number from 0, not {_shown(qualifier)}", qualifier.span,
                           "Item[0] is the first Item; last(...) gives the last one", diagnostic="MAP012")
        selected = self._either(expr, step) if last else f"{expr}/{self.element(step.name, step.span)}"
        # the n-th of everything selected so far (as items[0] of a JSON list), not the n-th child of each parent
        return f"({selected})[{int(number) + 1}]"

    # ---- conditions -----------------------------------------------------------------------------

    def condition(self, node: ast.Expr) -> str:
        """`node` as an XPath predicate, evaluated with each element as the context node."""
        if isinstance(node, ast.Binary) and node.op in ("and", "or"):
            return f"({self.condition(node.left)} {node.op} {self.condition(node.right)})"
        if isinstance(node, ast.Unary) and node.op == "not":
            return f"not({self.condition(node.operand)})"
        if isinstance(node, ast.Presence):
            test = self._present(node.value)
            return test if node.present else f"not({test})"
        if isinstance(node, ast.Path):
            return self._present(node)
        if isinstance(node, ast.InList):
            path = self._operand(node.value, node)
            return "(" + " or ".join(f"({path}) = {self._literal(option, '=')}" for option in node.options) + ")"
        if isinstance(node, ast.Binary) and node.op in ("=", "!=", *_ORDER):
            return self._comparison(node)
        raise _Refused("this condition cannot be an XML path condition", node.span, _CONDITION_HINT)

    def _comparison(self, node: ast.Binary) -> str:
        op, left, right = node.op, node.left, node.right
        if isinstance(left, ast.Literal) and not isinstance(right, ast.Literal):
            left, right, op = right, left, _ORDER.get(op, op)  # `"web" = channel` reads as `channel = "web"`
        path = self._operand(left, node)
        value = self._literal(right, op)
        if op == "!=":
            return f"not(({path}) = {value})"  # also true when the path finds nothing, as `!=` is
        return f"({path}) {op} {value}"

    def _operand(self, node: ast.Expr, whole: ast.Expr) -> str:
        if not isinstance(node, ast.Path) or node.steps[0].name == XPATH_ROOT:
            raise _Refused("an XML path condition compares a path of the element with a value", node.span,
                           _CONDITION_HINT)
        return self.location(node.steps)

    def _literal(self, node: ast.Expr, op: str) -> str:
        if isinstance(node, ast.Literal) and isinstance(node.value, Decimal):
            return self.variable(float(node.value))  # XPath 1.0 numbers are doubles
        if isinstance(node, ast.Literal) and isinstance(node.value, str) and op in ("=", "!="):
            return self.variable(node.value)
        if isinstance(node, ast.Literal) and isinstance(node.value, str):
            raise _Refused(f"'{op}' in an XML path condition compares numbers, not text", node.span,
                           "compare text with = or !=, or put the condition in `for each ... where`")
        raise _Refused("an XML path condition compares with text in quotes or a number", node.span,
                       _CONDITION_HINT)

    def _present(self, node: ast.Expr) -> str:
        path = self._operand(node, node)
        # present as a value (see element_value): text that is not empty, or an element with more in it
        return f'boolean(({path})[. != "" or * or @*])'


_CONDITION_HINT = 'for example: Price[channel = "web"]; other conditions go in `for each ... where`'


def _is_index(node: ast.Expr) -> bool:
    if isinstance(node, ast.Unary) and node.op == "-":
        node = node.operand
    return isinstance(node, ast.Literal) and isinstance(node.value, Decimal)


def _shown(node: ast.Expr) -> str:
    if isinstance(node, ast.Unary):
        return f"-{_shown(node.operand)}"
    return str(node.value) if isinstance(node, ast.Literal) else "that"


class XmlPathCompiler:
    """Compiles paths over XML elements (see the module docstring).

    `namespace` is the namespace of names in dotted paths: a URI, "" for none, or None for the
    namespace of each document's root element.
    """

    def __init__(self, namespace: str | None = None) -> None:
        self.namespace = namespace

    def compile_path(self, path: ast.Path, env: CompileEnv) -> Getter | None:
        prefixes = declared_prefixes(env.tables)
        first = path.steps[0]
        try:
            if first.name == XPATH_ROOT and len(path.steps) == 1 and isinstance(first.qualifier, ast.Literal) \
                    and isinstance(first.qualifier.value, str):
                return _xpath_getter(first.qualifier.value, prefixes, first.qualifier.span)
            translation = _Translation(self.namespace, prefixes)
            text = translation.location(path.steps)
        except _Refused as refused:
            env.bag.error(refused.diagnostic, refused.message, refused.span, refused.hint)
            return None
        namespaces = dict(prefixes)
        if self.namespace:
            namespaces[DEFAULT_PREFIX] = self.namespace
        compiled = etree.XPath(text, namespaces=namespaces, smart_strings=False)
        name = first.name if len(path.steps) == 1 and first.qualifier is None else None
        return _getter(compiled, translation.variables, self.namespace is None, name, path.dotted)


def _xpath_getter(text: str, prefixes: dict[str, str], span: Span) -> Getter:
    try:
        compiled = etree.XPath(text, namespaces=prefixes, smart_strings=False)
        compiled(etree.Element("probe"))  # unknown prefixes, functions and variables show only when evaluated
    except etree.XPathError as error:
        hint = (f'declare prefixes in a table {NAMESPACES_TABLE}: "p" -> "urn:..."' if "prefix" in str(error)
                else "XPath 1.0, as lxml evaluates it")
        raise _Refused(f"not a valid XPath {text!r}: {error}", span, hint) from None
    return _getter(compiled, {}, False, None, text)


def _getter(compiled: etree.XPath, variables: dict[str, Any], own_namespace: bool, name: str | None,
            shown: str) -> Getter:
    """The getter of a compiled path; `name` is set for a one-name path, which may read a stream."""

    def read(scope: Scope) -> Any:
        current = scope.current
        if isinstance(current, ElementStream):
            return _from_stream(current, name, shown)
        element = element_of(current)
        if element is None:
            return None  # text or a number has no elements or attributes
        arguments = variables
        if own_namespace:
            arguments = {**variables, "ns": etree.QName(element.getroottree().getroot()).namespace or ""}
        try:
            result = compiled(element, **arguments)
        except etree.XPathError as error:
            raise EvaluationError(f"the XML path {shown} failed: {error}") from None
        return _value(result)

    return read


def _from_stream(stream: ElementStream, name: str | None, shown: str) -> list[Any]:
    if name != stream.name:
        raise EvaluationError(f"this document is read with `split on \"{stream.name}\"`, so it is read by "
                              f"`for each {stream.name}`, not by {shown}")
    return [element_value(element) for element in stream]


def _value(result: Any) -> Any:
    """What an XPath result is worth in a map: no match missing, one match its value, several a list."""
    if isinstance(result, list):
        values = [value for item in result if (value := _item(item)) is not None]
        if not values:
            return None
        return values[0] if len(values) == 1 else values
    if isinstance(result, bool):
        return result
    if isinstance(result, float):
        if math.isnan(result) or math.isinf(result):
            return None
        return Decimal(int(result)) if result.is_integer() else Decimal(repr(result))
    return result or None


def _item(item: Any) -> Any:
    if isinstance(item, etree._Element):
        if isinstance(item.tag, str):
            return element_value(item)
        return item.text or None  # a comment or a processing instruction
    return item or None  # an attribute's or a text node's text


def xml_path_compiler(arguments: Mapping[str, str]) -> XmlPathCompiler:
    """The path compiler for `xml ["ROOT" ["NAMESPACE"]]`: names in paths are in that namespace (given),
    else in the namespace of each document's root element."""
    return XmlPathCompiler(arguments.get("namespace"))
