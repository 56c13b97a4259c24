"""Envelope validation: every X12-E code, with its segment index, byte offset and line."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from x12_builders import (
    GS,
    ISA,
    ORDER,
    Text,
    interchange,
    isa_with,
    order_lines,
    replace,
    transaction_set,
)

from crossdock.formats import x12
from crossdock.formats.x12 import Mode, Severity


@dataclass(frozen=True)
class Case:
    """A broken input, the code it must raise, and the segment it is reported at."""

    code: str
    lines: list[str]
    at: str  # a segment ID prefix, "line N" for the N-th line, or "end"
    occurrence: int = 1

    def position(self, text: Text) -> tuple[int, int, int]:
        if self.at == "end":
            return text.end()
        if self.at.startswith("line "):
            return text.at(int(self.at.split()[1]))
        return text.at(text.index_of(self.at, self.occurrence))


BASE = order_lines()
TWO_SETS = interchange(transaction_set(ORDER, control="0001"), transaction_set(ORDER, control="0002"))

CASES = [
    Case("X12-E001", [isa_with(ISA06="SENDER"), *BASE[1:]], "ISA"),
    Case("X12-E002", [isa_with(ISA09="241301"), *BASE[1:]], "ISA"),
    Case("X12-E003", [isa_with(ISA10="2460"), *BASE[1:]], "ISA"),
    Case("X12-E004", [isa_with(ISA13="00000000A"), *replace(BASE, "IEA", "IEA*1*00000000A")[1:]], "ISA"),
    Case("X12-E005", [isa_with(ISA13="1"), *replace(BASE, "IEA", "IEA*1*1")[1:]], "ISA"),
    Case("X12-E006", [isa_with(ISA14="2"), *BASE[1:]], "ISA"),
    Case("X12-E007", [isa_with(ISA15="X"), *BASE[1:]], "ISA"),
    Case("X12-E008", [isa_with(ISA01="99"), *BASE[1:]], "ISA"),
    Case("X12-E009", [isa_with(ISA03="99"), *BASE[1:]], "ISA"),
    Case("X12-E010", [isa_with(ISA05="QQ"), *BASE[1:]], "ISA"),
    Case("X12-E011", [isa_with(ISA07="QQ"), *BASE[1:]], "ISA"),
    Case("X12-E012", [isa_with(ISA06=" " * 15), *BASE[1:]], "ISA"),
    Case("X12-E013", [isa_with(ISA08=" " * 15), *BASE[1:]], "ISA"),
    Case("X12-E014", [isa_with(ISA11="X"), *BASE[1:]], "ISA"),
    Case("X12-E015", [isa_with(ISA12="0040"), *BASE[1:]], "ISA"),
    Case("X12-E016", replace(BASE, "IEA", "IEA*1*000000002"), "IEA"),
    Case("X12-E017", replace(BASE, "IEA", "IEA*3*000000001"), "IEA"),
    Case("X12-E018", replace(BASE, "IEA", None), "end"),
    Case("X12-E019", [*BASE, *BASE], "ISA", occurrence=2),
    Case("X12-E020", [*BASE, "N1*ST*STRAY"], "N1"),
    Case("X12-E031", replace(BASE, "GE", None), "IEA"),
    Case("X12-E032", replace(BASE, "GE", "GE*1*2"), "GE"),
    Case("X12-E033", replace(BASE, "GE", "GE*3*1"), "GE"),
    Case("X12-E034", replace(replace(BASE, "GS", GS.replace("*1*X", "*A1*X")), "GE", "GE*1*A1"), "GS"),
    Case("X12-E035", replace(BASE, "GS", GS.replace("GS*PO", "GS*P0")), "GS"),
    Case("X12-E036", replace(BASE, "GS", GS.replace("*004010", "*")), "GS"),
    Case("X12-E037", replace(BASE, "GS", GS.replace("20240115", "20241301")), "GS"),
    Case("X12-E038", replace(BASE, "GS", GS.replace("*0930*", "*2460*")), "GS"),
    Case("X12-E039", [ISA, GS, *transaction_set(ORDER), "GE*1*1", GS, *transaction_set(ORDER), "GE*1*1",
                      "IEA*2*000000001"], "GS", occurrence=2),
    Case("X12-E040", replace(BASE, "GS", GS.replace("*X*", "*Z*")), "GS"),
    Case("X12-E041", [ISA, "N1*ST*STRAY", *BASE[1:]], "N1"),
    Case("X12-E050", replace(BASE, "SE", None), "GE"),
    Case("X12-E051", replace(BASE, "SE", "SE*5*0002"), "SE"),
    Case("X12-E052", replace(BASE, "SE", "SE*9*0001"), "SE"),
    Case("X12-E053", replace(replace(BASE, "ST", "ST*85*0001"), "SE", "SE*5*0001"), "ST"),
    Case("X12-E054", replace(replace(BASE, "ST", "ST*850*"), "SE", "SE*5*"), "ST"),
    Case("X12-E055", replace(TWO_SETS, "ST*850*0002", "ST*850*0001"), "ST", occurrence=2),
    Case("X12-E056", replace(BASE, "ST", "ST*856*0001"), "ST"),
    Case("X12-E057", [*BASE[:7], "N1*ST*STRAY", *BASE[7:]], "N1"),
]


def test_every_envelope_code_has_a_case() -> None:
    envelope_codes = {code for code in x12.CODES if code.startswith("X12-E")}
    # Tokenizer findings (E021 to E023) have cases of their own below.
    assert {case.code for case in CASES} | {"X12-E021", "X12-E022", "X12-E023"} == envelope_codes


@pytest.mark.parametrize("case", CASES, ids=[case.code for case in CASES])
def test_envelope_code_and_position(case: Case) -> None:
    text = Text(case.lines)
    found = [issue for issue in x12.validate_envelope(text.data) if issue.code == case.code]
    assert found, f"{case.code} not reported"
    issue = found[0]
    assert (issue.segment, issue.offset, issue.line) == case.position(text)
    assert issue.severity is Severity.ERROR


@pytest.mark.parametrize("case", CASES, ids=[case.code for case in CASES])
def test_full_read_reports_the_same_envelope_issue(case: Case) -> None:
    text = Text(case.lines)
    document = x12.read(text.data)
    found = [issue for issue in document.all_issues() if issue.code == case.code]
    assert [(issue.segment, issue.offset, issue.line) for issue in found][:1] == [case.position(text)]


def test_valid_interchange_has_no_envelope_issue() -> None:
    assert x12.validate_envelope(Text(BASE).data) == []


def test_unterminated_last_segment_is_an_error_in_strict_and_a_warning_in_lenient() -> None:
    data = Text(BASE).data[:-2]
    iea = Text(BASE).at(len(BASE))
    for mode, severity in ((Mode.STRICT, Severity.ERROR), (Mode.LENIENT, Severity.WARNING)):
        issue = next(issue for issue in x12.validate_envelope(data, mode=mode) if issue.code == "X12-E021")
        assert (issue.segment, issue.offset, issue.line, issue.severity) == (*iea, severity)


def test_line_break_inside_a_segment_is_removed_and_reported() -> None:
    lines = replace(BASE, "BEG", "BEG*00*SA*PO1*\n*20240115")
    text = Text(lines)
    index = text.index_of("BEG")
    issue = next(issue for issue in x12.validate_envelope(text.data) if issue.code == "X12-E022")
    assert (issue.segment, issue.offset, issue.line) == text.at(index)
    ts = next(x12.read(text.data, mode=Mode.LENIENT).sets())
    assert ts.find("BEG").elements == ["00", "SA", "PO1", "", "20240115"]


def test_empty_segment_is_skipped_and_reported_where_its_terminator_is() -> None:
    data = Text(BASE).data.replace(b"~\nPO1", b"~\n~\nPO1")
    issue = next(issue for issue in x12.validate_envelope(data) if issue.code == "X12-E023")
    assert issue.offset == data.index(b"~\n~\nPO1") + 2
    assert issue.line == 5
    assert issue.segment == 5  # the index the next segment (PO1) takes
    assert [segment.id for segment in x12.tokenize(data)][4] == "PO1"


@pytest.mark.parametrize("code, lines, tolerable", [
    ("X12-E001", [isa_with(ISA06="SENDER"), *BASE[1:]], True),
    ("X12-E005", [isa_with(ISA13="1"), *replace(BASE, "IEA", "IEA*1*1")[1:]], True),
    ("X12-E016", replace(BASE, "IEA", "IEA*1*1"), True),
    ("X12-E016", replace(BASE, "IEA", "IEA*1*000000002"), False),
    ("X12-E017", replace(BASE, "IEA", "IEA*2*000000001"), True),
    ("X12-E017", replace(BASE, "IEA", "IEA*3*000000001"), False),
    ("X12-E032", replace(BASE, "GE", "GE*1*01"), True),
    ("X12-E033", replace(BASE, "GE", "GE*2*1"), True),
    ("X12-E033", replace(BASE, "GE", "GE*3*1"), False),
    ("X12-E051", replace(BASE, "SE", "SE*5*1"), True),
    ("X12-E052", replace(BASE, "SE", "SE*4*0001"), True),
    ("X12-E052", replace(BASE, "SE", "SE*9*0001"), False),
    ("X12-E054", replace(replace(BASE, "ST", "ST*850*1"), "SE", "SE*5*1"), True),
])
def test_lenient_mode_turns_only_common_real_world_defects_into_warnings(code: str, lines: list[str],
                                                                         tolerable: bool) -> None:
    data = Text(lines).data
    strict = [issue for issue in x12.validate_envelope(data) if issue.code == code]
    lenient = [issue for issue in x12.validate_envelope(data, mode=Mode.LENIENT) if issue.code == code]
    assert [issue.severity for issue in strict] == [Severity.ERROR]
    expected = Severity.WARNING if tolerable else Severity.ERROR
    assert [issue.severity for issue in lenient] == [expected]


def test_stray_segments_are_reported_once_per_run() -> None:
    lines = [*BASE, "N1*ST*ONE", "N1*ST*TWO", "N1*ST*THREE"]
    issues = [issue for issue in x12.validate_envelope(Text(lines).data) if issue.code == "X12-E020"]
    assert [issue.segment for issue in issues] == [len(BASE) + 1]


def test_each_issue_names_its_acknowledgment_codes() -> None:
    data = Text(replace(BASE, "SE", "SE*9*0001")).data
    issue = next(issue for issue in x12.validate_envelope(data) if issue.code == "X12-E052")
    assert issue.ack.ak5 == "4"
    assert issue.path == "SE01"
    assert issue.element == 1 and issue.value == "9"
    assert x12.CODES["X12-E016"].ack.ta1 == "001"
    assert x12.CODES["X12-E033"].ack.ak9 == "5"


def test_interchange_and_group_events_carry_their_headers() -> None:
    events = list(x12.EnvelopeReader(x12.Tokenizer(Text(TWO_SETS).data)))
    kinds = [type(event).__name__ for event in events]
    assert kinds == ["InterchangeStart", "GroupStart", "SetRead", "SetRead", "GroupEnd", "InterchangeEnd"]
    set_reads = [event for event in events if type(event).__name__ == "SetRead"]
    assert [[segment.set_index for segment in event.body] for event in set_reads] == [[2, 3, 4], [2, 3, 4]]
    assert set_reads[1].se is not None and set_reads[1].se.set_index == 5
