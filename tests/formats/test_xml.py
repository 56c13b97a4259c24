"""The XML format: hardened reading, error positions, XSD validation, writing, and streaming in bounded memory."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
import tracemalloc
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from crossdock.engine.errors import DecodeError, PermanentError, Position
from crossdock.formats import xml as xml_format
from crossdock.formats.base import format_spec, load_format
from crossdock.formats.xml import ElementStream, SchemaInvalid, SchemaUnavailable, XmlNode, XmlText

FIXTURES = Path(__file__).parent / "fixtures" / "xml"
VALID = (FIXTURES / "pricelist-valid.xml").read_bytes()
INVALID = (FIXTURES / "pricelist-invalid.xml").read_bytes()
NS = "urn:erp:pricelist:v1"


def decode_error(data: bytes, **options: object) -> DecodeError:
    with pytest.raises(DecodeError) as excinfo:
        result = xml_format.decode(data, options)
        if isinstance(result, ElementStream):
            list(result)
    return excinfo.value


def where(error: DecodeError) -> tuple[str, int | None, int | None]:
    return error.code, error.position.line, error.position.column


# ---- hardening -----------------------------------------------------------------------------------


def test_an_external_entity_is_refused_and_the_file_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE", encoding="utf-8")
    data = (f'<?xml version="1.0"?>\n<!DOCTYPE PriceList [\n  <!ENTITY xxe SYSTEM "file://{secret}">\n]>\n'
            f'<PriceList id="&xxe;"><Item>&xxe;</Item></PriceList>').encode()
    error = decode_error(data)
    assert where(error) == ("D205", 3, 3)
    assert "xxe" in error.message and "XXE" in error.message
    assert "TOP-SECRET-VALUE" not in str(error.to_dict())


def test_an_external_parameter_entity_is_refused(tmp_path: Path) -> None:
    evil = tmp_path / "evil.dtd"
    evil.write_text('<!ENTITY leak "LEAKED">', encoding="utf-8")
    data = (f'<?xml version="1.0"?>\n<!DOCTYPE r [\n<!ENTITY % ext SYSTEM "file://{evil}">\n%ext;\n]>\n'
            f'<r>&leak;</r>').encode()
    error = decode_error(data)
    assert where(error) == ("D205", 3, 1)
    assert "LEAKED" not in str(error.to_dict())


def test_billion_laughs_is_refused_at_the_first_entity_without_expanding_anything() -> None:
    lines = ['<?xml version="1.0"?>', "<!DOCTYPE lolz [", ' <!ENTITY lol "lol">']
    for n in range(1, 10):
        previous = f"lol{n - 1}" if n > 1 else "lol"
        lines.append(f' <!ENTITY lol{n} "{("&" + previous + ";") * 10}">')
    lines += ["]>", "<lolz>&lol9;</lolz>"]
    started = time.perf_counter()
    error = decode_error("\n".join(lines).encode())
    assert time.perf_counter() - started < 1  # a billion "lol"s were never built
    assert where(error) == ("D204", 3, 2)
    assert "billion laughs" in error.message and "'lol'" in error.message


def test_an_external_dtd_is_refused_and_not_loaded() -> None:
    data = b'<?xml version="1.0"?>\n<!-- <!DOCTYPE decoy> -->\n<!DOCTYPE r SYSTEM "http://127.0.0.1:9/r.dtd">\n<r/>'
    error = decode_error(data)
    assert where(error) == ("D203", 3, 1)  # the DOCTYPE in the comment is not the one
    assert "http://127.0.0.1:9/r.dtd" in error.message


def test_any_doctype_is_refused() -> None:
    assert where(decode_error(b"<!DOCTYPE r>\n<r/>")) == ("D203", 1, 1)


def test_a_doctype_behind_a_long_prolog_or_in_utf16_is_found() -> None:
    long_prolog = b"<?xml version='1.0'?>\n<!--" + b"x" * 100_000 + b'-->\n<!DOCTYPE r [<!ENTITY e "e">]><r>&e;</r>'
    assert where(decode_error(long_prolog)) == ("D204", 3, 14)
    utf16 = '<?xml version="1.0" encoding="UTF-16"?>\n<!DOCTYPE r [<!ENTITY e SYSTEM "/etc/passwd">]><r>&e;</r>'
    assert where(decode_error(utf16.encode("utf-16"))) == ("D205", 2, 14)


def test_streaming_refuses_a_doctype_too(tmp_path: Path) -> None:
    data = b'<?xml version="1.0"?>\n<!DOCTYPE r [\n <!ENTITY x SYSTEM "file:///etc/passwd">\n]>\n<r><Item>&x;</Item></r>'
    assert where(decode_error(data, split_on="Item")) == ("D205", 3, 2)


# ---- malformed input -----------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "line", "column", "words"), [
    (b"<PriceList>\n  <Item>\n</PriceList>", 3, 13, "mismatch"),
    (b'<a>\n <b x="1" x="2"/>\n</a>', 2, 16, "redefined"),
    (b"<a>\x00</a>", 1, 4, "Char 0x0"),
    (b"<a>&undefined;</a>", 1, 15, "undefined"),
    (b"<a></a>\n<b/>", 2, 1, "Extra content"),
    (b"\xef\xbb\xbf<a>caf\xe9</a>", 1, 7, "Invalid bytes"),
])
def test_malformed_xml_has_the_line_and_column_of_the_problem(data: bytes, line: int, column: int, words: str) -> None:
    # the column is where libxml2 noticed the problem: at the end of the tag or attribute at fault
    error = decode_error(data)
    assert where(error) == ("D201", line, column), error.message
    assert words.lower() in error.message.lower()


def test_an_empty_payload_is_d202() -> None:
    assert where(decode_error(b" \n\t ")) == ("D202", 1, 1)


def test_the_size_limit_is_checked_before_parsing() -> None:
    data = b"<r>" + b"<Item/>" * 200_000 + b"</r>"  # 1.4 MB
    error = decode_error(data, max_megabytes=Decimal(1))
    assert error.code == "D206" and error.position == Position(offset=1_000_000)
    assert xml_format.decode(data, {"max_megabytes": Decimal(2)}).tag == "r"


def test_the_root_element_and_its_namespace_are_checked_when_given() -> None:
    assert xml_format.decode(VALID, {"root": "PriceList", "namespace": NS}).tag == f"{{{NS}}}PriceList"
    wrong_root = decode_error(VALID, root="Order")
    assert where(wrong_root) == ("D207", 2, None) and "<Order>" in wrong_root.message
    wrong_namespace = decode_error(VALID, root="PriceList", namespace="urn:erp:pricelist:v2")
    assert wrong_namespace.code == "D207" and f"got <PriceList> in namespace '{NS}'" in wrong_namespace.message
    assert decode_error(b"<PriceList/>", namespace=NS).code == "D207"


# ---- XSD validation ------------------------------------------------------------------------------


def test_a_valid_document_passes_its_schema() -> None:
    root = xml_format.decode(VALID, {"schema": "pricelist.xsd"})
    assert root.get("id") == "PL-2026-Q1"


def test_an_invalid_document_lists_every_error_with_line_and_path() -> None:
    with pytest.raises(SchemaInvalid) as excinfo:
        xml_format.decode(INVALID, {"schema": "pricelist.xsd"})
    error = excinfo.value
    assert error.code == "D208"
    assert [(p.line, p.path) for p in error.problems] == [
        (2, "PriceList"), (4, "PriceList/Item[1]/Price"), (6, "PriceList/Item[2]"), (7, "PriceList/Item[2]/Price")]
    assert "'12,50' is not a valid value of the atomic type 'MoneyType'" in error.problems[1].message
    assert "attribute 'sku' is required" in error.problems[2].message
    assert error.position == Position(line=2, path="PriceList")
    stored = error.to_dict()
    assert stored["code"] == "D208" and len(stored["problems"]) == 4 and stored["problems"][1]["line"] == 4


def test_a_streamed_document_is_validated_before_any_element_is_handed_out() -> None:
    stream = xml_format.decode(INVALID, {"schema": "pricelist.xsd", "split_on": "Item"})
    handed_out = []
    with pytest.raises(SchemaInvalid) as excinfo:
        handed_out.extend(stream)
    assert handed_out == []
    assert len(excinfo.value.problems) == 4 and all(p.line is None for p in excinfo.value.problems)


def test_a_schema_that_cannot_be_found_or_compiled_is_d209(tmp_path: Path) -> None:
    with pytest.raises(SchemaUnavailable) as missing:
        xml_format.decode(VALID, {"schema": "no-such.xsd"})
    assert missing.value.code == "D209" and "schemas/xsd" in missing.value.message
    broken = tmp_path / "broken.xsd"
    broken.write_text('<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"><xs:element/></xs:schema>')
    with pytest.raises(SchemaUnavailable) as unusable:
        xml_format.decode(VALID, {"schema": str(broken)})
    assert "not a usable XSD" in unusable.value.message


def test_schemas_are_looked_up_in_the_working_folder_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "schemas" / "xsd"
    folder.mkdir(parents=True)
    (folder / "pricelist.xsd").write_text(
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"><xs:element name="Other"/></xs:schema>')
    monkeypatch.chdir(tmp_path)
    assert xml_format.schema_places("pricelist.xsd")[0] == folder / "pricelist.xsd"
    with pytest.raises(SchemaInvalid):  # the deployment's own pricelist.xsd wins over the bundled one
        xml_format.decode(VALID, {"schema": "pricelist.xsd"})


# ---- values --------------------------------------------------------------------------------------


def test_element_values() -> None:
    root = etree.fromstring(b'<r><a>text</a><b/><c x="1">12.50</c><d x="1"/><e><f/></e><g>x<!--c-->y</g></r>')
    a, b, c, d, e, g = (root.find(tag) for tag in "abcdeg")
    assert xml_format.element_value(a) == "text" and type(xml_format.element_value(a)) is str
    assert xml_format.element_value(b) is None
    price = xml_format.element_value(c)
    assert isinstance(price, XmlText) and price == "12.50" and price.element is c
    assert isinstance(xml_format.element_value(d), XmlNode)
    node = xml_format.element_value(e)
    assert isinstance(node, XmlNode) and node.element is e and bool(node) and str(node) == "<e> element"
    assert xml_format.element_value(g) == "xy"


# ---- writing -------------------------------------------------------------------------------------


def test_objects_are_written_with_escaping_namespaces_attributes_and_exact_numbers() -> None:
    body = {
        "attr_id": 'PL "1" & <2>',
        "Description": "Câble 2 m — «premium» <b> & 'quotes'",
        "Item": [{"attr_sku": "A&B", "Price": {"attr_channel": "web", "_text": Decimal("12.50")}},
                 {"attr_sku": "Ü-2", "Price": [Decimal("1E+2"), Decimal("0.10")], "Active": True}],
        "Missing": None,
    }
    data = xml_format.encode(body, {"root": "PriceList", "namespace": NS})
    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>\n<PriceList xmlns=\"urn:erp:pricelist:v1\"")
    assert b'id="PL &quot;1&quot; &amp; &lt;2&gt;"' in data
    assert "<Description>Câble 2 m — «premium» &lt;b&gt; &amp; 'quotes'</Description>".encode() in data
    assert b"<Price>100</Price><Price>0.10</Price><Active>true</Active>" in data
    assert b"Missing" not in data
    root = etree.fromstring(data)
    items = root.findall(f"{{{NS}}}Item")
    assert root.get("id") == 'PL "1" & <2>'
    assert root.findtext(f"{{{NS}}}Description") == "Câble 2 m — «premium» <b> & 'quotes'"
    assert [item.get("sku") for item in items] == ["A&B", "Ü-2"]
    assert items[0].find(f"{{{NS}}}Price").attrib == {"channel": "web"}
    assert items[0].findtext(f"{{{NS}}}Price") == "12.50"


def test_pretty_output_is_indented_and_ends_with_a_newline() -> None:
    data = xml_format.encode({"Item": {"attr_sku": "A"}}, {"root": "R", "pretty": True})
    assert data.decode() == "<?xml version='1.0' encoding='UTF-8'?>\n<R>\n  <Item sku=\"A\"/>\n</R>\n"


def test_an_element_read_is_written_as_it_is() -> None:
    root = xml_format.decode(VALID, {})
    assert etree.fromstring(xml_format.encode(root, {})).get("currency") == "USD"
    item = XmlNode(root.find(f"{{{NS}}}Item"))
    written = xml_format.encode(item, {"pretty": True})
    assert written.startswith(b"<?xml version='1.0' encoding='UTF-8'?>\n<Item xmlns=\"urn:erp:pricelist:v1\"")
    assert etree.fromstring(written).get("sku") == "WID-100"
    assert root.find(f"{{{NS}}}Item") is item.element  # pretty writes an indented copy


@pytest.mark.parametrize(("body", "options", "words"), [
    ({"bad name": 1}, {"root": "R"}, "bad name: Invalid tag name"),
    ({"note": "nul\x00"}, {"root": "R"}, "note: All strings must be XML compatible"),
    ({"Item": [[1, 2]]}, {"root": "R"}, "Item[0]: a list inside a list"),
    ({"attr_sku": {"a": 1}}, {"root": "R"}, "attr_sku: an attribute holds text"),
    ({"when": object()}, {"root": "R"}, "when: a value of type object"),
    ({"price": Decimal("1E+999999999")}, {"root": "R"}, "price: a number with exponent 999999999 is out of range"),
    ({"price": Decimal("NaN")}, {"root": "R"}, "price: NaN is not a finite number"),
    ({"Item": {}}, {}, 'add `root "Name"`'),
    ({"Item": {}}, {"root": "1R"}, "(root): Invalid tag name"),
])
def test_what_cannot_be_written_is_d210(body: dict[str, object], options: dict[str, object], words: str) -> None:
    with pytest.raises(PermanentError) as excinfo:
        xml_format.encode(body, options)
    assert excinfo.value.code == "D210" and words in excinfo.value.message


def test_text_is_not_an_xml_document() -> None:
    with pytest.raises(PermanentError) as excinfo:
        xml_format.encode("<r/>", {})
    assert excinfo.value.code == "D210"


def test_the_written_document_is_validated_against_the_sink_schema() -> None:
    good = {"attr_id": "P1", "attr_currency": "USD", "attr_effective": "2026-01-01",
            "Item": {"attr_sku": "A", "Price": {"attr_channel": "web", "_text": Decimal("1.50")}}}
    options = {"root": "PriceList", "namespace": NS, "schema": "pricelist.xsd"}
    assert etree.fromstring(xml_format.encode(good, options)).get("id") == "P1"
    bad = {**good, "Item": {"Price": {"attr_channel": "shop", "_text": Decimal("1.50")}}}
    with pytest.raises(PermanentError) as excinfo:
        xml_format.encode(bad, options)
    assert excinfo.value.code == "D211"
    assert [p["path"] for p in excinfo.value.details["problems"]] == ["PriceList/Item", "PriceList/Item/Price"]


def test_decode_encode_round_trip_keeps_the_document() -> None:
    root = xml_format.decode(VALID, {})
    again = xml_format.decode(xml_format.encode(root, {}), {"schema": "pricelist.xsd"})
    assert etree.tostring(again, method="c14n") == etree.tostring(root, method="c14n")


# ---- streaming -----------------------------------------------------------------------------------


def test_a_stream_hands_out_each_element_complete_and_in_order() -> None:
    stream = xml_format.decode(VALID, {"split_on": "Item", "schema": "pricelist.xsd", "root": "PriceList"})
    assert isinstance(stream, ElementStream)
    seen = []
    for item in stream:
        seen.append((item.get("sku"), [p.text for p in item.iter(f"{{{NS}}}Price")]))
        assert item.getparent() is not None and item.getprevious().tag != item.tag  # the one before is gone
    assert seen == [("WID-100", ["12.50", "9.80", "11.00"]), ("GAD-200", ["120.00", "124.5"]), ("CAB-300", ["0.10"])]


def test_elements_kept_by_the_reader_stay_whole_and_nested_matches_stay_inside() -> None:
    data = b'<r xmlns="u"><Item n="1"><Item n="1.1"/></Item><Other/><Item n="2"/></r>'
    kept = list(xml_format.decode(data, {"split_on": "Item"}))
    assert [item.get("n") for item in kept] == ["1", "2"]
    assert [inner.get("n") for inner in kept[0]] == ["1.1"]
    assert all(item.getparent() is None for item in kept)


def test_a_stream_is_read_once() -> None:
    stream = xml_format.decode(VALID, {"split_on": "Item"})
    assert len(list(stream)) == 3
    with pytest.raises(PermanentError) as excinfo:
        list(stream)
    assert excinfo.value.code == "D212"


def test_a_stream_breaks_where_the_document_breaks() -> None:
    stream = xml_format.decode(b"<r>\n<Item>1</Item>\n<Item>2</Item>\n<Item>3</Itm>\n</r>", {"split_on": "Item"})
    seen = []
    with pytest.raises(DecodeError) as excinfo:
        seen.extend(item.text for item in stream)
    assert seen == ["1", "2"]
    assert where(excinfo.value) == ("D201", 4, 14)


def test_streaming_checks_the_root() -> None:
    assert decode_error(VALID, split_on="Item", root="Order").code == "D207"


def large_price_list(items: int) -> bytes:
    item = ('<Item sku="SKU-{n:07d}" unit="EA"><Description>Item number {n} with a longer description</Description>'
            '<Price channel="web">{n}.50</Price><Price channel="wholesale">{n}.10</Price></Item>\n')
    body = "".join(item.format(n=n) for n in range(items))
    return (f'<PriceList xmlns="{NS}" id="BIG" currency="USD" effective="2026-01-01">\n{body}</PriceList>').encode()


def test_streaming_a_large_file_keeps_python_memory_bounded() -> None:
    data = large_price_list(40_000)  # about 7.5 MB
    tracemalloc.start()
    try:
        count = 0
        for item in xml_format.decode(data, {"split_on": "Item"}):
            count += 1
            assert item.get("sku") == f"SKU-{count - 1:07d}"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 40_000
    assert peak < len(data) / 20, f"peak {peak} for {len(data)} bytes"


MEMORY_PROBE = textwrap.dedent("""
    import resource, sys
    from crossdock.formats import xml as xml_format
    with open(sys.argv[1], "rb") as payload:
        data = payload.read()
    def resident():
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize()
    if sys.argv[2] == "stream":
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        count = sum(1 for _ in xml_format.decode(data, {"split_on": "Item"}))
        growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
    else:
        # the tree is still alive when measured: what it holds now, not a peak an earlier step set
        before = resident()
        tree = xml_format.decode(data, {})
        count = len(tree)
        growth = resident() - before
    print(count, growth)
""")


def peak_growth(payload: Path, mode: str) -> tuple[int, int]:
    """How many items reading `payload` gave, and how much the process's peak resident memory grew meanwhile."""
    done = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(payload), mode], capture_output=True, text=True,
                          check=True, cwd=Path(__file__).resolve().parents[2])
    count, growth = (int(word) for word in done.stdout.split())
    return count, growth


def test_streaming_a_large_file_keeps_the_whole_process_memory_bounded(tmp_path: Path) -> None:
    # tracemalloc does not see libxml2's own memory; the process's peak does, the tree included
    payload = tmp_path / "big.xml"
    payload.write_bytes(large_price_list(150_000))  # about 28 MB
    size = payload.stat().st_size
    streamed_items, streamed = peak_growth(payload, "stream")
    whole_items, whole = peak_growth(payload, "tree")
    assert streamed_items == whole_items == 150_000
    assert streamed < size / 4, f"streaming grew the peak by {streamed} bytes for {size}"
    assert whole > size, f"the whole tree should cost more than the payload ({whole} for {size})"


# ---- registry ------------------------------------------------------------------------------------


def test_the_format_is_registered_with_its_spec() -> None:
    assert load_format("xml") is xml_format
    spec = format_spec("xml")
    assert spec.content_type == "application/xml" and spec.extensions == (".xml",)
    assert [name for name, _ in spec.arguments] == ["root", "namespace"]
    assert {o.name for o in spec.options} == {"schema", "split on", "max megabytes", "root", "namespace", "pretty"}
