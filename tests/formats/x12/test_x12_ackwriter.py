"""Writing 997s, 999s and TA1s: content segment by segment, and every acknowledgment reads back strictly."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from x12_builders import FIXTURES, GS, ISA, ORDER, Text, interchange, isa_with, replace, transaction_set

from crossdock.formats import x12
from crossdock.formats.x12.ackwriter import acknowledge
from crossdock.formats.x12.envelopes import MemoryControlNumbers
from crossdock.formats.x12.profile import PartnerProfile

pytestmark = pytest.mark.anyio

WHEN = dt.datetime(2024, 1, 16, 10, 0)
PROFILE = PartnerProfile(name="sender", their_id="SENDER", our_id="RECEIVER")
PROFILE_5010 = dataclasses.replace(PROFILE, version="005010")
ISA_5010 = isa_with(ISA11="^", ISA12="00501")
GS_5010 = GS.replace("*004010", "*005010")

ACK_ISA = "ISA*00*          *00*          *ZZ*RECEIVER       *ZZ*SENDER         *240116*1000*U*00401*000000001*0*P*>"
ACK_ISA_5010 = ACK_ISA.replace("*U*00401*", "*^*00501*")
ACK_GS = "GS*FA*RECEIVER*SENDER*20240116*1000*1*X*004010"
ACK_GS_5010 = "GS*FA*RECEIVER*SENDER*20240116*1000*1*X*005010X231A1"
CLOSING = ["GE*1*1", "IEA*1*000000001"]


async def answer(data: bytes, profile: PartnerProfile = PROFILE, *, mode: x12.Mode = x12.Mode.STRICT,
                 numbers: MemoryControlNumbers | None = None) -> list[list[str]]:
    """The acknowledgment interchanges for `data`, each as its segments; each one reads back strictly, clean."""
    document = x12.read(data, mode=mode)
    interchanges = await acknowledge(document, profile, numbers or MemoryControlNumbers(), when=WHEN)
    answers = []
    for built in interchanges:
        written = x12.encode(built)
        assert x12.read(written, mode=x12.Mode.STRICT).all_issues() == []
        answers.append(written.decode().split("~")[:-1])
    return answers


async def test_an_accepted_group_gets_a_997_with_swapped_ids_and_new_numbers() -> None:
    assert await answer(Text(interchange(transaction_set(ORDER))).data) == [[
        ACK_ISA, ACK_GS, "ST*997*0001", "AK1*PO*1", "AK2*850*0001", "AK5*A", "AK9*A*1*1*1", "SE*6*0001", *CLOSING]]


async def test_a_005010_group_gets_a_999_with_ak103_and_the_implementation_guide() -> None:
    lines = interchange(transaction_set(ORDER), isa=ISA_5010, gs=GS_5010)
    assert await answer(Text(lines).data, PROFILE_5010) == [[
        ACK_ISA_5010, ACK_GS_5010, "ST*999*0001*005010X231A1", "AK1*PO*1*005010", "AK2*850*0001", "IK5*A",
        "AK9*A*1*1*1", "SE*6*0001", *CLOSING]]


async def test_a_profile_that_wants_999_gets_a_997_for_a_004010_group() -> None:
    profile = dataclasses.replace(PROFILE, acknowledgment="999")
    ack, = await answer(Text(interchange(transaction_set(ORDER))).data, profile)
    assert ack[1:3] == [ACK_GS, "ST*997*0001"]


async def test_control_numbers_come_from_the_source() -> None:
    ack, = await answer(Text(interchange(transaction_set(ORDER))).data, numbers=MemoryControlNumbers(start=41))
    assert (ack[0].split("*")[13], ack[1].split("*")[6], ack[2], ack[-2], ack[-1]) == (
        "000000041", "41", "ST*997*0041", "GE*1*41", "IEA*1*000000041")


async def test_an_element_error_rejects_the_set_with_ak3_and_ak4() -> None:
    lines = interchange(transaction_set(["BEG*00*SA*PO1**20241399", *ORDER[1:]]),
                        transaction_set(ORDER, control="0002"))
    ack, = await answer(Text(lines).data)
    assert ack[2:-2] == ["ST*997*0001", "AK1*PO*1",
                         "AK2*850*0001", "AK3*BEG*2**8", "AK4*5*373*8*20241399", "AK5*R*5",
                         "AK2*850*0002", "AK5*A",
                         "AK9*P*2*2*1", "SE*10*0001"]


async def test_a_999_names_the_business_unit_and_the_element_that_triggered_a_syntax_note() -> None:
    body = ["BEG*00*SA*PO1**20241399", "N1*ST*ACME*92", *ORDER[1:]]
    ack, = await answer(Text(interchange(transaction_set(body), isa=ISA_5010, gs=GS_5010)).data, PROFILE_5010)
    assert ack[3:-2] == ["AK1*PO*1*005010", "AK2*850*0001",
                         "IK3*BEG*2**8", "CTX*BEG03>PO1", "IK4*5*373*8*20241399",
                         "IK3*N1*3*N1*8", "CTX*BEG03>PO1", "IK4*4*67*2", "CTX*SITUATIONAL TRIGGER*N1*3*N1*3",
                         "IK5*R*5", "AK9*R*1*1*0", "SE*13*0001"]


async def test_a_segment_count_mismatch_is_ak5_code_4() -> None:
    lines = replace(interchange(transaction_set(ORDER)), "SE*5*0001", "SE*9*0001")
    ack, = await answer(Text(lines).data)
    assert ack[4:-2] == ["AK2*850*0001", "AK5*R*4", "AK9*R*1*1*0", "SE*6*0001"]


async def test_a_ge_control_number_mismatch_rejects_the_group_and_its_sets() -> None:
    lines = replace(interchange(transaction_set(ORDER)), "GE*1*1", "GE*1*2")
    ack, = await answer(Text(lines).data)
    assert ack[3:-2] == ["AK1*PO*1", "AK2*850*0001", "AK5*R", "AK9*R*1*1*0*4", "SE*6*0001"]


async def test_a_ge_count_mismatch_read_leniently_accepts_with_errors() -> None:
    lines = replace(interchange(transaction_set(ORDER)), "GE*1*1", "GE*2*1")
    ack, = await answer(Text(lines).data, mode=x12.Mode.LENIENT)
    assert ack[3:-2] == ["AK1*PO*1", "AK2*850*0001", "AK5*A", "AK9*E*2*1*1*5", "SE*6*0001"]


async def test_accepted_sets_get_no_ak2_when_the_partner_wants_only_errors() -> None:
    bad = transaction_set(["BEG*00*SA*PO1**20241399", *ORDER[1:]], control="0002")
    lines = interchange(transaction_set(ORDER), bad, transaction_set(ORDER, control="0003"))
    profile = dataclasses.replace(PROFILE, acknowledge_accepted_sets=False)
    ack, = await answer(Text(lines).data, profile)
    assert ack[3:-2] == ["AK1*PO*1", "AK2*850*0002", "AK3*BEG*2**8", "AK4*5*373*8*20241399", "AK5*R*5",
                         "AK9*P*3*3*2", "SE*8*0001"]
    clean, = await answer(Text(interchange(transaction_set(ORDER))).data, profile)
    assert clean[3:-2] == ["AK1*PO*1", "AK9*A*1*1*1", "SE*4*0001"]


async def test_an_isa13_iea02_mismatch_is_answered_by_a_ta1_alone_when_the_partner_wants_one() -> None:
    data = Text(replace(interchange(transaction_set(ORDER)), "IEA", "IEA*1*000000002")).data
    expected = [ACK_ISA, "TA1*000000001*240115*0930*R*001", "IEA*0*000000001"]
    assert await answer(data, dataclasses.replace(PROFILE, ta1=True)) == [expected]
    requested = Text(replace(interchange(transaction_set(ORDER), isa=isa_with(ISA14="1")), "IEA",
                             "IEA*1*000000002")).data
    assert await answer(requested) == [expected]


async def test_without_ta1_a_rejected_interchange_rejects_its_groups() -> None:
    data = Text(replace(interchange(transaction_set(ORDER)), "IEA", "IEA*1*000000002")).data
    ack, = await answer(data)
    assert ack[3:-2] == ["AK1*PO*1", "AK2*850*0001", "AK5*R", "AK9*R*1*1*0", "SE*6*0001"]


async def test_a_requested_ta1_for_a_good_interchange_accepts_it_next_to_the_997() -> None:
    ack, = await answer(Text(interchange(transaction_set(ORDER), isa=isa_with(ISA14="1"))).data)
    assert ack[:4] == [ACK_ISA, "TA1*000000001*240115*0930*A*000", ACK_GS, "ST*997*0001"]


async def test_a_partner_that_wants_no_acknowledgment_gets_only_a_requested_ta1() -> None:
    profile = dataclasses.replace(PROFILE, acknowledgment="none")
    assert await answer(Text(interchange(transaction_set(ORDER))).data, profile) == []
    assert await answer(Text(interchange(transaction_set(ORDER), isa=isa_with(ISA14="1"))).data, profile) == [
        [ACK_ISA, "TA1*000000001*240115*0930*A*000", "IEA*0*000000001"]]


async def test_acknowledgments_are_never_acknowledged() -> None:
    assert await answer((FIXTURES / "valid" / "997.004010.x12").read_bytes()) == []
    assert await answer((FIXTURES / "valid" / "999.005010.x12").read_bytes(), PROFILE_5010) == []


async def test_each_group_gets_its_own_acknowledgment_group() -> None:
    lines = [ISA, GS, *transaction_set(ORDER), "GE*1*1", GS.replace("*1*X*", "*2*X*"),
             *transaction_set(ORDER, control="0007"), "GE*1*2", "IEA*2*000000001"]
    ack, = await answer(Text(lines).data)
    assert [line for line in ack if line.startswith(("GS", "ST", "AK1", "AK2", "GE", "IEA"))] == [
        ACK_GS, "ST*997*0001", "AK1*PO*1", "AK2*850*0001", "GE*1*1",
        ACK_GS.replace("*1*X*", "*2*X*"), "ST*997*0002", "AK1*PO*2", "AK2*850*0007", "GE*1*2", "IEA*2*000000001"]


async def test_values_that_cannot_be_echoed_are_replaced_or_left_out() -> None:
    # Read with | as element separator: a bad date holding our separator * is not copied into AK404,
    # and a GS06 with letters is acknowledged as group 0.
    lines = interchange(transaction_set(["BEG*00*SA*PO1**2024+115", *ORDER[1:]]), gs=GS.replace("*1*X*", "*A1*X*"))
    lines = replace(lines, "GE", "GE*1*A1")
    data = Text(lines).data.replace(b"*", b"|").replace(b"+", b"*")
    ack, = await answer(data)
    assert ack[3:-2] == ["AK1*PO*0", "AK2*850*0001", "AK3*BEG*2**8", "AK4*5*373*8", "AK5*R*5", "AK9*R*1*1*0*6",
                         "SE*8*0001"]


async def test_the_profile_sets_the_delimiters() -> None:
    profile = dataclasses.replace(PROFILE, element_separator="|", segment_terminator="\n", component_separator="^")
    document = x12.read(Text(interchange(transaction_set(ORDER))).data)
    built, = await acknowledge(document, profile, MemoryControlNumbers(), when=WHEN)
    written = x12.encode(built)
    assert written.splitlines()[2:5] == [b"ST|997|0001", b"AK1|PO|1", b"AK2|850|0001"]
    assert written.splitlines()[0].endswith(b"|0|P|^") and x12.read(written).all_issues() == []
