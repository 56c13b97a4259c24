"""Acknowledgment building blocks: what a 997/999 AK2-AK5, AK9 and a TA1 would say."""

from __future__ import annotations

from x12_builders import FIXTURES, ORDER, Text, interchange, replace, transaction_set

from crossdock.formats import x12
from crossdock.formats.x12.acks import ElementNote, SegmentNote, group_response, interchange_note, set_response


def test_a_clean_document_is_accepted_at_every_level() -> None:
    document = x12.read(FIXTURES / "valid" / "850.004010.x12")
    interchange_, = document.interchanges
    group, = interchange_.groups
    response = set_response(group.sets[0])
    assert (response.set_id, response.control_number, response.code, response.errors, response.segments) == (
        "850", "0001", "A", [], [])
    ak9 = group_response(group)
    assert (ak9.code, ak9.included, ak9.received, ak9.accepted, ak9.errors) == ("A", 1, 1, 1, [])
    assert interchange_note(interchange_) == ("A", "000")


def test_element_errors_make_segment_notes_and_reject_the_set() -> None:
    text = Text(interchange(transaction_set(["BEG*00*SA*PO1**20241399", "ZZZ*1", *ORDER[1:]])))
    ts = next(x12.read(text.data).sets())
    response = set_response(ts)
    assert response.code == "R" and response.errors == ["5"]
    assert response.segments == [
        SegmentNote("BEG", 2, None, "8", [ElementNote(5, None, "373", "8", "20241399")]),
        SegmentNote("ZZZ", 3, None, "1"),
    ]


def test_envelope_errors_of_a_set_are_ak5_codes() -> None:
    lines = interchange(transaction_set(ORDER, control="0001"), transaction_set(ORDER, control="0002"))
    lines = replace(lines, "SE*5*0002", "SE*9*0002")
    group = x12.read(Text(lines).data).interchanges[0].groups[0]
    first, second = (set_response(ts) for ts in group.sets)
    assert (first.code, second.code, second.errors) == ("A", "R", ["4"])
    ak9 = group_response(group)
    assert (ak9.code, ak9.received, ak9.accepted) == ("P", 2, 1)


def test_lenient_warnings_that_are_defects_accept_with_errors() -> None:
    document = x12.read(FIXTURES / "messy" / "ge_off_by_one.x12", mode=x12.Mode.LENIENT)
    group = document.interchanges[0].groups[0]
    ak9 = group_response(group)
    assert (ak9.code, ak9.included, ak9.received, ak9.accepted, ak9.errors) == ("E", 2, 1, 1, ["5"])


def test_a_code_that_is_no_defect_is_not_reported() -> None:
    text = Text(interchange(transaction_set(["BEG*00*QQ*PO1**20240115", *ORDER[1:]])))
    response = set_response(next(x12.read(text.data).sets()))
    assert (response.code, response.segments) == ("A", [])


def test_interchange_defects_are_ta1_notes() -> None:
    lines = replace(interchange(transaction_set(ORDER)), "IEA", "IEA*1*000000002")
    interchange_ = x12.read(Text(lines).data).interchanges[0]
    assert interchange_note(interchange_) == ("R", "001")
    empty = x12.read(Text(interchange()).data)
    assert group_response(empty.interchanges[0].groups[0]).code == "A"
