"""The catalogue of X12 codec codes: what each means and which acknowledgment code reports it.

Every defect the codec finds has a stable code. `X12-T...` codes stop reading (the input cannot be
tokenized); `X12-E...` codes are envelope defects (ISA/IEA, GS/GE, ST/SE); `X12-S...` codes are segment
defects inside a transaction set and `X12-D...` codes are data element defects. docs/x12.md describes
each one; a test keeps that page and this table in step.

The acknowledgment columns say how an acknowledgment generator reports the defect:

- ``ta1``: TA105 interchange note code (TA1 segment);
- ``ak9``: AK905 functional group syntax error code (997 and 999);
- ``ak5``: AK502 / IK502 transaction set syntax error code;
- ``ak3``: AK304 / IK304 segment syntax error code;
- ``ak4``: AK403 / IK403 data element syntax error code.

A defect with no column set is not reported in an acknowledgment (the file was still read as sent).
Element defects also make their segment an AK3 code 8 ("segment has data element errors") and a set
with any error an AK5 code 5 ("one or more segments in error"); the generator derives those two.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AckCodes:
    """The acknowledgment codes that report one defect; None where that level does not apply."""

    ta1: str | None = None
    ak9: str | None = None
    ak5: str | None = None
    ak3: str | None = None
    ak4: str | None = None

    def __bool__(self) -> bool:
        """True when some acknowledgment reports the defect."""
        return any((self.ta1, self.ak9, self.ak5, self.ak3, self.ak4))


@dataclass(frozen=True, slots=True)
class CodeInfo:
    """One code: its title, whether it stops reading, and its acknowledgment codes."""

    code: str
    title: str
    fatal: bool = False
    ack: AckCodes = AckCodes()


def _table(*rows: CodeInfo) -> dict[str, CodeInfo]:
    return {row.code: row for row in rows}


CODES: dict[str, CodeInfo] = _table(
    # Tokenizer: the bytes cannot be read as X12 at all.
    CodeInfo("X12-T001", "not X12: the input does not start with an ISA segment", fatal=True),
    CodeInfo("X12-T002", "truncated or malformed ISA header", fatal=True, ack=AckCodes(ta1="023")),
    CodeInfo("X12-T003", "invalid element separator", fatal=True, ack=AckCodes(ta1="026")),
    CodeInfo("X12-T004", "invalid component element separator", fatal=True, ack=AckCodes(ta1="027")),
    CodeInfo("X12-T005", "invalid segment terminator", fatal=True, ack=AckCodes(ta1="004")),
    CodeInfo("X12-T006", "segment longer than the configured maximum", fatal=True, ack=AckCodes(ta1="024")),
    # Interchange envelope (ISA/IEA).
    CodeInfo("X12-E001", "ISA is not fixed width (element padding)", ack=AckCodes(ta1="022")),
    CodeInfo("X12-E002", "ISA09 interchange date is not a valid YYMMDD date", ack=AckCodes(ta1="014")),
    CodeInfo("X12-E003", "ISA10 interchange time is not a valid HHMM time", ack=AckCodes(ta1="015")),
    CodeInfo("X12-E004", "ISA13 interchange control number is not numeric", ack=AckCodes(ta1="018")),
    CodeInfo("X12-E005", "ISA13 interchange control number is not 9 digits", ack=AckCodes(ta1="018")),
    CodeInfo("X12-E006", "ISA14 acknowledgment requested is not 0 or 1", ack=AckCodes(ta1="019")),
    CodeInfo("X12-E007", "ISA15 usage indicator is not P or T", ack=AckCodes(ta1="020")),
    CodeInfo("X12-E008", "ISA01 authorization information qualifier is invalid", ack=AckCodes(ta1="010")),
    CodeInfo("X12-E009", "ISA03 security information qualifier is invalid", ack=AckCodes(ta1="012")),
    CodeInfo("X12-E010", "ISA05 sender ID qualifier is invalid", ack=AckCodes(ta1="005")),
    CodeInfo("X12-E011", "ISA07 receiver ID qualifier is invalid", ack=AckCodes(ta1="007")),
    CodeInfo("X12-E012", "ISA06 interchange sender ID is blank", ack=AckCodes(ta1="006")),
    CodeInfo("X12-E013", "ISA08 interchange receiver ID is blank", ack=AckCodes(ta1="008")),
    CodeInfo("X12-E014", "ISA11 standards identifier / repetition separator is invalid", ack=AckCodes(ta1="016")),
    CodeInfo("X12-E015", "ISA12 interchange control version is not 5 digits", ack=AckCodes(ta1="017")),
    CodeInfo("X12-E016", "IEA02 does not match ISA13", ack=AckCodes(ta1="001")),
    CodeInfo("X12-E017", "IEA01 does not match the number of functional groups", ack=AckCodes(ta1="021")),
    CodeInfo("X12-E018", "IEA interchange trailer missing", ack=AckCodes(ta1="023")),
    CodeInfo("X12-E019", "duplicate interchange control number in the file", ack=AckCodes(ta1="025")),
    CodeInfo("X12-E020", "segment outside any interchange", ack=AckCodes(ta1="022")),
    CodeInfo("X12-E021", "last segment has no segment terminator", ack=AckCodes(ta1="023")),
    CodeInfo("X12-E022", "line break inside a segment"),
    CodeInfo("X12-E023", "empty segment"),
    # Functional group envelope (GS/GE).
    CodeInfo("X12-E031", "GE functional group trailer missing", ack=AckCodes(ak9="3")),
    CodeInfo("X12-E032", "GE02 does not match GS06", ack=AckCodes(ak9="4")),
    CodeInfo("X12-E033", "GE01 does not match the number of transaction sets", ack=AckCodes(ak9="5")),
    CodeInfo("X12-E034", "GS06 group control number is not 1 to 9 digits", ack=AckCodes(ak9="6")),
    CodeInfo("X12-E035", "GS01 functional identifier code is missing or invalid", ack=AckCodes(ak9="1")),
    CodeInfo("X12-E036", "GS08 version / release code is missing or invalid", ack=AckCodes(ak9="2")),
    CodeInfo("X12-E037", "GS04 group date is not a valid CCYYMMDD date", ack=AckCodes(ta1="024")),
    CodeInfo("X12-E038", "GS05 group time is not a valid HHMM[SS[dd]] time", ack=AckCodes(ta1="024")),
    CodeInfo("X12-E039", "duplicate group control number in the interchange", ack=AckCodes(ak9="19")),
    CodeInfo("X12-E040", "GS02, GS03 or GS07 is missing or invalid", ack=AckCodes(ta1="024")),
    CodeInfo("X12-E041", "segment inside an interchange but outside any functional group",
             ack=AckCodes(ta1="024")),
    # Transaction set envelope (ST/SE).
    CodeInfo("X12-E050", "SE transaction set trailer missing", ack=AckCodes(ak5="2")),
    CodeInfo("X12-E051", "SE02 does not match ST02", ack=AckCodes(ak5="3")),
    CodeInfo("X12-E052", "SE01 does not match the number of segments", ack=AckCodes(ak5="4")),
    CodeInfo("X12-E053", "ST01 transaction set identifier is missing or invalid", ack=AckCodes(ak5="6")),
    CodeInfo("X12-E054", "ST02 transaction set control number is missing or invalid", ack=AckCodes(ak5="7")),
    CodeInfo("X12-E055", "duplicate transaction set control number in the group", ack=AckCodes(ak5="23")),
    CodeInfo("X12-E056", "transaction set does not belong in this functional group", ack=AckCodes(ak5="1")),
    CodeInfo("X12-E057", "segment inside a functional group but outside any transaction set",
             ack=AckCodes(ta1="024")),
    # Segments inside a transaction set (AK3 / IK3).
    CodeInfo("X12-S001", "unrecognized segment ID", ack=AckCodes(ak3="1")),
    CodeInfo("X12-S002", "unexpected segment", ack=AckCodes(ak3="2")),
    CodeInfo("X12-S003", "mandatory segment missing", ack=AckCodes(ak3="3")),
    CodeInfo("X12-S004", "loop occurs over maximum times", ack=AckCodes(ak3="4")),
    CodeInfo("X12-S005", "segment exceeds maximum use", ack=AckCodes(ak3="5")),
    CodeInfo("X12-S006", "segment not in the defined transaction set", ack=AckCodes(ak3="6")),
    CodeInfo("X12-S007", "segment not in proper sequence", ack=AckCodes(ak3="7")),
    CodeInfo("X12-S008", "HL01 hierarchical ID is missing or repeated", ack=AckCodes(ak3="8")),
    CodeInfo("X12-S009", "HL02 parent ID is not an open parent level", ack=AckCodes(ak3="8")),
    CodeInfo("X12-S010", "count element does not match the segments counted", ack=AckCodes(ak3="8")),
    CodeInfo("X12-S011", "transaction set not supported (no definition)", ack=AckCodes(ak5="1")),
    # Data elements (AK4 / IK4).
    CodeInfo("X12-D001", "mandatory data element missing", ack=AckCodes(ak4="1")),
    CodeInfo("X12-D002", "conditional required data element missing", ack=AckCodes(ak4="2")),
    CodeInfo("X12-D003", "too many data elements", ack=AckCodes(ak4="3")),
    CodeInfo("X12-D004", "data element too short", ack=AckCodes(ak4="4")),
    CodeInfo("X12-D005", "data element too long", ack=AckCodes(ak4="5")),
    CodeInfo("X12-D006", "invalid character in data element", ack=AckCodes(ak4="6")),
    CodeInfo("X12-D007", "invalid code value", ack=AckCodes(ak4="7")),
    CodeInfo("X12-D008", "invalid date", ack=AckCodes(ak4="8")),
    CodeInfo("X12-D009", "invalid time", ack=AckCodes(ak4="9")),
    CodeInfo("X12-D010", "exclusion condition violated", ack=AckCodes(ak4="10")),
    CodeInfo("X12-D011", "code value not among the codes crossdock knows for this element"),
)


def code_info(code: str) -> CodeInfo:
    """The catalogue entry of `code`; raises KeyError for a code the codec never emits."""
    return CODES[code]
