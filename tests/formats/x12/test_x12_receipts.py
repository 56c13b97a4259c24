"""Reading the 997s and 999s partners send into receipts, and reconciling them with the sent log."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from x12_builders import FIXTURES, ORDER, Text, interchange, transaction_set

from crossdock.engine.stores.edi import open_edi_stores
from crossdock.formats import x12
from crossdock.formats.x12.acks import AckReceipt, received_acknowledgments
from crossdock.formats.x12.envelopes import MemoryControlNumbers, PartnerControlNumbers, sent_groups
from crossdock.formats.x12.profile import PartnerProfile

pytestmark = pytest.mark.anyio

ACK_ISA = "ISA*00*          *00*          *ZZ*ACME           *ZZ*CROSSDOCK      *240116*1000*U*00401*000000007*0*P*>"
ACK_GS = "GS*FA*ACME*CROSSDOCK*20240116*1000*7*X*004010"


def test_a_997_gives_the_group_status_and_each_listed_set() -> None:
    receipt, = received_acknowledgments(x12.read(FIXTURES / "valid" / "997.004010.x12"))
    assert receipt == AckReceipt(
        sender_qualifier="ZZ", sender="SUPPLIERCO", group_sender="SUPPLIERCO", kind="997", control_number="0001",
        functional_id="PO", group_control="1", group_status="E", group_errors=[],
        sets={"0001": "A", "0002": "E"}, set_errors={"0002": ["5"]}, issues=[])


def test_a_999_reads_ik5_and_the_group_codes() -> None:
    receipt, = received_acknowledgments(x12.read(FIXTURES / "valid" / "999.005010.x12"))
    assert (receipt.kind, receipt.group_status, receipt.sets, receipt.set_errors) == (
        "999", "E", {"0001": "E"}, {"0001": ["I5"]})


def test_zero_padded_group_numbers_are_normalized_and_other_sets_ignored() -> None:
    ack = ["ST*997*0001", "AK1*PR*000000017", "AK2*855*0003", "AK5*R*5", "AK9*R*1*1*0*5", "SE*6*0001"]
    order = transaction_set(ORDER, control="0002")
    no_ak9 = ["ST*997*0003", "AK1*PR*18", "SE*3*0003"]
    lines = [ACK_ISA, ACK_GS, *ack, *no_ak9, "GE*2*7", "GS*PO*ACME*CROSSDOCK*20240116*1000*8*X*004010", *order,
             "GE*1*8", "IEA*2*000000007"]
    receipt, = received_acknowledgments(x12.read(Text(lines).data))
    assert (receipt.sender, receipt.functional_id, receipt.group_control, receipt.group_status,
            receipt.group_errors, receipt.sets) == ("ACME", "PR", "17", "R", ["5"], {"0003": "R"})


async def test_what_crossdock_sends_is_reconciled_with_what_the_partner_answers(tmp_path: Path) -> None:
    stores = await open_edi_stores(tmp_path / "crossdock.db")
    profile = PartnerProfile(name="acme", their_id="ACME", our_id="CROSSDOCK")
    numbers = PartnerControlNumbers(stores.numbers, profile.name)
    sets = [x12.build_set({"BAK01": "00", "BAK02": "AC", "BAK03": f"PO-{n}", "BAK04": "20240115"},
                          x12.default_catalog().definition("855", "004010"),  # type: ignore[arg-type]
                          x12.set_control_number(await numbers.next("set"))) for n in (1, 2)]
    sets[1].find("BAK").elements[3] = "20241399"  # type: ignore[union-attr]  # the partner will reject this one
    sent = await x12.envelope(sets, profile, numbers, when=dt.datetime(2024, 1, 15, 9, 30))
    for group_control, members in sent_groups(sent):
        await stores.sent.record(profile.name, group_control, members, sent_at=0.0, due_at=100.0)
    # The partner acknowledges what it read; crossdock reads that acknowledgment.
    partner = PartnerProfile(name="crossdock", their_id="CROSSDOCK", our_id="ACME", acknowledge_accepted_sets=False)
    answer = await x12.acknowledge(x12.read(x12.encode(sent)), partner, MemoryControlNumbers())
    receipt, = received_acknowledgments(x12.read(x12.encode(answer)))
    assert (receipt.sender, receipt.group_control, receipt.group_status, receipt.sets) == (
        "ACME", "1", "P", {"0002": "R"})
    matched = await stores.sent.reconcile(receipt.sender.lower(), receipt.group_control, receipt.sets,
                                          receipt.group_status, at=50.0)
    statuses = {s.set_control: s.status for s in await stores.sent.sets("acme", "1")}
    assert (matched, statuses) == (2, {"0001": "P", "0002": "R"})
    await stores.close()


def test_an_order_interchange_has_no_receipts() -> None:
    assert received_acknowledgments(x12.read(Text(interchange(transaction_set(ORDER))).data)) == []
