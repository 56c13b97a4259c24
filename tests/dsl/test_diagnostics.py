"""Every diagnostic code lint can report, each from a minimal route folder, with its line, column and hint.

Codes in :mod:`crossdock.dsl.codes` that lint never reports, and so are not triggered here:

- DSL000 is an internal error (a bug in the transformer turned into a diagnostic instead of a crash);
  `test_lint_never_crashes` checks that random input never produces it.
- TST001 and TST002 belong to `crossdock test` (a map test's fixtures), not to lint.

OPT003, OPT004, OPT007 and NAME010 depend on what a connector declares (connection-only or step-only
options, a single role, a required connection); the built-in file and queue connectors declare none of
these, so those cases register a small connector of their own for the duration of the test (and RTE003
is also shown with a format other than JSON, registered the same way).
"""

from __future__ import annotations

import re
import sys
import textwrap
import types
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crossdock.connectors import base as connectors
from crossdock.connectors.base import ConnectorSpec
from crossdock.dsl.codes import CODES, render_codes
from crossdock.dsl.diagnostics import Diagnostic, Severity
from crossdock.dsl.lint import lint
from crossdock.dsl.options import OptionSpec, OptionType, Role, Scope
from crossdock.formats import base as formats
from crossdock.formats.base import FormatSpec

ROOT = Path(__file__).resolve().parents[2]

# Codes documented in codes.py that lint does not produce (see the module docstring).
NOT_FROM_LINT = {"DSL000", "TST001", "TST002"}


def lint_folder(folder: Path, files: dict[str, str | bytes], **kwargs: object) -> list[Diagnostic]:
    """Write `files` into `folder` and lint it."""
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content), encoding="utf-8")
    return lint([folder], **kwargs).diagnostics  # type: ignore[arg-type]


@dataclass
class Case:
    """One code, a minimal folder that triggers it, and where it must point."""

    code: str
    text: str
    line: int
    column: int
    hint: str | None = None
    others: dict[str, str] = field(default_factory=dict)
    also: frozenset[str] = frozenset()  # other codes the folder unavoidably triggers


CASES = [
    # ---- syntax ----------------------------------------------------------------------------------
    Case("DSL001", '''\
        routee "r"
        end
        ''', 1, 1, "did you mean 'route'?"),
    Case("DSL001", '''\
        route "r"
          from file
            folder "in"
          map with "m"
          valdate as Order
        end
        ''', 5, 3, "did you mean 'validate'?"),
    Case("DSL001", '''\
        policy "p"
          retry 5 time
        end
        ''', 2, 11, "did you mean 'times'?"),
    Case("DSL001", '''\
        map "m"
          from json
          to json
          test = 1
        end
        ''', 4, 8, "'test' is a keyword"),
    Case("DSL001", '''\
        route "r"
          from file
            folder "in"
          keep only when a =
          to file
            folder "out"
          dead letter to store
        end
        ''', 4, 21),
    Case("DSL001", '''\
        connection "c" is file
          folder "x"
        end
        end
        ''', 4, 1, "closes no block"),
    Case("DSL002", '''\
        route "r"
          from file ; folder "x"
        end
        ''', 2, 13),
    Case("DSL002", '''\
        route 'r'
        end
        ''', 1, 7, "double quotes"),
    Case("DSL003", '''\
        connection "c" is file
          folder "in
        end
        ''', 2, 10, 'close it with "'),
    Case("DSL004", '''\
        route "r"
          from file
            folder "in"
          read json
          skip duplicates by id for 30 fortnights
          to file
            folder "out"
          dead letter to store
        end
        ''', 5, 32, "use ms, seconds"),
    Case("DSL005", '''\
        connection "c" is file
          folder "in\\q"
        end
        ''', 2, 13, 'write \\"'),
    Case("DSL006", '''\
        route "r"
          from file
            folder "in"
          to file
            folder "out"
        ''', 1, 1, "end"),
    Case("DSL006", '''\
        route "r"
          from file
            folder "in"
          read json
          when a = 1
            to file
              folder "out"
          otherwise
            dead letter to store
        ''', 5, 3, "end"),
    Case("DSL006", '''\
        map "m"
          from json
          to json
          lines = for each items
            sku = sku
        end
        ''', 1, 1, "end"),
    Case("DSL006", '''\
        route "a"
          from file
            folder "in"
          map with "m"
        route "b"
          from file
            folder "in"
        end
        ''', 1, 1, "before line 5"),
    Case("DSL007", '''\
        policy "p"
          retry 2.5 times
        end
        ''', 2, 9, "write 2"),
    # ---- names -----------------------------------------------------------------------------------
    Case("DUP001", '''\
        connection "inbox" is file
          folder "b"
        end
        ''', 1, 12, "a.route:1:12", others={"a.route": 'connection "inbox" is file\n  folder "a"\nend\n'}),
    Case("DUP002", '''\
        table units
          "EA" -> "each"
          "EA" -> "case"
        end
        ''', 3, 3),
    Case("NAME001", '''\
        connection "erp-api" is file
          folder "in"
        end
        route "r"
          from file "erp-apii"
          to file
            folder "out"
          dead letter to store
        end
        ''', 5, 13, "did you mean 'erp-api'?"),
    Case("NAME002", '''\
        map "Order to ERP"
          from Order
          to json
        end
        route "r"
          from file
            folder "in"
          read json
          map with "Order to ERPP"
          to file
            folder "out"
          dead letter to store
        end
        ''', 9, 12, "did you mean 'Order to ERP'?"),
    Case("NAME003", '''\
        policy "standard"
          dead letter to store
        end
        route "r"
          from file
            folder "in"
          to file
            folder "out"
          use policy "standart"
        end
        ''', 9, 14, "did you mean 'standard'?", also=frozenset({"POL002"})),
    Case("NAME005", '''\
        route "r"
          from file
            folder "in"
          read json
          validate as Ordr
          to file
            folder "out"
          dead letter to store
        end
        ''', 5, 15, "did you mean 'Order'?"),
    Case("NAME005", '''\
        map "m"
          from json
          to Ordr
        end
        ''', 3, 6, "did you mean 'Order'?"),
    Case("NAME006", '''\
        route "r"
          from fiel
            folder "in"
          to file
            folder "out"
          dead letter to store
        end
        ''', 2, 8, "did you mean 'file'?"),
    Case("NAME007", '''\
        route "r"
          from file
            folder "in"
          read jsn
          to file
            folder "out"
          dead letter to store
        end
        ''', 4, 8, "did you mean 'json'?"),
    Case("NAME007", '''\
        map "m"
          from jsn
          to json
        end
        ''', 2, 8, "did you mean 'json'?"),
    Case("NAME008", '''\
        connection "q" is queue
          queue "orders"
        end
        route "r"
          from file "q"
          to file
            folder "out"
          dead letter to store
        end
        ''', 5, 13, 'write: from queue "q"'),
    Case("NAME009", '''\
        map "m"
          from json
          to json
          name = uper(name)
        end
        ''', 4, 10, "did you mean 'upper'?"),
    # ---- options ---------------------------------------------------------------------------------
    Case("OPT001", '''\
        route "r"
          from file
            fodler "in"
            folder "in"
          to file
            folder "out"
          dead letter to store
        end
        ''', 3, 5, "did you mean 'folder'?"),
    Case("OPT001", '''\
        route "r"
          from file
            folder "in"
            mapp with "x"
          to file
            folder "out"
          dead letter to store
        end
        ''', 4, 5, "did you mean 'map' (a step of the route)?"),
    Case("OPT001", '''\
        route "r"
          from file
            folder "in"
          to file
            folder "out"
            files "*.json"
          dead letter to store
        end
        ''', 6, 5),
    Case("OPT001", '''\
        route "r"
          from file
            folder "in"
          to file
            folder "out"
          dead letter to store
        connection "c" is file
          folder "x"
        end
        ''', 7, 1, "is the `end` of the block above missing?", also=frozenset({"RTE001"})),
    Case("OPT001", '''\
        route "r"
          from file
            folder "in"
          to file
            folder "out"
          dead letter to store "x"
        end
        ''', 6, 24),
    Case("OPT001", '''\
        map "m"
          from json shape "x.json"
          to json
        end
        ''', 2, 13, 'from json schema'),
    Case("OPT002", '''\
        route "r"
          from file
            folder "in"
            check every "often"
          to file
            folder "out"
          dead letter to store
        end
        ''', 4, 17),
    Case("OPT002", '''\
        route "r"
          from queue
            queue "in"
            batch 2.5
          to file
            folder "out"
          dead letter to store
        end
        ''', 4, 11),
    Case("OPT005", '''\
        connection "c" is file
          folder "a"
          folder "b"
        end
        ''', 3, 3, "the first is at line 2"),
    Case("OPT006", '''\
        route "r"
          from file
            files "*.json"
          to file
            folder "out"
          dead letter to store
        end
        ''', 2, 8, "add a line: folder"),
    Case("TPL001", '''\
        route "r"
          from file
            folder "in"
          read json
          to file
            folder "out"
            file name "{{ po_number"
          dead letter to store
        end
        ''', 7, 5),
    # ---- tables ----------------------------------------------------------------------------------
    Case("TBL001", '''\
        table units from csv "units.csv"
        ''', 1, 22, "relative to the route file"),
    Case("TBL002", '''\
        table units from csv "units.csv"
        ''', 1, 22, others={"units.csv": ""}),
    Case("TBL003", '''\
        table units from csv "units.csv" key "code" value "nmae"
        ''', 1, 1, "did you mean 'name'?", others={"units.csv": "code,name\nEA,each\n"}),
    # ---- policies --------------------------------------------------------------------------------
    Case("POL001", '''\
        policy "p"
          retry 101 times
        end
        ''', 2, 3, "at most 100"),
    Case("POL002", '''\
        route "r"
          from file
            folder "in"
          to file
            folder "out"
        end
        ''', 1, 7, "dead letter to store"),
    Case("POL003", '''\
        policy "p"
          retry on timeout, throttle
        end
        ''', 2, 21, "did you mean 'throttled'?"),
    Case("POL004", '''\
        policy "p"
          retry 3 times
          retry 5 times
        end
        ''', 3, 3, "the first is at line 2"),
    Case("POL004", '''\
        policy "a"
          dead letter to store
        end
        policy "b"
          retry 2 times
        end
        route "r"
          from file
            folder "in"
          to file
            folder "out"
          use policy "a"
          use policy "b"
        end
        ''', 13, 3, "the first is at line 12"),
    Case("POL005", '''\
        policy "p"
          retry 3 times backoff exponential from 1m up to 10s
        end
        ''', 2, 51),
    Case("POL006", '''\
        policy "p"
          retry 3 times backoff fixed 0s
        end
        ''', 2, 31),
    Case("POL008", '''\
        policy "p"
          process 0 at a time
        end
        ''', 2, 3),
    # ---- routes ----------------------------------------------------------------------------------
    Case("RTE001", '''\
        route "r"
          from file
            folder "in"
          dead letter to store
        end
        ''', 1, 7, "add a sink"),
    Case("RTE002", '''\
        route "r"
          from file
            folder "in"
          read json
          when kind = "a"
            to file
              folder "out"
          end
          dead letter to store
        end
        ''', 5, 3, "otherwise"),
    Case("RTE003", '''\
        map "Order to ERP"
          from Order
          to json
        end
        route "r"
          from file
            folder "in"
          read json
          validate as Invoice
          map with "Order to ERP"
          to file
            folder "out"
          dead letter to store
        end
        ''', 10, 12),
    Case("RTE005", '''\
        route "r"
          from file
            folder "in"
          read json
          skip duplicates by id for 0s
          to file
            folder "out"
          dead letter to store
        end
        ''', 5, 29, "30 days"),
    Case("RTE006", '''\
        route "r"
          from file
            folder "in"
          keep only when status = "open"
          to file
            folder "out"
          dead letter to store
        end
        ''', 4, 3, "read json"),
    Case("RTE006", '''\
        map "m"
          from json
          to json
        end
        route "r"
          from file
            folder "in"
          map with "m"
          to file
            folder "out"
          dead letter to store
        end
        ''', 8, 3, "read json"),
    # ---- maps ------------------------------------------------------------------------------------
    Case("MAP001", '''\
        map "m"
          from json
          to Order
          po_number = number
          order_date = "2024-01-01"
          ship_to = object
            name = "x"
          end
          lines = for each items
            line_number = 1
            sku = sku
            quantity = 1
            unit = "each"
          end
          po_numbr = number
        end
        ''', 15, 3, "did you mean 'po_number'?"),
    Case("MAP002", '''\
        map "m"
          from json
          to Order
          order_date = "2024-01-01"
          ship_to = object
            name = "x"
          end
          lines = for each items
            line_number = 1
            sku = sku
            quantity = 1
            unit = "each"
          end
        end
        ''', 3, 3, "po_number = ..."),
    Case("MAP003", '''\
        map "m"
          from json
          to Order
          po_number = number
          order_date = "2024-01-01"
          ship_to = for each parties
            name = "x"
          end
          lines = for each items
            line_number = 1
            sku = sku
            quantity = 1
            unit = "each"
          end
        end
        ''', 6, 3),
    Case("MAP003", '''\
        map "m"
          from json
          to OrderLine
          line_number = 1
          sku = sku
          quantity = "many"
          unit = "each"
        end
        ''', 6, 14),
    Case("MAP004", '''\
        map "m"
          from json schema "in.json"
          to json
          id = custmer.id
        end
        ''', 4, 8, "did you mean 'customer'?",
        others={"in.json": '{"type": "object", "properties": {"customer": {"type": "object"}}}'}),
    Case("MAP005", '''\
        map "m"
          from json
          to OrderLine
          line_number = 1
          sku = sku
          sku = code
          quantity = 1
          unit = "each"
        end
        ''', 6, 3, "the first is at line 5"),
    Case("MAP006", '''\
        map "m"
          from json
          to json
          name = upper()
        end
        ''', 4, 10, "for example"),
    Case("MAP007", '''\
        map "m"
          from json
          to json
          total = out.subtotal + 1
          subtotal = 1
        end
        ''', 4, 11, "earlier line"),
    Case("MAP008", '''\
        map "m"
          from json schema "missing.json"
          to json
        end
        ''', 2, 20, "relative to the route file"),
    Case("MAP008", '''\
        map "m"
          from json schema "in.json"
          to json
        end
        ''', 2, 20, others={"in.json": "{not json"}),
    Case("MAP010", '''\
        map "m"
          from json
          to json
          sku = $[?(@.a ==]
        end
        ''', 4, 9),
    Case("MAP011", '''\
        map "m"
          from json
          to json
          lines = for each items
            n = loop.number
          end
        end
        ''', 5, 14, "loop.index"),
    Case("MAP012", '''\
        map "m"
          from json
          to json
          first = items[1.5]
        end
        ''', 4, 17),
    Case("MAP013", '''\
        map "m"
          from x12 850
          to json
          ship_to = N1[N101 > "ST"].N102
        end
        ''', 4, 16, "N1[N101 = \"ST\"]"),
    Case("MAP014", '''\
        map "m"
          from x12 850
          to json
          po = BGE03
        end
        ''', 4, 8, "did you mean 'BEG'?"),
    Case("MAP014", '''\
        map "m"
          from x12 850
          to json
          po = BEG99
        end
        ''', 4, 8),
    Case("MAP015", '''\
        map "m"
          from json
          to x12 855
          BAK03 = po
          PO1 = for each lines
            PO101 = n
            ACK09 = status
            PO99 = x
          end
        end
        ''', 8, 5, "PO1"),
    Case("MAP015", '''\
        map "m"
          from json
          to x12
          BAK03 = po
        end
        ''', 3, 3, "to x12 855"),
    Case("MAP016", '''\
        map "m"
          from xml
          to json
          web = Item.Price[starts_with(channel, "w")]
        end
        ''', 4, 20, "for each ... where"),
    Case("MAP016", '''\
        map "m"
          from xml
          to json
          id = xpath["p:Item/@sku"]
        end
        ''', 4, 14, "table xmlns"),
    Case("MAP016", '''\
        map "m"
          from xml
          to json
          table xmlns
            "p" -> 1
          end
          id = id
        end
        ''', 5, 12, '"p" -> "urn:'),
    Case("MAP017", '''\
        map "m"
          from xml schema "pricelist.xsd"
          to json
          items = for each Item
            price = Prise[channel = "web"]
          end
        end
        ''', 5, 13, "did you mean 'Price'?"),
    Case("MAP017", '''\
        map "m"
          from xml "Pricelist" schema "pricelist.xsd"
          to json
          id = id
        end
        ''', 2, 12, "did you mean 'PriceList'?"),
    Case("MAP018", '''\
        map "m"
          from xml schema "no-such-schema.xsd"
          to json
          id = id
        end
        ''', 2, 19, "schemas/xsd"),
    Case("NAME011", '''\
        partner "acme"
          their id "ACME"
          our id "US"
        end

        route "r"
          from file "in"
          read json
          to file "out" format x12
            partner "acm"
          dead letter to store
        end

        connection "in" is file
          folder "in"
        end

        connection "out" is file
          folder "out"
        end
        ''', 10, 5, "did you mean 'acme'?"),
    Case("RTE007", '''\
        route "r"
          from file
            folder "in"
          read json
          acknowledge to file "acks"
          to file "out"
          dead letter to store
        end

        connection "acks" is file
          folder "acks"
        end

        connection "out" is file
          folder "out"
        end
        ''', 5, 3, "read x12"),
    Case("RTE010", '''\
        route "r"
          from file
            folder "in"
          read json
          call queue "q" queue "prices"
          to file "out"
          dead letter to store
        end

        connection "q" is queue
        end

        connection "out" is file
          folder "out"
        end
        ''', 5, 8, "call rest"),
    Case("RTE011", '''\
        route "r"
          from file
            folder "in"
          read json
          track by po_number, "orders"
          to file
            folder "out"
          dead letter to store
        end
        ''', 5, 23, "po_number"),
    Case("RTE012", '''\
        route "r"
          from file
            folder "in"
          read json
          when kind = "a"
            to file
              folder "out"
          otherwise
            reject "  "
          end
          dead letter to store
        end
        ''', 9, 12, "reject \"no allocation rule"),
    Case("RTE013", '''\
        route "r"
          from file
            folder "in"
          read json
          when kind = "a"
            reject "no rule for kind a"
            to file
              folder "out"
          otherwise
            to file
              folder "out"
          end
          dead letter to store
        end
        ''', 7, 5, "under a `when`"),
    Case("RTE009", '''\
        route "r"
          from file
            folder "in"
          read json
          reply 700
          dead letter to store
        end
        ''', 5, 9, "reply 200"),
    Case("RTE008", '''\
        route "r"
          from file
            folder "in"
          read x12
          acknowledge with 998 to file "acks"
          to file "out"
          dead letter to store
        end

        connection "acks" is file
          folder "acks"
        end

        connection "out" is file
          folder "out"
        end
        ''', 5, 20, "partner's profile"),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c.code}-{i}" for i, c in enumerate(CASES)])
def test_code_line_column_and_hint(case: Case, tmp_path: Path) -> None:
    diagnostics = lint_folder(tmp_path, {"t.route": case.text, **case.others})
    codes = {d.code for d in diagnostics}
    assert codes <= {case.code} | case.also, [str(d) for d in diagnostics]
    found = [d for d in diagnostics if d.code == case.code]
    assert len(found) == 1, [str(d) for d in diagnostics]
    (diagnostic,) = found
    assert Path(diagnostic.span.file).name == "t.route"
    assert (diagnostic.span.line, diagnostic.span.column) == (case.line, case.column), str(diagnostic)
    if case.hint is not None:
        assert diagnostic.hint is not None and case.hint in diagnostic.hint, diagnostic.hint


def test_warnings_are_warnings_and_errors_errors(tmp_path: Path) -> None:
    rte002 = next(c for c in CASES if c.code == "RTE002")
    (diagnostic,) = lint_folder(tmp_path, {"t.route": rte002.text})
    assert diagnostic.severity is Severity.WARNING
    map005 = next(c for c in CASES if c.code == "MAP005")
    (duplicate,) = lint_folder(tmp_path / "maps", {"t.route": map005.text})
    assert duplicate.severity is Severity.WARNING
    dsl001 = next(c for c in CASES if c.code == "DSL001")
    (syntax,) = lint_folder(tmp_path / "syntax", {"t.route": dsl001.text})
    assert syntax.severity is Severity.ERROR


# ---- files ---------------------------------------------------------------------------------------


def test_io001_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    (diagnostic,) = lint([missing]).diagnostics
    assert (diagnostic.code, diagnostic.span.file, diagnostic.span.line, diagnostic.span.column) == (
        "IO001", str(missing), 0, 0)


def test_io002_points_at_the_first_byte_that_is_not_utf8(tmp_path: Path) -> None:
    diagnostics = lint_folder(tmp_path, {"t.route": b'connection "c" is file\n  folder "d\xc3\xa9j\xe0"\nend\n'})
    (diagnostic,) = diagnostics
    # the bad byte follows `  folder "déj` (13 characters), so it is column 14 of line 2
    assert (diagnostic.code, diagnostic.span.line, diagnostic.span.column) == ("IO002", 2, 14)
    assert "byte 37" in diagnostic.message


def test_io003_no_route_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a route", encoding="utf-8")
    (diagnostic,) = lint([tmp_path]).diagnostics
    assert (diagnostic.code, diagnostic.span.line, diagnostic.span.column) == ("IO003", 0, 0)


def test_a_byte_order_mark_is_not_a_syntax_error(tmp_path: Path) -> None:
    diagnostics = lint_folder(tmp_path, {"t.route": "\ufefftable t\n  \"a\" -> \"b\"\nend\n".encode()})
    assert diagnostics == []


# ---- environment ---------------------------------------------------------------------------------

ENV_ROUTE = '''\
    connection "inbox" is file
      folder env "INBOX_FOLDER"
    end
    route "r"
      from file "inbox"
      to file
        folder secret "OUTBOX_FOLDER"
      dead letter to store
    end
    '''


def test_env001_and_sec001_only_with_require_env(tmp_path: Path) -> None:
    assert lint_folder(tmp_path, {"t.route": ENV_ROUTE}) == []
    diagnostics = lint([tmp_path], require_env=True, env={}).diagnostics
    assert [(d.code, d.span.line, d.span.column) for d in diagnostics] == [("ENV001", 2, 10), ("SEC001", 7, 12)]
    assert "INBOX_FOLDER" in diagnostics[0].message
    assert diagnostics[1].hint is not None and "CROSSDOCK_SECRETS_DIR" in diagnostics[1].hint


def test_env_and_secrets_that_are_set_are_not_reported(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "OUTBOX_FOLDER").write_text("out\n", encoding="utf-8")
    lint_folder(tmp_path / "routes", {"t.route": ENV_ROUTE})
    env = {"INBOX_FOLDER": "in", "CROSSDOCK_SECRETS_DIR": str(secrets)}
    assert lint([tmp_path / "routes"], require_env=True, env=env).diagnostics == []


# ---- codes that need a connector or format the built-in ones do not provide ------------------------


def _register(monkeypatch: pytest.MonkeyPatch, registry: dict[str, str], name: str, **attributes: object) -> None:
    module = types.ModuleType(f"crossdock_test_{name}")
    for key, value in attributes.items():
        setattr(module, key, value)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(registry, name, module.__name__)


@pytest.fixture
def vault(monkeypatch: pytest.MonkeyPatch) -> None:
    """A sink-only connector that needs a connection, with a connection-only and a step-only option."""
    spec = ConnectorSpec(
        kind="vault",
        description="test connector",
        roles=frozenset({Role.SINK}),
        options=(
            OptionSpec("password", OptionType.STRING, "secret", secret=True, scope=Scope.CONNECTION),
            OptionSpec("path", OptionType.STRING, "per step", scope=Scope.STEP),
        ),
        connection="required",
    )
    _register(monkeypatch, connectors._REGISTRY, "vault", SPEC=spec)


VAULT_CONNECTION = 'connection "v" is vault\n  password secret "VAULT_PASSWORD"\nend\n'


@pytest.mark.usefixtures("vault")
@pytest.mark.parametrize(("code", "files", "line", "column", "hint"), [
    ("OPT003", {"t.route": 'route "r"\n  from file\n    folder "in"\n  to vault "v"\n    password secret "X"\n'
                           "  dead letter to store\nend\n"}, 5, 5, "connection"),
    ("OPT004", {"t.route": 'connection "w" is vault\n  password secret "P"\n  path "x"\nend\n'}, 3, 3,
     "move it under the step"),
    ("OPT007", {"t.route": 'route "r"\n  from vault "v"\n  to file\n    folder "out"\n  dead letter to store\nend\n'},
     2, 8, None),
    ("NAME010", {"t.route": 'route "r"\n  from file\n    folder "in"\n  to vault\n  dead letter to store\nend\n'},
     4, 6, 'write: vault "connection-name"'),
])
def test_codes_that_depend_on_a_connector_declaration(
    code: str, files: dict[str, str], line: int, column: int, hint: str | None, tmp_path: Path
) -> None:
    diagnostics = lint_folder(tmp_path, {"v.route": VAULT_CONNECTION, **files})
    assert [d.code for d in diagnostics] == [code], [str(d) for d in diagnostics]
    (diagnostic,) = diagnostics
    assert (Path(diagnostic.span.file).name, diagnostic.span.line, diagnostic.span.column) == ("t.route", line, column)
    if hint is not None:
        assert diagnostic.hint is not None and hint in diagnostic.hint


def test_rte003_map_reads_another_format(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    spec = FormatSpec(name="fixed", description="test format", content_type="text/plain")
    _register(monkeypatch, formats._REGISTRY, "fixed", SPEC=spec)
    diagnostics = lint_folder(tmp_path, {"t.route": '''\
        map "m"
          from json
          to json
        end
        route "r"
          from file
            folder "in"
          read fixed
          map with "m"
          to file
            folder "out"
          dead letter to store
        end
        '''})
    assert [(d.code, d.span.line, d.span.column) for d in diagnostics] == [("RTE003", 9, 12)]
    assert "reads json" in diagnostics[0].message and "fixed" in diagnostics[0].message


# ---- coverage of codes.py ------------------------------------------------------------------------

LINT_SOURCES = [*sorted((ROOT / "crossdock" / "dsl").glob("*.py")), ROOT / "crossdock" / "engine" / "compiler.py",
                *sorted((ROOT / "crossdock" / "engine" / "mapping").glob("*.py")),
                ROOT / "crossdock" / "engine" / "x12" / "paths.py", ROOT / "crossdock" / "engine" / "xmlpaths.py"]
CODE_PATTERN = re.compile(r'"([A-Z]{2,4}\d{3})"')


def _codes_in_source() -> set[str]:
    found: set[str] = set()
    for path in LINT_SOURCES:
        if path.name == "codes.py":
            continue
        found |= set(CODE_PATTERN.findall(path.read_text(encoding="utf-8")))
    return found


def test_every_code_written_in_the_lint_sources_is_documented() -> None:
    in_source = _codes_in_source()
    assert in_source, "the pattern should find the codes"
    assert in_source - set(CODES) == set()


def test_every_documented_code_is_produced_somewhere() -> None:
    produced = _codes_in_source() | {"TST001", "TST002"}  # written by crossdock test (engine/maptest.py)
    assert set(CODES) - produced == set()


def test_every_lint_code_has_a_test_here() -> None:
    tested = {c.code for c in CASES} | {"IO001", "IO002", "IO003", "ENV001", "SEC001", "OPT003", "OPT004",
                                         "OPT007", "NAME010"}
    assert set(CODES) - NOT_FROM_LINT - tested == set()


def test_docs_diagnostics_md_is_generated_from_codes_py() -> None:
    assert (ROOT / "docs" / "diagnostics.md").read_text(encoding="utf-8") == render_codes(), (
        "regenerate it with: python -m crossdock.dsl.codes")


# ---- robustness ----------------------------------------------------------------------------------

DEMO_ROUTES = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "routes").glob("*.route"))]
FRAGMENTS = ["end", "\n", "route", "map", "when", "otherwise", "for each", "=", '"', "(", ")", "[", "]", "$", "#",
             "\\", "\r\n", "\t", "30s", "1.5", "-", "default", "object", "table", "->", "{{", "env", "é", "\x00"]


def _lint_text(folder: Path, text: str) -> list[Diagnostic]:
    path = folder / "fuzz.route"
    path.write_text(text, encoding="utf-8", newline="")
    return lint([path]).diagnostics


@st.composite
def mutated_route(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(DEMO_ROUTES))
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "swap lines"]))
        if action == "insert":
            text = text[:where] + draw(st.sampled_from(FRAGMENTS) | st.text(max_size=5)) + text[where:]
        elif action == "delete":
            text = text[:where] + text[where + draw(st.integers(1, 30)):]
        else:
            lines = text.split("\n")
            a, b = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[a], lines[b] = lines[b], lines[a]
            text = "\n".join(lines)
    return text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(st.text(max_size=200), mutated_route()))
def test_lint_never_crashes(text: str, tmp_path: Path) -> None:
    diagnostics = _lint_text(tmp_path, text)
    assert all(isinstance(d, Diagnostic) for d in diagnostics)
    assert "DSL000" not in {d.code for d in diagnostics}, [str(d) for d in diagnostics]
    for diagnostic in diagnostics:
        assert diagnostic.code in CODES
        assert diagnostic.span.line >= 1 and diagnostic.span.column >= 1, str(diagnostic)
