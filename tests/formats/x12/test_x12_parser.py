"""The parser: loop trees built from the definitions, segment and element issues with their positions."""

from __future__ import annotations

import io
import tracemalloc
from itertools import chain
from pathlib import Path

import pytest
from x12_builders import FIXTURES, GS, ISA, ORDER, Text, interchange, transaction_set

from crossdock.formats import x12
from crossdock.formats.x12 import Loop, Mode, Segment, Severity, TransactionSet

VALID = sorted((FIXTURES / "valid").glob("*.x12"))


def shape(node: Loop) -> list[object]:
    """The tree as nested lists: segment IDs, and [loop ID, ...children] for loops."""
    return [child.id if isinstance(child, Segment) else [child.id, *shape(child)] for child in node.children]


def only_set(data: bytes | Path, mode: Mode = Mode.STRICT) -> TransactionSet:
    document = x12.read(data, mode=mode)
    sets = list(document.sets())
    assert len(sets) == 1
    return sets[0]


@pytest.mark.parametrize("path", VALID, ids=[path.stem for path in VALID])
def test_every_valid_fixture_reads_without_issue_in_strict_mode(path: Path) -> None:
    document = x12.read(path)
    assert document.all_issues() == []
    ts = next(document.sets())
    set_id, version = path.stem.split(".")
    assert ts.set_id == set_id
    assert ts.definition is not None and ts.definition.version == version
    # Every segment of the set is in the tree, in document order, positions counted from ST.
    segments = list(ts.segments())
    assert segments[0].id == "ST" and segments[-1].id == "SE"
    assert [segment.set_index for segment in segments] == list(range(1, len(segments) + 1))
    assert segments[-1].value(1) == str(len(segments))


def test_850_tree() -> None:
    ts = only_set(FIXTURES / "valid" / "850.004010.x12")
    assert shape(ts) == [
        "ST", "BEG", "CUR", "REF", "PER", "DTM", "TD5",
        ["N9", "N9", "MSG"],
        ["N1", "N1", "N3", "N4"],
        ["N1", "N1"],
        ["PO1", "PO1", ["PID", "PID"], "PO4"],
        ["PO1", "PO1", ["PID", "PID"], "SDQ", "DTM"],
        ["CTT", "CTT", "AMT"],
        "SE",
    ]


def test_856_hl_loops_nest_by_parent() -> None:
    ts = only_set(FIXTURES / "valid" / "856.004010.x12")

    def levels(loop: Loop) -> list[object]:
        return [[child.element("HL", 3), *levels(child)] for child in loop.children if isinstance(child, Loop)
                and child.id == "HL"]

    assert levels(ts) == [["S", ["O", ["P", ["I"]], ["P", ["I"]]]]]
    shipment = next(ts.loops("HL"))
    assert shape(shipment)[:5] == ["HL", "TD1", "TD5", "REF", ["N1", "N1", "N3", "N4"]]
    assert [loop.element("HL", 1) for loop in ts.loops("HL")] == ["1", "2", "3", "4", "5", "6"]


def test_hl_errors() -> None:
    body = ["BSN*00*S1*20240128*1430", "HL*1**S", "HL*2*1*O", "HL*2*1*O", "HL*4*9*I", "CTT*4"]
    text = Text(interchange(transaction_set(body, "856"), gs=GS.replace("GS*PO", "GS*SH")))
    issues = {issue.code: issue for issue in only_set(text.data).issues}
    assert (issues["X12-S008"].segment, issues["X12-S008"].offset, issues["X12-S008"].line) == text.at(7)
    assert issues["X12-S008"].set_position == 5 and issues["X12-S008"].element == 1
    assert (issues["X12-S009"].segment, issues["X12-S009"].value) == (8, "9")


def order(body: list[str]) -> Text:
    return Text(interchange(transaction_set(body)))


SEGMENT_CASES = [
    ("X12-S001", [ORDER[0], "ZZZ*1", *ORDER[1:]], "ZZZ", None),
    ("X12-S002", [ORDER[0], "MSG*HELLO", *ORDER[1:]], "MSG", None),
    ("X12-S003", ORDER[1:], "PO1", "BEG"),
    ("X12-S004", [*ORDER, "CTT*1"], "CTT", None),
    ("X12-S005", [ORDER[0], ORDER[0], *ORDER[1:]], "BEG", None),
    ("X12-S006", [ORDER[0], "BIG*20240101*INV1", *ORDER[1:]], "BIG", None),
    ("X12-S007", [*ORDER[:2], "BEG*00*SA*PO2**20240115", ORDER[2]], "BEG", None),
    ("X12-S010", [*ORDER[:2], "CTT*5"], "CTT", None),
]


@pytest.mark.parametrize("code, body, at, segment_id", SEGMENT_CASES, ids=[case[0] for case in SEGMENT_CASES])
def test_segment_code_and_position(code: str, body: list[str], at: str, segment_id: str | None) -> None:
    text = order(body)
    occurrence = 2 if code in ("X12-S004", "X12-S005", "X12-S007") else 1
    index = text.index_of(at, occurrence)
    issue = next(issue for issue in only_set(text.data).issues if issue.code == code)
    assert (issue.segment, issue.offset, issue.line) == text.at(index)
    assert issue.set_position == index - 2  # ST is line 3 and position 1
    assert issue.segment_id == (segment_id or at)
    assert issue.severity is Severity.ERROR
    assert issue.ack.ak3 == x12.CODES[code].ack.ak3


def test_mandatory_segment_missing_at_the_end_is_reported_at_se() -> None:
    text = order([ORDER[0]])  # no PO1 loop, mandatory in an 850
    issue = next(issue for issue in only_set(text.data).issues if issue.code == "X12-S003")
    assert issue.segment_id == "PO1" and issue.loop_id is None
    assert (issue.segment, issue.offset, issue.line) == text.at(text.index_of("SE"))


def test_unknown_segments_stay_in_the_tree_errors_in_strict_warnings_in_lenient() -> None:
    text = order([ORDER[0], "ZZZ*1", *ORDER[1:]])
    strict = only_set(text.data)
    lenient = only_set(text.data, Mode.LENIENT)
    assert [child.id for child in strict.children if isinstance(child, Segment)][:3] == ["ST", "BEG", "ZZZ"]
    assert shape(lenient) == shape(strict)
    assert [issue.severity for issue in strict.issues] == [Severity.ERROR]
    assert [issue.severity for issue in lenient.issues] == [Severity.WARNING]


def test_set_without_definition_is_kept_flat() -> None:
    text = Text(interchange(transaction_set(["BGN*00*1*20240101"], set_id="204"),
                            gs=GS.replace("GS*PO", "GS*SM")))
    ts = only_set(text.data, Mode.LENIENT)
    assert ts.definition is None and shape(ts) == ["ST", "BGN", "SE"]
    assert [(issue.code, issue.severity) for issue in ts.issues] == [("X12-S011", Severity.WARNING)]
    assert ts.issues[0].ack.ak5 == "1"


ELEMENT_CASES = [
    ("X12-D001", "BEG*00*SA**20240115", 3),
    ("X12-D002", "N1*ST*ACME*92", 4),
    ("X12-D003", "N3*A*B*C", 3),
    ("X12-D004", "BEG*0*SA*PO1**20240115", 1),
    ("X12-D005", "BEG*00*SA*" + "P" * 23 + "**20240115", 3),
    ("X12-D006", "PO1*1*1O*EA*9.99**VP*SKU1", 2),
    ("X12-D007", "SAC*X*D240***1500", 1),
    ("X12-D008", "BEG*00*SA*PO1**20240230", 5),
    ("X12-D009", "DTM*002*20240201*2561", 3),
]


@pytest.mark.parametrize("code, segment, element", ELEMENT_CASES, ids=[case[0] for case in ELEMENT_CASES])
def test_element_code_and_position(code: str, segment: str, element: int) -> None:
    segment_id = segment.split("*")[0]
    body = list(ORDER)
    if segment_id in ("BEG", "PO1"):
        body[0 if segment_id == "BEG" else 1] = segment
    elif segment_id == "N1":
        body.insert(1, segment)
    elif segment_id == "N3":
        body[1:1] = ["N1*ST*ACME*92*1", segment]
    elif segment_id in ("SAC", "DTM"):
        body.insert(1, segment)
    text = order(body)
    index = text.index_of(segment_id)
    issue = next(issue for issue in only_set(text.data).issues if issue.code == code)
    assert (issue.segment, issue.offset, issue.line) == text.at(index)
    assert (issue.segment_id, issue.element) == (segment_id, element)
    assert issue.ack.ak4 == x12.CODES[code].ack.ak4 and issue.ack.ak4 is not None
    assert issue.severity is Severity.ERROR


def test_exclusion_and_composites_in_an_846() -> None:
    body = ["BIA*00*DD*R1*20240115", "LIN*1*VP*SKU1", "QTY*33*5*EA*FREE", "QTY*17*1*EA>X", "CTT*1"]
    text = Text(interchange(transaction_set(body, "846"), gs=GS.replace("GS*PO", "GS*IB")))
    issues = only_set(text.data).issues
    exclusion = next(issue for issue in issues if issue.code == "X12-D010")
    assert (exclusion.segment, exclusion.element, exclusion.value) == (text.index_of("QTY"), 4, "FREE")
    component = next(issue for issue in issues if issue.code == "X12-D006")
    assert (component.element, component.component, component.value) == (3, 2, "X")
    assert component.path == "QTY03-2" and component.element_ref == "1018"


def test_code_not_in_an_incomplete_list_is_only_a_warning() -> None:
    text = order(["BEG*00*QQ*PO1**20240115", *ORDER[1:]])
    issues = only_set(text.data).issues
    assert [(issue.code, issue.severity, issue.value) for issue in issues] == [
        ("X12-D011", Severity.WARNING, "QQ")]


def test_element_validation_can_be_skipped() -> None:
    text = order(["BEG*00*SA*PO1**20241399", *ORDER[1:]])
    assert [issue.code for issue in x12.read(text.data).all_issues()] == ["X12-D008"]
    assert x12.read(text.data, validate_elements=False).all_issues() == []


def test_version_resolution_reads_industry_versions_with_the_base_definition() -> None:
    text = Text(interchange(transaction_set(ORDER), gs=GS.replace("004010", "004010VICS")))
    ts = only_set(text.data)
    assert ts.issues == [] and ts.definition is not None and ts.definition.version == "004010"
    assert ts.version == "004010VICS"


def test_streaming_sets_one_at_a_time_with_outside_issues_collected() -> None:
    sets = [transaction_set(ORDER, control=f"{number:04d}") for number in range(1, 51)]
    lines = interchange(*sets)
    lines[-2] = "GE*49*1"
    reader = x12.X12Reader(Text(lines).data)
    controls = [ts.control_number for ts in reader.sets()]
    assert controls == [f"{number:04d}" for number in range(1, 51)]
    assert [issue.code for issue in reader.issues] == ["X12-E033"]


def test_document_levels_keep_their_own_issues() -> None:
    lines = interchange(transaction_set(ORDER))
    lines[-2] = "GE*1*9"
    lines[-1] = "IEA*1*000000009"
    document = x12.read(Text(lines).data)
    interchange_, = document.interchanges
    group, = interchange_.groups
    assert [issue.code for issue in interchange_.issues] == ["X12-E016"]
    assert [issue.code for issue in group.issues] == ["X12-E032"]
    assert [issue.code for issue in document.all_issues()] == ["X12-E032", "X12-E016"]
    assert not document.ok and len(document.errors) == 2
    assert (group.functional_id, group.control_number, group.version) == ("PO", "1", "004010")
    assert interchange_.control_number == "000000001" and interchange_.delimiters.element == "*"


def test_raise_for_errors() -> None:
    lines = interchange(transaction_set(ORDER))
    lines[-3] = "SE*9*0001"
    document = x12.read(Text(lines).data)
    with pytest.raises(x12.X12ValidationError) as caught:
        x12.raise_for_errors(document.all_issues())
    assert caught.value.code == "X12-E052" and caught.value.position.segment == len(lines) - 2
    x12.raise_for_errors([])


def test_ta1_segments_are_kept_with_their_interchange() -> None:
    lines = [ISA, "TA1*000000007*240115*0930*A*000", *interchange(transaction_set(ORDER))[1:]]
    document = x12.read(Text(lines).data)
    assert [segment.id for segment in document.interchanges[0].ta1] == ["TA1"]
    assert document.all_issues() == []


class _Orders(io.RawIOBase):
    """One interchange of `count` small 850s, produced on demand, never held whole."""

    def __init__(self, count: int) -> None:
        head, tail = "~\n".join(interchange()[:2]) + "~\n", "~\n".join(["GE*0*1", "IEA*1*000000001"]) + "~\n"
        sets = (("~\n".join(transaction_set(ORDER, control=f"{n:04d}")) + "~\n").encode()
                for n in range(1, count + 1))
        self.pieces = chain([head.encode()], sets, [tail.encode()])
        self.pending = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while len(self.pending) < size:
            piece = next(self.pieces, None)
            if piece is None:
                break
            self.pending += piece
        chunk, self.pending = self.pending[:size], self.pending[size:]
        return chunk


def _peak_while_streaming(count: int) -> int:
    tracemalloc.start()
    try:
        # Repeated control numbers are looked for among a bounded number; keep that bound small here.
        reader = x12.X12Reader(_Orders(count), max_tracked_control_numbers=100)
        assert sum(1 for _ in reader.sets()) == count
        assert [issue.code for issue in reader.issues] == ["X12-E033"]  # GE01 says 0
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_streaming_memory_does_not_grow_with_the_number_of_sets() -> None:
    small, large = _peak_while_streaming(300), _peak_while_streaming(3000)
    assert large < small * 1.5 + 256 * 1024


def test_tokenizer_findings_go_to_the_envelope_they_concern() -> None:
    document = x12.read(FIXTURES / "messy" / "unterminated_last_segment.x12", mode=Mode.LENIENT)
    assert [issue.code for issue in document.interchanges[0].issues] == ["X12-E021"]
    wrapped = x12.read(FIXTURES / "messy" / "wrapped_80_columns.x12", mode=Mode.LENIENT)
    assert [(issue.code, issue.segment_id) for issue in wrapped.interchanges[0].issues] == [("X12-E022", "ISA")]
    assert [issue.segment_id for issue in next(wrapped.sets()).issues][:2] == ["ST", "PER"]
    assert wrapped.issues == []
