"""Paths over the loop tree: BEG03, N1[N101="ST"].N104, loops, HL levels."""

from __future__ import annotations

import pytest
from x12_builders import FIXTURES

from crossdock.formats import x12
from crossdock.formats.x12 import Loop, PathError, Segment, TransactionSet


@pytest.fixture(scope="module")
def order() -> TransactionSet:
    return next(x12.read(FIXTURES / "valid" / "850.004010.x12").sets())


@pytest.fixture(scope="module")
def shipment() -> TransactionSet:
    return next(x12.read(FIXTURES / "valid" / "856.004010.x12").sets())


@pytest.mark.parametrize("path, value", [
    ("BEG03", "4500012345"),
    ("BEG05", "20240115"),
    ("BEG04", None),
    ("CUR02", "USD"),
    ('N1[N101="ST"].N104', "0042"),
    ("N1[N101 = 'BT'].N102", "ACME CORP"),
    ('N1[N101="ST"].N4.N402', "TX"),
    ('N1[N101="ST"].N402', "TX"),
    ('N1[N101="SF"].N104', None),
    ('N1[N101!="ST"].N102', "ACME CORP"),
    ("PO1.PO107", "SKU-100"),
    ("PO1.PID05", "BLUE WIDGET"),
    ('PO1[PO101="2"].PID05', "RED GADGET"),
    ('PO1[PO103="CA", PO101="2"].PO102', "4"),
    ("CTT.AMT02", "445"),
    ("ZZZ01", None),
])
def test_get(order: TransactionSet, path: str, value: str | None) -> None:
    assert order.get(path) == value


def test_values_and_loops(order: TransactionSet) -> None:
    assert order.values("PO1.PO107") == ["SKU-100", "SKU-200"]
    assert [line.get("PO102") for line in order.loops("PO1")] == ["10", "4"]
    assert order.values("N1.N101") == ["ST", "BT"]
    assert order.values("PO1") == []
    assert order.element("PO1", 7) == "SKU-100"
    assert order.element("PO4", 9) is None
    assert order.find("ZZZ") is None
    assert [segment.value(1) for segment in order.find_all("DTM")] == ["002", "002"]


def test_select_returns_loops_and_segments(order: TransactionSet) -> None:
    loops = order.select("PO1")
    assert [type(node) for node in loops] == [Loop, Loop]
    segments = order.select("REF")
    assert len(segments) == 1 and isinstance(segments[0], Segment) and segments[0].value(1) == "DP"
    assert order.select('PO1[PO101="2"].PID')[0].id == "PID"


def test_hierarchical_levels(shipment: TransactionSet) -> None:
    items = shipment.select('HL[HL03="I"]')
    assert [loop.get("LIN03") for loop in items] == ["SKU-100", "SKU-200"]  # type: ignore[union-attr]
    assert shipment.values('HL[HL03="P"].MAN02') == ["00012345670000000018", "00012345670000000025"]
    order = shipment.select('HL[HL03="O"]')[0]
    assert isinstance(order, Loop)
    # A level's conditions look at its own HL, not at the levels nested under it.
    assert shipment.select('HL[HL03="S"]') == [next(shipment.loops("HL"))]
    assert order.values("HL.HL03") == ["P", "I", "P", "I"]
    assert shipment.get('HL[HL03="O"].PRF01') == "4500012345"
    assert shipment.get('HL[HL03="S"].N1[N101="SF"].N104') == "V123"


def test_components() -> None:
    ts = next(x12.read(FIXTURES / "valid" / "997.004010.x12").sets())
    assert ts.get("AK401-1") == "2" and ts.get("AK401") == "2" and ts.get("AK401-2") is None


@pytest.mark.parametrize("path, column", [
    ("", 1),
    ("beg03", 1),
    ("BEG03.N101", 7),
    ("N1[N101]", 4),
    ('N1[N101="ST"', 13),
    ("N1..N104", 4),
    ("N1 N104", 3),
])
def test_bad_paths_say_where(path: str, column: int) -> None:
    with pytest.raises(PathError) as caught:
        x12.parse_path(path)
    assert caught.value.column == column
