"""Lint of maps that read XML: `from xml ["ROOT" ["NAMESPACE"]] [schema "FILE.xsd"]`.

With a schema, every dotted path the map reads is checked against the XSD's content model: each
name must be an element the schema allows at that place, or, as the last name, an attribute of the
element (MAP017, with "did you mean" among the names allowed there). Paths start at the root element
(the one named after `xml`, else any global element of the XSD) and, inside `for each` and `object
from`, at the elements those read. `xpath["..."]` paths, and anything below an `xs:any`, are not
checked. An XSD that cannot be found or compiled is MAP018; an entry of the map's `xmlns` table that
is not a prefix and a namespace is MAP016.

The model follows what price lists, catalogues and orders use: global and local elements, `ref`,
named and anonymous complex types, sequence/choice/all, groups, attributes and attribute groups,
simple and complex content extended or restricted, substitution groups, and xs:include/xs:import
of files next to the schema. Names are compared by local name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from lxml import etree

from crossdock.dsl import ast
from crossdock.dsl.diagnostics import DiagnosticBag, Span, did_you_mean
from crossdock.engine.xmlpaths import DEFAULT_PREFIX, NAMESPACES_TABLE, NCNAME, XPATH_ROOT
from crossdock.formats.xml import SchemaUnavailable, load_schema

XS = "http://www.w3.org/2001/XMLSchema"
_RESERVED_ROOTS = {"out", "loop", "message"}
_PARSER = {"resolve_entities": False, "no_network": True, "load_dtd": False}


def _xs(name: str) -> str:
    return f"{{{XS}}}{name}"


def _local(qname: str | None) -> str:
    return (qname or "").rpartition(":")[2]


@dataclass
class Content:
    """What an element may hold: child element declarations by local name, attribute names, wildcards."""

    children: dict[str, list[etree._Element]] = field(default_factory=dict)
    attributes: set[str] = field(default_factory=set)
    any_element: bool = False
    any_attribute: bool = False


class XsdModel:
    """The declarations of an XSD (and the files it includes or imports), by local name."""

    def __init__(self, document: etree._ElementTree) -> None:
        self.elements: dict[str, etree._Element] = {}
        self.types: dict[str, etree._Element] = {}
        self.groups: dict[str, etree._Element] = {}
        self.attribute_groups: dict[str, etree._Element] = {}
        self.attributes: dict[str, etree._Element] = {}
        self.substitutes: dict[str, list[etree._Element]] = {}
        self._content: dict[etree._Element, Content] = {}
        self._load(document, set())

    def _load(self, document: etree._ElementTree, seen: set[str]) -> None:
        seen.add(document.docinfo.URL or "")
        root = document.getroot()
        tables = {"element": self.elements, "complexType": self.types, "group": self.groups,
                  "attributeGroup": self.attribute_groups, "attribute": self.attributes}
        for node in root:
            kind = etree.QName(node).localname if isinstance(node.tag, str) else ""
            if kind in tables and node.get("name"):
                tables[kind].setdefault(node.get("name"), node)
            if kind == "element" and node.get("substitutionGroup"):
                self.substitutes.setdefault(_local(node.get("substitutionGroup")), []).append(node)
            if kind in ("include", "import", "redefine") and node.get("schemaLocation") and document.docinfo.URL:
                location = Path(document.docinfo.URL).parent / node.get("schemaLocation")
                if str(location) not in seen and location.is_file():
                    self._load(etree.parse(str(location), etree.XMLParser(**_PARSER)), seen)

    def declaration(self, node: etree._Element) -> etree._Element:
        """The declaration an `xs:element ref=...` stands for (the node itself otherwise)."""
        ref = node.get("ref")
        return self.elements.get(_local(ref), node) if ref else node

    def name(self, node: etree._Element) -> str:
        return self.declaration(node).get("name", "")

    def content(self, node: etree._Element) -> Content:
        """What the element declared by `node` may hold."""
        node = self.declaration(node)
        if node not in self._content:
            content = Content()
            self._content[node] = content  # before filling: a recursive type finds itself
            anonymous = node.find(_xs("complexType"))
            if anonymous is not None:
                self._complex(anonymous, content, set())
            elif node.get("type") and _local(node.get("type")) in self.types:
                self._complex(self.types[_local(node.get("type"))], content, set())
        return self._content[node]

    def _complex(self, node: etree._Element, content: Content, seen: set[str]) -> None:
        for child in node:
            if not isinstance(child.tag, str):
                continue
            kind = etree.QName(child).localname
            if kind in ("sequence", "choice", "all"):
                self._particles(child, content, seen)
            elif kind == "group":
                self._group(child, content, seen)
            elif kind in ("attribute", "attributeGroup", "anyAttribute"):
                self._attribute(child, content, seen)
            elif kind in ("complexContent", "simpleContent"):
                for derivation in child:
                    if not isinstance(derivation.tag, str):
                        continue
                    base = _local(derivation.get("base"))
                    derived = etree.QName(derivation).localname
                    # an extension adds to its base; a restriction restates the elements but keeps the attributes
                    if base in self.types and base not in seen:
                        inherited = Content()
                        self._complex(self.types[base], inherited, seen | {base})
                        content.attributes |= inherited.attributes
                        content.any_attribute |= inherited.any_attribute
                        if derived == "extension":
                            for name, nodes in inherited.children.items():
                                content.children.setdefault(name, []).extend(nodes)
                            content.any_element |= inherited.any_element
                    self._complex(derivation, content, seen)

    def _particles(self, node: etree._Element, content: Content, seen: set[str]) -> None:
        for child in node:
            if not isinstance(child.tag, str):
                continue
            kind = etree.QName(child).localname
            if kind == "element":
                for member in [child, *self.substitutes.get(self.name(child), [])]:
                    content.children.setdefault(self.name(member), []).append(member)
            elif kind in ("sequence", "choice", "all"):
                self._particles(child, content, seen)
            elif kind == "group":
                self._group(child, content, seen)
            elif kind == "any":
                content.any_element = True

    def _group(self, node: etree._Element, content: Content, seen: set[str]) -> None:
        name = _local(node.get("ref"))
        if name in self.groups and f"group:{name}" not in seen:
            self._particles(self.groups[name], content, seen | {f"group:{name}"})

    def _attribute(self, node: etree._Element, content: Content, seen: set[str]) -> None:
        kind = etree.QName(node).localname
        if kind == "anyAttribute":
            content.any_attribute = True
        elif kind == "attribute" and node.get("use") != "prohibited":
            content.attributes.add(node.get("name") or _local(node.get("ref")))
        elif kind == "attributeGroup":
            name = _local(node.get("ref"))
            if name in self.attribute_groups and f"attributes:{name}" not in seen:
                for child in self.attribute_groups[name]:
                    if isinstance(child.tag, str):
                        self._attribute(child, content, seen | {f"attributes:{name}"})


Contexts = list[etree._Element] | None
"""The element declarations a path starts from; None when unknown (no checking below)."""


class XmlSourceChecker:
    """Checks the paths of one map `from xml ... schema "..."` against its XSD (module docstring)."""

    def __init__(self, definition: ast.MapDef, tables: set[str], bag: DiagnosticBag) -> None:
        self.definition = definition
        self.tables = tables
        self.bag = bag
        self.schema_name = ""
        self.model: XsdModel | None = None

    def check(self) -> None:
        self._check_prefixes()
        root, schema = self._header()
        if schema is None:
            return
        try:
            loaded = load_schema(schema.value)
        except SchemaUnavailable as error:
            self.bag.error("MAP018", f"cannot use the XSD: {error.message}", schema.span,
                           "schemas are looked up in schemas/xsd/ of the folder crossdock runs in")
            return
        self.schema_name = schema.value
        self.model = XsdModel(loaded.document)
        tops = list(self.model.elements.values())
        if root is not None:
            if root.value not in self.model.elements:
                self.bag.error("MAP017", f"{schema.value} declares no root element '{root.value}'", root.span,
                               did_you_mean(root.value, self.model.elements)
                               or "global elements: " + ", ".join(self.model.elements))
                return
            tops = [self.model.elements[root.value]]
        self._items(self.definition.items, tops)

    def _header(self) -> tuple[ast.StringLit | None, ast.StringLit | None]:
        """The root element (first value after `xml`) and the `schema "file"` of the map's source."""
        tokens = list(self.definition.source.args)
        values = []
        while tokens and isinstance(tokens[0], ast.StringLit | ast.NumberLit):
            values.append(tokens.pop(0))  # the format's arguments; the compiler reports too many
        root = values[0] if values and isinstance(values[0], ast.StringLit) and values[0].value else None
        if not tokens:
            return root, None
        first = tokens[0]
        if len(tokens) == 2 and isinstance(first, ast.Word) and first.text == "schema" \
                and isinstance(tokens[1], ast.StringLit):
            return root, tokens[1]
        self.bag.error("OPT001", 'a map from xml takes `"ROOT" "NAMESPACE"` and `schema "file.xsd"`, nothing else',
                       first.span, 'write: from xml "PriceList" "urn:erp:pricelist:v1" schema "pricelist.xsd"')
        return root, None

    def _check_prefixes(self) -> None:
        for table in self.definition.tables:
            if table.name.text != NAMESPACES_TABLE:
                continue
            for entry in table.entries:
                key, value = entry.key.value, entry.value.value
                if not (isinstance(key, str) and NCNAME.fullmatch(key)) or key == DEFAULT_PREFIX:
                    self.bag.error("MAP016", f"{key!r} cannot be a namespace prefix", entry.key.span,
                                   "a prefix is a word such as p or cac" + (
                                       f"; {DEFAULT_PREFIX} is crossdock's own" if key == DEFAULT_PREFIX else ""))
                elif not (isinstance(value, str) and value):
                    self.bag.error("MAP016", f"prefix '{key}' needs a namespace in quotes", entry.value.span,
                                   f'for example: "{key}" -> "urn:erp:pricelist:v1"')

    # ---- walking the map ------------------------------------------------------------------------

    def _items(self, items: Iterable[ast.MapItem], contexts: Contexts) -> None:
        for item in items:
            if isinstance(item, ast.Assign):
                self._expr(item.expr, contexts)
            elif isinstance(item, ast.AssignEach):
                inner = self._expr(item.over, contexts)
                self._expr(item.where, inner)
                self._items(item.items, inner)
            elif isinstance(item, ast.AssignObject):
                inner = self._expr(item.context, contexts) if item.context is not None else contexts
                self._items(item.items, inner)
            elif isinstance(item, ast.MapWhen):
                for condition, body in item.clauses:
                    self._expr(condition, contexts)
                    self._items(body, contexts)
                self._items(item.otherwise or (), contexts)

    def _expr(self, node: ast.Expr | None, contexts: Contexts) -> Contexts:
        """Check the paths of `node`; the elements it reads when it is a path (for `for each`), else None."""
        if node is None:
            return None
        if isinstance(node, ast.Path):
            return self._path(node, contexts)
        children: list[ast.Expr] = []
        if isinstance(node, ast.Binary):
            children = [node.left, node.right]
        elif isinstance(node, ast.Unary):
            children = [node.operand]
        elif isinstance(node, ast.Call):
            children = list(node.args)
        elif isinstance(node, ast.InList):
            children = [node.value, *node.options]
        elif isinstance(node, ast.Presence):
            children = [node.value]
        for child in children:
            self._expr(child, contexts)
        return None

    def _path(self, path: ast.Path, contexts: Contexts) -> Contexts:
        first = path.steps[0]
        if first.name in _RESERVED_ROOTS and first.qualifier is None:
            return None
        if first.name in self.tables and first.qualifier is not None and len(path.steps) == 1:
            self._expr(first.qualifier, contexts)  # a table lookup: its key is read here
            return None
        if first.name == XPATH_ROOT and isinstance(first.qualifier, ast.Literal):
            return None
        for position, step in enumerate(path.steps):
            if contexts is None:
                return None
            last = position == len(path.steps) - 1
            qualifier = step.qualifier
            attribute_ok = last and (qualifier is None or _is_index(qualifier))
            contexts = self._step(step.name, step.span, contexts, attribute_ok)
            if contexts is None:
                return None
            if isinstance(qualifier, ast.Literal) and isinstance(qualifier.value, str):
                name = qualifier.value
                if name.startswith("@"):
                    self._attribute(name[1:], qualifier.span, contexts)
                    return None
                contexts = self._step(_local(name), qualifier.span, contexts, False)
            elif qualifier is not None and not _is_index(qualifier):
                self._expr(qualifier, contexts)
        return contexts

    def _step(self, name: str, span: Span, contexts: list[etree._Element], attribute_ok: bool) -> Contexts:
        """The declarations of the children `name` of `contexts`; None after reporting, or below xs:any."""
        assert self.model is not None
        contents = [self.model.content(node) for node in contexts]
        found = [child for content in contents for child in content.children.get(name, [])]
        if found:
            return found
        if any(content.any_element for content in contents):
            return None
        if attribute_ok and any(name in content.attributes or content.any_attribute for content in contents):
            return None
        known = sorted({n for content in contents for n in content.children}
                       | ({a for content in contents for a in content.attributes} if attribute_ok else set()))
        what = "element or attribute" if attribute_ok else "element"
        self.bag.error("MAP017", f"{self.schema_name} has no {what} '{name}' in {self._names(contexts)}", span,
                       did_you_mean(name, known) or (f"known here: {', '.join(known)}" if known
                                                     else "it holds no elements"))
        return None

    def _attribute(self, name: str, span: Span, contexts: list[etree._Element]) -> None:
        assert self.model is not None
        contents = [self.model.content(node) for node in contexts]
        if any(_local(name) in c.attributes or c.any_attribute for c in contents):
            return
        known = sorted({a for c in contents for a in c.attributes})
        self.bag.error("MAP017", f"{self.schema_name} has no attribute '{name}' in {self._names(contexts)}", span,
                       did_you_mean(name, known) or (f"attributes here: {', '.join(known)}" if known
                                                     else "it has no attributes"))

    def _names(self, contexts: list[etree._Element]) -> str:
        assert self.model is not None
        return ", ".join(sorted({f"<{self.model.name(node)}>" for node in contexts}))


def _is_index(node: ast.Expr) -> bool:
    if isinstance(node, ast.Unary) and node.op == "-":
        node = node.operand
    return isinstance(node, ast.Literal) and isinstance(node.value, Decimal)


def check_xml_source(definition: ast.MapDef, tables: set[str], bag: DiagnosticBag) -> None:
    """Check a map `from xml ...`; see the module docstring."""
    XmlSourceChecker(definition, tables, bag).check()
