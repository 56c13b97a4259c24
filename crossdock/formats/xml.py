"""XML: ERP exports, partner price lists and catalogues, documents that come with an XSD.

Features:

- Hardened reading. lxml parses with ``resolve_entities=False``, ``no_network=True``,
  ``load_dtd=False`` and ``huge_tree=False`` (libxml2's limits on depth and text size stay on), and
  a document that carries a DOCTYPE is refused outright: nothing in it is loaded, expanded or
  validated. The refusal names the problem and where it is: an external entity (XXE, D205), entity
  declarations (expansion bombs such as billion laughs, D204), any other DOCTYPE (an external DTD
  to load, D203). Payloads above ``max megabytes`` are refused before parsing (D206).
- Precise errors. A malformed document raises :class:`~crossdock.engine.errors.DecodeError` (D201)
  with the line and column libxml2 reports; an empty payload is D202.
- XSD validation. With ``schema "pricelist.xsd"`` every document is validated against that file
  (looked up in ``schemas/xsd/`` of the folder crossdock runs in, then among the XSDs shipped with
  crossdock): an invalid one raises :class:`SchemaInvalid` (D208) listing every error with its line,
  its element path and libxml2's message, so the dead letter says exactly what to fix.
- The result is the root element (an ``lxml.etree._Element``); maps and route steps read it with
  XML paths (:mod:`crossdock.engine.xmlpaths`), which hand out values by :func:`element_value`.
- Streaming. With ``split on "Item"`` decoding returns an :class:`ElementStream`: the ``Item``
  elements one at a time from ``iterparse``, each removed from the tree once the next one is read,
  so that memory beyond the payload itself stays bounded whatever the number of items. With a
  schema, the whole document is validated first (in a streaming pass of its own), so that no
  element of an invalid document is ever handed out.
- Writing. ``encode`` writes an element as it is, or builds a document from the object a map
  produced (see :func:`build`): keys are child elements, ``attr_NAME`` keys attributes, ``_text``
  the element's own text, lists repeated elements; text is escaped by lxml and written as UTF-8.

Arguments (``read xml "PriceList" "urn:erp:pricelist:v1"``, ``from xml ...``, ``to xml ...``): the
root element and its namespace. Reading refuses a document with another root (D207); maps read
names in paths in that namespace; a map ``to xml`` names what it builds.

Options:

- ``schema`` (read and sink): the XSD documents must match (D208 when read, D211 when written).
- ``split on`` (read): stream the elements of this local name (in any namespace).
- ``max megabytes`` (read, default 100): refuse larger payloads.
- ``root``, ``namespace`` (sink): the root element written around an object, and the namespace of
  every element written (the default namespace, no prefix).
- ``pretty`` (sink, yes/no): indent by two spaces and end with a newline.

Error codes: D201 malformed, D202 empty, D203 DOCTYPE, D204 entity declarations, D205 external
entity, D206 too large, D207 unexpected root element, D208 not valid against the XSD, D209 the XSD
cannot be used, D210 a value that cannot be written as XML, D211 the written document does not
match the XSD, D212 a streamed document read twice.
"""

from __future__ import annotations

import codecs
import datetime as dt
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from lxml import etree

from crossdock.dsl.options import OptionSpec, OptionType, Role
from crossdock.engine.errors import DecodeError, PermanentError, Position
from crossdock.formats.base import FormatSpec
from crossdock.formats.json import MAX_EXPONENT

SPEC = FormatSpec(
    name="xml",
    description="XML documents, read with a hardened parser, optionally validated against an XSD.",
    content_type="application/xml",
    options=(
        OptionSpec(
            "schema",
            OptionType.STRING,
            "An XSD in schemas/xsd/ that every document read (or written) must match; an invalid document "
            "is dead-lettered with every error's line and message.",
            example='"pricelist.xsd"',
        ),
        OptionSpec(
            "split on",
            OptionType.STRING,
            "Stream the elements of this name one at a time instead of building the whole tree, for very "
            "large files; follow with `for each` of the same name.",
            example='"Item"',
            roles=frozenset({Role.SOURCE}),
        ),
        OptionSpec(
            "max megabytes",
            OptionType.DECIMAL,
            "Refuse payloads larger than this before parsing them.",
            default=Decimal(100),
            example="500",
            roles=frozenset({Role.SOURCE}),
        ),
        OptionSpec(
            "root",
            OptionType.STRING,
            "The root element written around an object (a map's output); not needed for elements read.",
            example='"PriceList"',
            roles=frozenset({Role.SINK}),
        ),
        OptionSpec(
            "namespace",
            OptionType.STRING,
            "The namespace of the elements written around an object (the default namespace, no prefix).",
            example='"urn:erp:pricelist:v1"',
            roles=frozenset({Role.SINK}),
        ),
        OptionSpec(
            "pretty",
            OptionType.BOOLEAN,
            "Indent the output by two spaces and end it with a newline, for people reading it.",
            default=False,
            example="yes",
            roles=frozenset({Role.SINK}),
        ),
    ),
    extensions=(".xml",),
    arguments=(("root", "the root element: reading refuses another, a map to xml writes it"),
               ("namespace", "the namespace of its elements: names in paths are in it")),
)

DEFAULT_MAX_MEGABYTES = Decimal(100)
ATTRIBUTE_PREFIX = "attr_"
"""Keys of a map's output that are written as attributes: `attr_sku` is the attribute `sku`."""
TEXT_KEY = "_text"
"""The key of a map's output written as the element's own text (next to its attributes)."""

XSD_FOLDER = Path("schemas") / "xsd"
"""Where `schema "NAME"` is looked up first, relative to the folder crossdock runs in."""
BUNDLED_XSD = Path(__file__).resolve().parents[2] / "schemas" / "xsd"
"""The XSDs that come with crossdock (a repository checkout), looked up second."""

# Every switch that makes libxml2 fetch, expand or obey anything a document declares is off; a
# DOCTYPE is refused before parsing anyway (see _refuse_doctype), so these are the second line of defence.
_HARDENED: dict[str, Any] = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "dtd_validation": False,
    "attribute_defaults": False,
    "huge_tree": False,
}

_STRING_VALUE = etree.XPath("string()", smart_strings=False)
_CLARK = re.compile(r"'\{[^}]*\}([^']*)'")
_DOCTYPE = re.compile(r"<!DOCTYPE\b")
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_MISC = re.compile(r"\ufeff|\s+|<\?.*?\?>|<!--.*?-->", re.S)  # what may stand before a DOCTYPE
_XML_DECLARATION = re.compile(r"\A\s*<\?xml\b.*?\?>", re.S)
_ENCODING = re.compile(rb"""<\?xml\b[^>]*?\bencoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_PROLOG_WINDOWS = (1 << 16, 1 << 20)  # bytes read to find a DOCTYPE; even: UTF-16 is cut between characters


# ---- values handed to maps and route steps -------------------------------------------------------


class XmlNode:
    """An element read as a node: one with child elements, or with attributes and no text.

    Paths go on from it (`for each Item` then `sku`), a sink writes it as XML; it is not text, so a
    function that needs text or a number refuses it with its name in the message.
    """

    __slots__ = ("element",)

    def __init__(self, element: etree._Element) -> None:
        self.element = element

    def __bool__(self) -> bool:
        return True  # an element that exists is present (lxml's own truth value counts children)

    def __repr__(self) -> str:
        return f"<{etree.QName(self.element).localname}> element"

    __str__ = __repr__


class XmlText(str):
    """The text of an element that also has attributes: `"12.50"` for `<Price channel="web">12.50</Price>`.

    It is text for functions and comparisons, and paths still reach the element's attributes, so
    `for each Price` can read `channel` and the price itself.
    """

    element: etree._Element

    def __new__(cls, text: str, element: etree._Element) -> XmlText:
        value = super().__new__(cls, text)
        value.element = element
        return value


def element_value(element: etree._Element) -> XmlNode | XmlText | str | None:
    """What an element is worth as a value in a map or a condition.

    An element with child elements, or with attributes and no text, is an :class:`XmlNode`; one
    with attributes and text is an :class:`XmlText`; a plain element is its text, or None (missing)
    when it is empty, as an empty X12 element is.
    """
    if element.find("*") is not None:
        return XmlNode(element)
    # comments and processing instructions are children too: then the text comes in pieces
    text = element.text if len(element) == 0 else _STRING_VALUE(element)
    if element.attrib:
        return XmlText(text, element) if text else XmlNode(element)
    return text or None


def element_of(value: Any) -> etree._Element | None:
    """The element behind a value read from XML (an element, an XmlNode or an XmlText), else None."""
    if isinstance(value, etree._Element):
        return value
    if isinstance(value, XmlNode | XmlText):
        return value.element
    return None


# ---- schemas -------------------------------------------------------------------------------------


class SchemaUnavailable(PermanentError):
    """The XSD named by `schema` cannot be found, read or compiled: a deployment problem (D209)."""

    code = "D209"


@dataclass(frozen=True)
class SchemaProblem:
    """One XSD validation error: its line (None when streaming), element path and message."""

    line: int | None
    path: str | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in (("line", self.line), ("path", self.path), ("message", self.message))
                if v is not None}

    def __str__(self) -> str:
        where = [f"line {self.line}" if self.line else "", self.path or ""]
        return f"{', '.join(w for w in where if w) or 'document'}: {self.message}"


class SchemaInvalid(DecodeError):
    """A document read does not match its XSD (D208); `problems` holds every error."""

    def __init__(self, schema: str, problems: list[SchemaProblem]) -> None:
        first = problems[0]
        super().__init__(_problems_text(f"the document does not match {schema}", problems),
                         Position(line=first.line, path=first.path), code="D208")
        self.problems = problems
        self.details["problems"] = [p.as_dict() for p in problems]


@dataclass(frozen=True)
class XmlSchema:
    """A compiled XSD and what lint and the runtime need to know of it."""

    name: str
    path: Path
    xsd: etree.XMLSchema
    document: etree._ElementTree

    def problems(self, root: etree._Element) -> list[SchemaProblem]:
        """Every error of validating `root`, or [] when it is valid."""
        if self.xsd.validate(root):
            return []
        tree = root.getroottree()
        return [SchemaProblem(entry.line or None, _readable_path(tree, entry.path), _CLARK.sub(r"'\1'", entry.message))
                for entry in self.xsd.error_log]


_SCHEMAS: dict[Path, tuple[int, XmlSchema]] = {}


def schema_places(name: str) -> list[Path]:
    """Where `schema "name"` is looked for, in order: an absolute path as it is, else schemas/xsd/
    of the folder crossdock runs in, then the XSDs shipped with crossdock."""
    candidate = Path(name)
    if candidate.is_absolute():
        return [candidate]
    return list(dict.fromkeys([Path.cwd() / XSD_FOLDER / candidate, BUNDLED_XSD / candidate]))


def load_schema(name: str) -> XmlSchema:
    """The compiled XSD `name` (see :func:`schema_places`); cached until the file changes."""
    places = schema_places(name)
    path = next((p for p in places if p.is_file()), None)
    if path is None:
        raise SchemaUnavailable(f"no XSD '{name}': looked in " + ", ".join(str(p.parent) for p in places))
    stamp = path.stat().st_mtime_ns
    cached = _SCHEMAS.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    try:
        document = etree.parse(str(path), etree.XMLParser(**_HARDENED))
        xsd = etree.XMLSchema(document)
    except etree.XMLSyntaxError as error:
        raise SchemaUnavailable(f"the XSD '{name}' ({path}) is not well-formed XML: {error}") from None
    except etree.XMLSchemaParseError as error:
        raise SchemaUnavailable(f"'{name}' ({path}) is not a usable XSD: {error}") from None
    schema = XmlSchema(name, path, xsd, document)
    _SCHEMAS[path] = (stamp, schema)
    return schema


def _readable_path(tree: etree._ElementTree, path: str | None) -> str | None:
    """libxml2's `/*/*[2]` as `PriceList/Item[2]`: local names, positions among same-named siblings."""
    if not path:
        return None
    try:
        found = tree.xpath(path)
    except etree.XPathError:
        return path
    if not found or not isinstance(found[0], etree._Element):
        return path
    parts: list[str] = []
    element: etree._Element | None = found[0]
    while element is not None:
        name = etree.QName(element).localname
        parent = element.getparent()
        if parent is not None:
            same = [e for e in parent if isinstance(e.tag, str) and etree.QName(e).localname == name]
            if len(same) > 1:
                name += f"[{same.index(element) + 1}]"
        parts.append(name)
        element = parent
    return "/".join(reversed(parts))


def _problems_text(head: str, problems: list[SchemaProblem]) -> str:
    shown = "; ".join(str(p) for p in problems[:5])
    more = f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
    return f"{head} ({len(problems)} error{'s' if len(problems) > 1 else ''}): {shown}{more}"


# ---- reading -------------------------------------------------------------------------------------


def _check_size(data: bytes, options: Mapping[str, Any]) -> None:
    limit = Decimal(options.get("max_megabytes") or DEFAULT_MAX_MEGABYTES)
    if len(data) > limit * 1_000_000:
        raise DecodeError(f"the payload is {len(data) / 1_000_000:.1f} MB, more than `max megabytes {limit}` "
                          "allows", Position(offset=int(limit * 1_000_000)), code="D206")


def _head(data: bytes, size: int = _PROLOG_WINDOWS[-1]) -> str:
    """The first `size` bytes of the document as text, decoded as libxml2 would: BOM, XML declaration,
    else UTF-8."""
    head = data[:size]
    if head.startswith(codecs.BOM_UTF8):
        codec = "utf-8-sig"
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        codec = "utf-16"
    elif head.startswith(b"<\x00"):
        codec = "utf-16-le"
    elif head.startswith(b"\x00<"):
        codec = "utf-16-be"
    else:
        declared = _ENCODING.match(head)
        codec = declared.group(1).decode("ascii") if declared else "utf-8"
    try:
        return head.decode(codec, errors="replace")
    except LookupError:  # an encoding Python does not know: libxml2 will say what it thinks of it
        return head.decode("utf-8", errors="replace")


def _after_misc(text: str) -> int:
    """Where the prolog's comments, processing instructions and white space end in `text`."""
    position = 0
    while (match := _MISC.match(text, position)) is not None:
        position = match.end()
    return position


def _doctype_end(text: str, start: int) -> int | None:
    """The end of the DOCTYPE at `start` (just after its `>`), or None when `text` ends before it."""
    quote, depth, index = "", 0, start + len("<!DOCTYPE")
    while index < len(text):
        char = text[index]
        if quote:
            quote = "" if char == quote else quote
        elif text.startswith("<!--", index):
            index = text.find("-->", index)
            if index < 0:
                return None
            index += 2
        elif char in "'\"":
            quote = char
        elif char in "[]":
            depth += 1 if char == "[" else -1
        elif char == ">" and depth <= 0:
            return index + 1
        index += 1
    return None


def _prolog(data: bytes) -> tuple[str, int | None] | None:
    """The document's start as text and the end of its DOCTYPE in it (None: past the text), or None
    when it has no DOCTYPE. A small window is decoded first, a larger one if the prolog runs past it."""
    small, large = _PROLOG_WINDOWS
    text = _head(data, small)
    if len(data) > small:
        position = _after_misc(text)
        rest = text[position:]
        cut = (len(rest) < len("<!DOCTYPE") and "<!DOCTYPE".startswith(rest)) or rest.startswith(("<!--", "<?")) \
            or (rest.startswith("<!DOCTYPE") and _doctype_end(text, position) is None)
        if cut:
            text = _head(data, large)
    position = _after_misc(text)
    if not text.startswith("<!DOCTYPE", position):
        return None
    return text, _doctype_end(text, position)


def _position_in(text: str, pattern: re.Pattern[str]) -> Position:
    """Where `pattern` first matches `text` outside comments, as a line and column."""
    blanked = _COMMENT.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), text)  # keeps lines and columns
    match = pattern.search(blanked)
    if match is None:
        return Position()
    start = match.start()
    return Position(line=blanked.count("\n", 0, start) + 1, column=start - (blanked.rfind("\n", 0, start) + 1) + 1)


def _refuse_doctype(data: bytes) -> None:
    """Refuse a document with a DOCTYPE before parsing it, naming its most dangerous part (D205, D204,
    D203): parsing the whole document first could fail on what the DOCTYPE declares (an entity too
    large to expand, a reference to an external one) and hide the real problem."""
    found = _prolog(data)
    if found is None:
        return
    text, end = found
    entities: list[Any] = []
    system_url = None
    if end is not None:
        # the prolog alone, closed by an empty root: its declarations are read, none of them is used
        prolog = _XML_DECLARATION.sub(lambda m: " " * len(m.group()), text[:end], count=1)
        try:
            info = etree.fromstring(f"{prolog}<_/>".encode(), etree.XMLParser(**_HARDENED)).getroottree().docinfo
        except etree.XMLSyntaxError:
            info = None  # a broken DOCTYPE is refused all the same
        if info is not None:
            entities = list(info.internalDTD.iterentities()) if info.internalDTD is not None else []
            system_url = info.system_url
    external = [e for e in entities if e.system_url]
    if external:
        entity = external[0]
        raise DecodeError(
            f"external entity '{entity.name}' ({entity.system_url}) refused: a document may not make crossdock "
            "read files or URLs (XXE); DOCTYPE declarations are never processed",
            _position_in(text, re.compile(rf"<!ENTITY\s+(%\s+)?{re.escape(entity.name)}\b")), code="D205")
    if entities:
        names = ", ".join(f"'{e.name}'" for e in entities[:5])
        raise DecodeError(
            f"entity declarations refused ({names}): entities can expand a small document into gigabytes "
            "(billion laughs); DOCTYPE declarations are never processed",
            _position_in(text, re.compile(rf"<!ENTITY\s+(%\s+)?{re.escape(entities[0].name)}\b")), code="D204")
    loads = f": the DTD {system_url} is not loaded" if system_url else ""
    raise DecodeError(f"a DOCTYPE declaration is refused{loads}; DTDs are never processed, remove the DOCTYPE line",
                      _position_in(text, _DOCTYPE), code="D203")


def _no_doctype(data: bytes, tree: etree._ElementTree) -> None:
    """The parser's own view, in case a DOCTYPE got past `_refuse_doctype` (an encoding it misread)."""
    if tree.docinfo.doctype:
        raise DecodeError("a DOCTYPE declaration is refused; DTDs are never processed",
                          _position_in(_head(data), _DOCTYPE), code="D203")


def _syntax_error(error: etree.XMLSyntaxError, log: etree._ListErrorLog) -> DecodeError:
    # libxml2 logs the cause first and its consequences after it ("PCDATA invalid Char value")
    entry = log[0] if len(log) else None
    if entry is not None:
        message, line, column = entry.message.strip(), entry.line, entry.column
    else:
        message, (line, column) = error.msg, error.position
    return DecodeError(f"malformed XML: {message}", Position(line=line or None, column=column or None), code="D201")


def _parse(data: bytes) -> etree._Element:
    if not data.strip():
        raise DecodeError("the payload is empty: expected an XML document", Position(line=1, column=1), code="D202")
    _refuse_doctype(data)
    parser = etree.XMLParser(**_HARDENED)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as error:
        raise _syntax_error(error, parser.error_log) from None
    _no_doctype(data, root.getroottree())
    return root


def _check_root(root: etree._Element, options: Mapping[str, Any]) -> None:
    """D207 when `root`/`namespace` were given (`read xml "PriceList" "urn:..."`) and the document differs."""
    expected, namespace = options.get("root"), options.get("namespace")
    name = etree.QName(root)
    if (expected and name.localname != expected) or (namespace is not None and (name.namespace or "") != namespace):
        wanted = f"<{expected or name.localname}>" + (f" in namespace '{namespace}'" if namespace else "")
        got = f"<{name.localname}>" + (f" in namespace '{name.namespace}'" if name.namespace else " in no namespace")
        raise DecodeError(f"expected a document {wanted}, got {got}",
                          Position(line=root.sourceline, path=name.localname), code="D207")


def decode(data: bytes, options: Mapping[str, Any] | None = None) -> etree._Element | ElementStream:
    """The root element of the XML document in `data`, checked as the options say; with `split on`,
    an :class:`ElementStream` instead. Raises DecodeError (see the module docstring)."""
    options = options or {}
    _check_size(data, options)
    schema = load_schema(options["schema"]) if options.get("schema") else None
    if options.get("split_on"):
        return ElementStream(data, str(options["split_on"]), options, schema)
    root = _parse(data)
    _check_root(root, options)
    if schema is not None:
        problems = schema.problems(root)
        if problems:
            raise SchemaInvalid(schema.name, problems)
    return root


class ElementStream:
    """A document read with `split on`: its elements of one local name, one at a time, once.

    Each element handed out is complete, with its attributes, children and in-scope namespaces; it
    is taken out of the tree when the next one is read, so nothing accumulates (an element kept
    by the caller stays valid). Elements of the name nested inside another are left in it. The
    DOCTYPE refusal, the root check and the schema (validated in a first pass) apply as in
    :func:`decode`; a malformed document raises D201 at the point where it breaks, after the
    elements before it were handed out.
    """

    def __init__(self, data: bytes, name: str, options: Mapping[str, Any], schema: XmlSchema | None) -> None:
        self.data = data
        self.name = name
        self.options = options
        self.schema = schema
        self._used = False

    def __repr__(self) -> str:
        return f"<stream of <{self.name}> elements>"

    def __iter__(self) -> Iterator[etree._Element]:
        if self._used:
            raise PermanentError(f"the stream of <{self.name}> elements was already read: a document read with "
                                 "`split on` is read once, by `for each`", code="D212")
        self._used = True
        if not self.data.strip():
            raise DecodeError("the payload is empty: expected an XML document", Position(line=1, column=1),
                              code="D202")
        _refuse_doctype(self.data)
        if self.schema is not None:
            self._validate(self.schema)
        return self._elements()

    def _events(self, **extra: Any) -> Any:
        return etree.iterparse(io.BytesIO(self.data), events=("end",), **_HARDENED, **extra)

    def _validate(self, schema: XmlSchema) -> None:
        """A streaming pass that validates the whole document, dropping each element once it ended."""
        events = self._events(schema=schema.xsd)
        started = False
        try:
            for _, element in events:
                if not started:
                    self._checked_start(element)
                    started = True
                element.clear(keep_tail=False)
                while element.getprevious() is not None:
                    del element.getparent()[0]
        except etree.XMLSyntaxError as error:
            # validation while streaming knows no lines: libxml2 reports them only against a whole tree
            found = [SchemaProblem(None, None, _CLARK.sub(r"'\1'", entry.message)) for entry in events.error_log
                     if entry.domain == etree.ErrorDomains.SCHEMASV]
            if found:
                raise SchemaInvalid(schema.name, found) from None
            raise _syntax_error(error, events.error_log) from None

    def _checked_start(self, element: etree._Element) -> None:
        """The parser's DOCTYPE check and the root check, once it has seen the document's start."""
        tree = element.getroottree()
        _no_doctype(self.data, tree)
        _check_root(tree.getroot(), self.options)

    def _elements(self) -> Iterator[etree._Element]:
        events = self._events(tag=f"{{*}}{self.name}")
        previous: etree._Element | None = None
        started = False
        try:
            for _, element in events:
                if not started:
                    self._checked_start(element)
                    started = True
                if any(etree.QName(a).localname == self.name for a in element.iterancestors()):
                    continue  # an inner match: part of the outer element, handed out with it
                if previous is not None:
                    _detach(previous)
                previous = element
                yield element
            if not started and events.root is not None:
                self._checked_start(events.root)
        except etree.XMLSyntaxError as error:
            raise _syntax_error(error, events.error_log) from None
        finally:
            if previous is not None:
                _detach(previous)


def _detach(element: etree._Element) -> None:
    parent = element.getparent()
    if parent is not None:
        parent.remove(element)


# ---- writing -------------------------------------------------------------------------------------


class _Unwritable(Exception):
    """A value `build` cannot write; `where` is the key path of it in the object."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(reason)
        self.where = where
        self.reason = reason


def _text(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"  # xs:boolean
    if isinstance(value, str):
        return str.__str__(value)  # plain text, also for a subclass (a canonical Unit)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise _Unwritable(where, f"{value} is not a finite number")
        if abs(value.adjusted()) > MAX_EXPONENT:  # written out, it would be that many digits long
            raise _Unwritable(where, f"a number with exponent {value.adjusted()} is out of range")
        return format(value, "f")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    raise _Unwritable(where, f"a value of type {type(value).__name__} has no XML text form")


def _fill(element: etree._Element, value: Any, where: str, namespace: str | None) -> None:
    """Write `value` into `element`: an object's keys as children and attributes, a scalar as text."""
    if not isinstance(value, dict):
        if isinstance(value, list):
            raise _Unwritable(where, "a list inside a list has no XML form; give each item a name of its own")
        _put_text(element, value, where)
        return
    for key, item in value.items():
        path = f"{where}.{key}" if where else key
        if item is None:
            continue  # missing values are left out, as they are in JSON
        if key == TEXT_KEY:
            _put_text(element, item, path)
        elif key.startswith(ATTRIBUTE_PREFIX):
            if isinstance(item, dict | list):
                raise _Unwritable(path, "an attribute holds text, not an object or a list")
            try:
                element.set(key[len(ATTRIBUTE_PREFIX):], _text(item, path))
            except ValueError as error:
                raise _Unwritable(path, str(error)) from None
        else:
            for index, child in enumerate(item if isinstance(item, list) else [item]):
                if child is None:
                    continue
                name = f"{{{namespace}}}{key}" if namespace else key
                try:
                    sub = etree.SubElement(element, name)
                except ValueError as error:
                    raise _Unwritable(path, str(error)) from None
                _fill(sub, child, f"{path}[{index}]" if isinstance(item, list) else path, namespace)


def _put_text(element: etree._Element, value: Any, where: str) -> None:
    if isinstance(value, dict | list):
        raise _Unwritable(where, "the element's text is text, not an object or a list")
    try:  # lxml refuses what XML 1.0 cannot carry (NUL, most control characters)
        element.text = _text(value, where)
    except ValueError as error:
        raise _Unwritable(where, str(error)) from None


def build(value: Mapping[str, Any], root: str, namespace: str | None = None) -> etree._Element:
    """The element `root` (in `namespace`, declared as the default namespace) holding `value`.

    Keys are child elements, in order; a list is one element per item; `attr_NAME` is the attribute
    NAME; `_text` is the element's own text; None is left out. Numbers are written exactly
    (Decimal without an exponent), true/false as `true`/`false`, dates in ISO 8601.
    Raises PermanentError (D210) naming the key that cannot be written.
    """
    try:
        try:
            element = etree.Element(f"{{{namespace}}}{root}" if namespace else root,
                                    nsmap={None: namespace} if namespace else None)
        except ValueError as error:
            raise _Unwritable("(root)", str(error)) from None
        _fill(element, dict(value), "", namespace)
    except _Unwritable as problem:
        raise PermanentError(f"cannot write the body as XML: {problem.where}: {problem.reason}", code="D210") from None
    return element


def encode(value: Any, options: Mapping[str, Any] | None = None) -> bytes:
    """`value` as an XML document in UTF-8 with an XML declaration.

    An element read from XML (or an XmlNode, XmlText) is written as it is; an object is built with
    :func:`build` under the `root` and `namespace` options. With `schema`, the result is validated
    first (D211).
    """
    options = options or {}
    element = element_of(value)
    if element is None:
        if not isinstance(value, dict):
            raise PermanentError(f"cannot write a value of type {type(value).__name__} as an XML document: "
                                 "write an object (a map's output) or an element", code="D210")
        root = options.get("root")
        if not root:
            raise PermanentError('an object written as XML needs a root element: add `root "Name"` to the sink',
                                 code="D210")
        element = build(value, root, options.get("namespace"))
    pretty = bool(options.get("pretty"))
    if pretty:
        element = _indented(element)
    if options.get("schema"):
        schema = load_schema(options["schema"])
        problems = schema.problems(element)
        if problems:
            raise PermanentError(_problems_text(f"the XML written does not match {schema.name}", problems),
                                 code="D211", details={"problems": [p.as_dict() for p in problems]})
    return etree.tostring(element, xml_declaration=True, encoding="UTF-8", pretty_print=pretty, with_tail=False)


def _indented(element: etree._Element) -> etree._Element:
    """A copy of `element` indented by two spaces (whitespace it already has between elements is redone)."""
    copy = etree.fromstring(etree.tostring(element, with_tail=False), etree.XMLParser(**_HARDENED))
    etree.indent(copy, space="  ")
    return copy


__all__ = [
    "ATTRIBUTE_PREFIX",
    "SPEC",
    "TEXT_KEY",
    "ElementStream",
    "SchemaInvalid",
    "SchemaProblem",
    "SchemaUnavailable",
    "XmlNode",
    "XmlSchema",
    "XmlText",
    "build",
    "decode",
    "element_of",
    "element_value",
    "encode",
    "load_schema",
    "schema_places",
]
