"""XML in maps and routes: dotted paths with namespaces and attributes, conditions, xpath[...], lint against
the XSD, maps to XML read back, streams split by `for each`, and the ERP price list example's maps against their
golden files."""

from __future__ import annotations

import random
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest
from lxml import etree

from crossdock.cli import main as cli_main
from crossdock.dsl.diagnostics import Diagnostic
from crossdock.dsl.lint import lint
from crossdock.engine.clock import ManualClock
from crossdock.engine.engine import Engine, embedded_stores
from crossdock.engine.errors import MapError
from crossdock.engine.mapping.compiler import CompiledMap
from crossdock.engine.services import Services
from crossdock.formats import xml as xml_format

REPO = Path(__file__).resolve().parents[2]
PRICES = (REPO / "tests" / "formats" / "fixtures" / "xml" / "pricelist-valid.xml").read_bytes()
EXAMPLE = REPO / "examples" / "erp-pricelist"
NS = "urn:erp:pricelist:v1"


def lint_maps(tmp_path: Path, text: str) -> tuple[dict[str, CompiledMap], list[Diagnostic]]:
    (tmp_path / "m.route").write_text(textwrap.dedent(text), encoding="utf-8")
    result = lint([tmp_path])
    return (result.plan.maps if result.plan else {}), result.diagnostics


def xml_map(tmp_path: Path, body: str, source: str = "xml") -> CompiledMap:
    """Map "m" `from SOURCE to json` with `body` as its lines; it must lint clean."""
    text = f'map "m"\n  from {source}\n  to json\n{textwrap.indent(textwrap.dedent(body).strip(), "  ")}\nend\n'
    maps, diagnostics = lint_maps(tmp_path, text)
    assert diagnostics == [], [str(d) for d in diagnostics]
    return maps["m"]


def run(compiled: CompiledMap, data: bytes = PRICES) -> dict[str, Any]:
    return compiled.run(xml_format.decode(data, {}))


# ---- reading: names, namespaces, attributes ------------------------------------------------------


def test_attributes_elements_and_prices_read_as_exact_decimals(tmp_path: Path) -> None:
    out = run(xml_map(tmp_path, '''
        id = id
        currency = currency
        skus = Item.sku
        description = Description
        web = decimal(first(Item.Price[channel = "web"]))
        break_price = decimal(Item.Price[minQuantity = 10])
        total = sum(Item.Price[channel = "web" and minQuantity is missing])
        msrp = decimal(Item[0].Msrp)
    '''))
    assert out == {"id": "PL-2026-Q1", "currency": "USD", "skus": ["WID-100", "GAD-200", "CAB-300"],
                   "description": "Spring catalogue & web prices", "web": Decimal("12.50"),
                   "break_price": Decimal("11.00"), "total": Decimal("132.60"), "msrp": Decimal("14.99")}
    assert str(out["total"]) == "132.60"


@pytest.mark.parametrize("source", ['xml "PriceList" "urn:erp:pricelist:v1"', "xml"])
def test_names_are_in_the_namespace_given_else_in_the_documents_own(tmp_path: Path, source: str) -> None:
    assert run(xml_map(tmp_path, "skus = Item.sku", source)) == {"skus": ["WID-100", "GAD-200", "CAB-300"]}


def test_names_do_not_match_elements_of_another_namespace(tmp_path: Path) -> None:
    assert run(xml_map(tmp_path, "skus = Item.sku", 'xml "PriceList" "urn:erp:pricelist:v2"')) == {}


def test_an_empty_namespace_means_elements_without_one(tmp_path: Path) -> None:
    compiled = xml_map(tmp_path, "skus = Item.sku\ncount = count(Item)", 'xml "PriceList" ""')
    assert run(compiled) == {"count": 0}
    assert run(compiled, b'<PriceList><Item sku="A"/><Item sku="B"/></PriceList>') == {"skus": ["A", "B"], "count": 2}


def test_the_last_name_is_the_child_element_or_else_the_attribute(tmp_path: Path) -> None:
    data = b'<r><Item sku="attr-1"/><Item sku="attr-2"><sku>element-2</sku></Item></r>'
    out = run(xml_map(tmp_path, 'skus = Item.sku\nattributes = Item["@sku"]'), data)
    assert out == {"skus": ["attr-1", "element-2"], "attributes": ["attr-1", "attr-2"]}


def test_names_that_are_not_plain_words_and_prefixed_names(tmp_path: Path) -> None:
    data = (b'<Invoice xmlns="urn:oasis:Invoice-2" xmlns:cbc="urn:oasis:cbc" xmlns:cac="urn:oasis:cac">'
            b'<cbc:ID>INV-7</cbc:ID><Party><cac:Contact>Ann</cac:Contact><ship-to code="DAL"/></Party>'
            b'<cbc:Note xml:lang="fr">livr\xc3\xa9</cbc:Note></Invoice>')
    out = run(xml_map(tmp_path, '''
        table xmlns
          "cbc" -> "urn:oasis:cbc"
          "cac" -> "urn:oasis:cac"
        end
        id = xpath["cbc:ID"]
        contact = Party["cac:Contact"]
        ship_to = Party["ship-to"].code
        note = xpath["cbc:Note"]
        lang = xpath["cbc:Note/@xml:lang"]
    '''), data)
    assert out == {"id": "INV-7", "contact": "Ann", "ship_to": "DAL", "note": "livré", "lang": "fr"}


def test_conditions_compare_as_the_language_does(tmp_path: Path) -> None:
    out = run(xml_map(tmp_path, '''
        cheap = Item[Price < 1].sku
        not_web = Item.Price[channel != "web"]
        premium = Item[Description = "Câble 2 m — «premium»"].sku
        either = Item[unit in ("CS", "PK")].sku
        no_msrp = Item[not (Msrp is present)].sku
        reversed = Item["EA" = unit].sku
        numeric_text = Item.Price[minQuantity = 10.0]
        text_is_exact = count(Item.Price[minQuantity = "10.0"])
        plain_presence = Item[Description].sku
    '''))
    assert out == {"cheap": "CAB-300", "not_web": ["9.80", "124.5"], "premium": "CAB-300", "either": "GAD-200",
                   "no_msrp": ["GAD-200", "CAB-300"], "reversed": "WID-100", "numeric_text": "11.00",
                   "text_is_exact": 0, "plain_presence": ["WID-100", "CAB-300"]}


def test_text_in_conditions_needs_no_quoting(tmp_path: Path) -> None:
    data = b'<r><Item note="say &quot;hi&quot; it&apos;s ]" sku="A"/><Item note="x" sku="B"/></r>'
    out = run(xml_map(tmp_path, 'sku = Item[note = "say \\"hi\\" it\'s ]"].sku'), data)
    assert out == {"sku": "A"}


def test_an_index_is_the_nth_of_everything_read_so_far(tmp_path: Path) -> None:
    out = run(xml_map(tmp_path, 'first_price = Item.Price[0]\nsecond_item = Item[1].sku\nbeyond = Item[9].sku'))
    assert out == {"first_price": "12.50", "second_item": "GAD-200"}


def test_for_each_object_from_and_where_read_from_each_element(tmp_path: Path) -> None:
    out = run(xml_map(tmp_path, '''
        items = for each Item where Msrp is missing
          sku = sku
          n = loop.index
          prices = for each Price
            channel = channel
            amount = decimal(xpath["."])
          end
        end
        first = object from Item
          sku = sku
          unit = unit
        end
    '''))
    assert out == {
        "items": [{"sku": "GAD-200", "n": 1, "prices": [{"channel": "web", "amount": Decimal("120.00")},
                                                      {"channel": "marketplace", "amount": Decimal("124.5")}]},
                  {"sku": "CAB-300", "n": 2, "prices": [{"channel": "web", "amount": Decimal("0.10")}]}],
        "first": {"sku": "WID-100", "unit": "EA"},
    }


def test_xpath_reads_from_the_current_element_or_the_document_root(tmp_path: Path) -> None:
    out = run(xml_map(tmp_path, '''
        table xmlns
          "p" -> "urn:erp:pricelist:v1"
        end
        count = xpath["count(p:Item)"]
        web_sum = xpath["sum(p:Item/p:Price[@channel = 'web'])"]
        has_customer = xpath["boolean(p:Customer)"]
        items = for each Item
          sku = sku
          currency = xpath["/p:PriceList/@currency"]
          parent = xpath["local-name(..)"]
        end
    '''))
    assert out["count"] == Decimal(3) and out["has_customer"] is False
    assert out["web_sum"] == Decimal("143.6")  # XPath adds doubles: exact money takes sum() of the map
    assert out["items"][2] == {"sku": "CAB-300", "currency": "USD", "parent": "PriceList"}


def test_values_of_elements_with_children_are_nodes_not_text(tmp_path: Path) -> None:
    compiled = xml_map(tmp_path, "amount = decimal(Item[0])")
    with pytest.raises(MapError) as excinfo:
        run(compiled)
    assert excinfo.value.code == "M001" and "<Item> element" in str(excinfo.value)


# ---- lint ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("line", "code", "position", "hint"), [
    ('x = Item.Price[starts_with(channel, "w")]', "MAP016", (4, 18), "for each ... where"),
    ('x = Item.Price[channel > "w"]', "MAP016", (4, 28), "compare text with = or !="),
    ('x = Item["p:sku"]', "MAP016", (4, 12), "table xmlns"),
    ('x = Item["bad name"]', "MAP016", (4, 12), "ship-to"),
    ('x = Item["@sku"].more', "MAP016", (4, 20), None),
    ("x = Item[-1]", "MAP012", (4, 12), "first Item"),
    ('x = xpath["p:Item["]', "MAP016", (4, 13), "XPath 1.0"),
    ('x = xpath["fn:nothing()"]', "MAP016", (4, 13), None),
])
def test_paths_that_cannot_be_xml_paths(tmp_path: Path, line: str, code: str, position: tuple[int, int],
                                        hint: str | None) -> None:
    _, diagnostics = lint_maps(tmp_path, f'map "m"\n  from xml\n  to json\n  {line}\nend\n')
    assert [(d.code, d.span.line, d.span.column) for d in diagnostics] == [(code, *position)], [
        str(d) for d in diagnostics]
    if hint is not None:
        assert diagnostics[0].hint is not None and hint in diagnostics[0].hint


def test_lint_checks_paths_against_the_xsd_at_each_place(tmp_path: Path) -> None:
    _, diagnostics = lint_maps(tmp_path, '''\
        map "m"
          from xml "PriceList" "urn:erp:pricelist:v1" schema "pricelist.xsd"
          to json
          id = id
          customer = Customer.Name
          currency = Curency
          items = for each Item where Price[chanel = "web"] is present
            sku = sku
            price = Price["@channel"]
            msrp = Msrp.value
            web = Price[channel = "web" and minQty > 1]
            raw = xpath["anything/p:goes"]
          end
          total = sum(Item.Price["@chanel"])
          table xmlns
            "p" -> "urn:erp:pricelist:v1"
          end
        end
        ''')
    found = [(d.code, d.span.line, d.span.column, d.hint) for d in diagnostics]
    assert found == [
        ("MAP017", 6, 14, "did you mean 'currency'?"),
        ("MAP017", 7, 37, "did you mean 'channel'?"),
        ("MAP017", 10, 17, "it holds no elements"),
        ("MAP017", 11, 37, "did you mean 'minQuantity'?"),
        ("MAP017", 14, 26, "did you mean 'channel'?"),
    ], [str(d) for d in diagnostics]
    assert "pricelist.xsd has no element or attribute 'Curency' in <PriceList>" in diagnostics[0].message


def test_lint_follows_types_groups_extensions_and_wildcards(tmp_path: Path) -> None:
    xsd = tmp_path / "order.xsd"
    xsd.write_text('''<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:o="urn:o" targetNamespace="urn:o"
        elementFormDefault="qualified">
      <xs:element name="Order" type="o:OrderType"/>
      <xs:element name="Note" type="xs:string"/>
      <xs:complexType name="PartyType"><xs:sequence><xs:element name="Name" type="xs:string"/></xs:sequence>
        <xs:attributeGroup ref="o:Ids"/></xs:complexType>
      <xs:complexType name="ShipToType"><xs:complexContent><xs:extension base="o:PartyType"><xs:sequence>
        <xs:element name="Dock" type="xs:string"/></xs:sequence></xs:extension></xs:complexContent></xs:complexType>
      <xs:attributeGroup name="Ids"><xs:attribute name="id"/><xs:attribute name="gln"/></xs:attributeGroup>
      <xs:group name="Lines"><xs:sequence><xs:element name="Line" maxOccurs="unbounded"><xs:complexType>
        <xs:sequence><xs:any processContents="lax" minOccurs="0"/></xs:sequence></xs:complexType></xs:element>
        </xs:sequence></xs:group>
      <xs:complexType name="OrderType"><xs:sequence><xs:element name="ShipTo" type="o:ShipToType"/>
        <xs:element ref="o:Note"/><xs:group ref="o:Lines"/></xs:sequence></xs:complexType>
    </xs:schema>''', encoding="utf-8")
    _, diagnostics = lint_maps(tmp_path, f'''\
        map "m"
          from xml schema "{xsd}"
          to json
          a = ShipTo.Name
          b = ShipTo.Dock
          c = ShipTo.gln
          d = Note
          e = Line.anything.below
          f = ShipTo.Dok
        end
        ''')
    assert [(d.code, d.span.line, d.hint) for d in diagnostics] == [("MAP017", 9, "did you mean 'Dock'?")]


def test_lint_reports_an_xsd_it_cannot_use(tmp_path: Path) -> None:
    broken = tmp_path / "broken.xsd"
    broken.write_text("<xs:schema xmlns:xs='http://www.w3.org/2001/XMLSchema'><xs:element/></xs:schema>")
    _, diagnostics = lint_maps(tmp_path, f'map "m"\n  from xml schema "{broken}"\n  to json\n  a = b\nend\n')
    assert [(d.code, d.span.line, d.span.column) for d in diagnostics] == [("MAP018", 2, 19)]
    assert "not a usable XSD" in diagnostics[0].message


# ---- writing -------------------------------------------------------------------------------------


def test_a_map_to_xml_round_trips_through_encode_and_decode(tmp_path: Path) -> None:
    maps, diagnostics = lint_maps(tmp_path, '''\
        map "out"
          from json
          to xml "PriceList" "urn:erp:pricelist:v1"
          attr_id = list_id
          attr_currency = currency
          attr_effective = effective
          Description = note
          Item = for each items
            attr_sku = sku
            Price = for each prices
              attr_channel = channel
              _text = decimal(amount)
            end
          end
        end

        map "back"
          from xml "PriceList" "urn:erp:pricelist:v1" schema "pricelist.xsd"
          to json
          list_id = id
          currency = currency
          effective = effective
          note = Description
          items = for each Item
            sku = sku
            prices = for each Price
              channel = channel
              amount = xpath["."]
            end
          end
        end
        ''')
    assert diagnostics == [], [str(d) for d in diagnostics]
    source = {"list_id": "PL-9", "currency": "EUR", "effective": "2026-02-01",
              "note": 'Tom & Jerry\'s <"best"> prices — été',
              "items": [{"sku": "A&1", "prices": [{"channel": "web", "amount": "12.50"},
                                                  {"channel": "wholesale", "amount": "9.8"}]},
                        {"sku": "<B>", "prices": [{"channel": "marketplace", "amount": "100"}]}]}
    built = maps["out"].run(source)
    data = xml_format.encode(built, {"root": "PriceList", "namespace": NS, "schema": "pricelist.xsd"})
    assert b"Tom &amp; Jerry's &lt;\"best\"&gt; prices \xe2\x80\x94 \xc3\xa9t\xc3\xa9" in data
    assert b'sku="A&amp;1"' in data and b'sku="&lt;B&gt;"' in data
    back = maps["back"].run(xml_format.decode(data, {"schema": "pricelist.xsd", "root": "PriceList", "namespace": NS}))
    assert back == source


# ---- routes --------------------------------------------------------------------------------------


async def run_routes(tmp_path: Path, routes: Path) -> Engine:
    result = lint([routes])
    assert result.plan is not None and not result.errors, [str(d) for d in result.errors]
    data = tmp_path / "data"
    async with embedded_stores(data) as stores:
        engine = Engine(result.plan, Services(stores=stores, data_dir=data, clock=ManualClock(),
                                              rng=random.Random(7)))
        await engine.run(once=True, stop=anyio.Event())
    return engine


SPLIT_ROUTE = '''
route "items"
  from file
    folder "inbox"
  read xml "PriceList" "urn:erp:pricelist:v1"
    {options}
  keep only when currency = "USD"
  for each Item
  keep only when Price[channel = "web"] is present
  to file format xml
    folder "outbox"
    file name "{{{{ message_id }}}}.xml"
  dead letter to store
end
'''


@pytest.mark.anyio
@pytest.mark.parametrize("options", ['schema "pricelist.xsd"', 'split on "Item"'])
async def test_a_route_splits_a_price_list_into_items_written_as_xml(tmp_path: Path, options: str) -> None:
    routes = tmp_path / "routes"
    routes.mkdir()
    text = SPLIT_ROUTE.format(options=options)
    if "split on" in options:
        text = text.replace('  keep only when currency = "USD"\n', "")  # a stream is read by `for each` alone
    (routes / "r.route").write_text(text, encoding="utf-8")
    (tmp_path / "data" / "inbox").mkdir(parents=True)
    (tmp_path / "data" / "inbox" / "prices.xml").write_bytes(PRICES)
    engine = await run_routes(tmp_path, routes)
    written = [etree.fromstring(p.read_bytes()) for p in sorted((tmp_path / "data" / "outbox").iterdir())]
    assert sorted(item.get("sku") for item in written) == ["CAB-300", "GAD-200", "WID-100"]
    assert all(item.tag == f"{{{NS}}}Item" for item in written)
    widget = next(item for item in written if item.get("sku") == "WID-100")
    assert [p.text for p in widget.iter(f"{{{NS}}}Price")] == ["12.50", "9.80", "11.00"]
    assert engine.stats.routes["items"].delivered == 3


# ---- the ERP price list example -------------------------------------------------------------------


# The example's route runs end to end (REST intake, both channels' REST APIs, the XSD and XXE
# refusals) in tests/e2e/test_scenario_d.py.


def test_the_example_maps_pass_their_golden_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["test", str(EXAMPLE / "routes")]) == 0
    assert "4 passed, 0 failed" in capsys.readouterr().out
