"""The generator: byte-identical round trips, trailers computed, interchanges built in code."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from x12_builders import FIXTURES, ORDER, Text, interchange, transaction_set

from crossdock.formats import x12
from crossdock.formats.x12 import Delimiters, FunctionalGroup, Interchange, Mode, Segment, TransactionSet

ROUND_TRIPS = sorted((FIXTURES / "valid").glob("*.x12")) + [
    FIXTURES / "messy" / name
    for name in ("bom_crlf.x12", "newline_terminator.x12", "two_interchanges.x12", "isa_padding_wrong_width.x12")
]


@pytest.mark.parametrize("path", ROUND_TRIPS, ids=[f"{path.parent.name}/{path.stem}" for path in ROUND_TRIPS])
def test_parse_then_generate_is_byte_identical(path: Path) -> None:
    data = path.read_bytes()
    assert x12.encode(x12.read(data, mode=Mode.LENIENT)) == data


@pytest.mark.parametrize("name, fixed", [
    ("unterminated_last_segment.x12", b"IEA*1*000000101~\n"),
    ("ge_off_by_one.x12", b"GE*1*101~\n"),
    ("unpadded_control_numbers.x12", b"SE*23*0001~\n"),
])
def test_generation_repairs_what_lenient_reading_tolerated(name: str, fixed: bytes) -> None:
    document = x12.read(FIXTURES / "messy" / name, mode=Mode.LENIENT)
    out = x12.encode(document)
    assert fixed in out
    assert x12.read(out).all_issues() == []


def test_wrapped_lines_are_written_unwrapped() -> None:
    document = x12.read(FIXTURES / "messy" / "wrapped_80_columns.x12", mode=Mode.LENIENT)
    out = x12.encode(document)
    assert b"\n" not in out
    assert out.decode().split("~")[:-1] == [line.rstrip("~").replace("\n", "") for line in
                                            out.decode().split("~")[:-1]]
    assert x12.read(out).all_issues() == []


def test_trailers_are_counted_from_the_tree() -> None:
    document = x12.read(Text(interchange(transaction_set(ORDER))).data)
    ts = next(document.sets())
    ts.children.insert(2, Segment("CUR", ["BY", "USD"]))
    group = document.interchanges[0].groups[0]
    group.sets.append(x12.read(Text(interchange(transaction_set(ORDER, control="0002"))).data).interchanges[0]
                      .groups[0].sets[0])
    out = x12.encode(document).decode()
    assert "SE*6*0001~" in out and "SE*5*0002~" in out and "GE*2*1~" in out and "IEA*1*000000001~" in out
    assert x12.read(out.encode()).all_issues() == []


def test_delimiters_can_be_replaced() -> None:
    document = x12.read(FIXTURES / "valid" / "850.005010.x12")
    out = x12.encode(document, delimiters=Delimiters(element="|", component=":", segment="'", repetition="!",
                                                     suffix="\r\n"))
    text = out.decode()
    assert text.startswith("ISA|00|") and "|!|00501|" in text and text[104:108] == ":'\r\n"
    again = x12.read(out)
    assert again.all_issues() == []
    assert [s.elements for s in next(again.sets()).segments()] == [
        s.elements for s in next(document.sets()).segments()]


def test_build_an_interchange_in_code() -> None:
    when = dt.datetime(2024, 1, 15, 9, 30)
    isa = x12.interchange_header(sender="ACME", receiver="PARTNER", control_number=42, when=when)
    gs = x12.group_header("FA", sender="ACME", receiver="PARTNER", control_number=7, version="004010", when=when)
    ack = TransactionSet.build("997", "0001", [Segment("AK1", ["PO", "1"]), Segment("AK9", ["A", "1", "1", "1"])])
    out = x12.encode(Interchange(isa, [FunctionalGroup(gs, [ack])]))
    assert out.decode().split("~")[:-1] == [
        "ISA*00*          *00*          *ZZ*ACME           *ZZ*PARTNER        *240115*0930*U*00401*000000042*0*P*:",
        "GS*FA*ACME*PARTNER*20240115*0930*7*X*004010",
        "ST*997*0001", "AK1*PO*1", "AK9*A*1*1*1", "SE*4*0001", "GE*1*7", "IEA*1*000000042",
    ]
    document = x12.read(out)
    assert document.all_issues() == []
    assert len(out.split(b"~")[0]) == 105


def test_write_streams_to_a_binary_file() -> None:
    document = x12.read(FIXTURES / "valid" / "856.005010.x12")
    out = io.BytesIO()
    x12.write(document, out)
    assert out.getvalue() == (FIXTURES / "valid" / "856.005010.x12").read_bytes()
    assert x12.encode_set(next(document.sets())).startswith(b"ST*856*0001~BSN*")


@pytest.mark.parametrize("value", ["A*B", "A~B", "A:B"])
def test_values_holding_a_delimiter_are_refused(value: str) -> None:
    ts = TransactionSet.build("850", "0001", [Segment("BEG", ["00", "SA", value, "", "20240115"])])
    isa = x12.interchange_header(sender="A", receiver="B", control_number=1)
    gs = x12.group_header("PO", sender="A", receiver="B", control_number=1, version="004010")
    with pytest.raises(x12.X12EncodeError):
        x12.encode(Interchange(isa, [FunctionalGroup(gs, [ts])]))


def test_header_fields_must_fit_their_width() -> None:
    with pytest.raises(x12.X12EncodeError):
        x12.interchange_header(sender="A" * 16, receiver="B", control_number=1)
    with pytest.raises(x12.X12EncodeError):
        x12.interchange_header(sender="A", receiver="B", control_number=10**9)
