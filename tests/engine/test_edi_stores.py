"""Control numbers never repeat, survive a reopen, and the sent log reconciles acknowledgments."""

from __future__ import annotations

from pathlib import Path

import pytest

from crossdock.engine.stores.edi import MAX_CONTROL_NUMBER, open_edi_stores

pytestmark = pytest.mark.anyio


async def test_control_numbers_count_per_partner_and_kind_and_survive_a_reopen(tmp_path: Path) -> None:
    stores = await open_edi_stores(tmp_path / "crossdock.db")
    assert [await stores.numbers.next("acme", "interchange") for _ in range(3)] == [1, 2, 3]
    assert await stores.numbers.next("acme", "group") == 1
    assert await stores.numbers.next("globex", "interchange") == 1
    await stores.close()
    reopened = await open_edi_stores(tmp_path / "crossdock.db")
    assert await reopened.numbers.next("acme", "interchange") == 4
    await reopened.db.run(lambda conn: conn.execute(
        "UPDATE edi_counters SET value = ? WHERE partner = 'acme' AND kind = 'set'", (MAX_CONTROL_NUMBER,)))
    assert await reopened.numbers.next("acme", "set") == 1  # nine digits wrap instead of overflowing ISA13
    await reopened.close()


async def test_sent_log_reconciles_by_group_and_set_and_reports_overdue(tmp_path: Path) -> None:
    stores = await open_edi_stores(tmp_path / "crossdock.db")
    await stores.sent.record("acme", "17", [("0001", "855"), ("0002", "855")], sent_at=100.0, due_at=200.0)
    await stores.sent.record("acme", "18", [("0003", "856")], sent_at=150.0, due_at=250.0)
    assert [s.set_control for s in await stores.sent.overdue(240.0)] == ["0001", "0002"]
    matched = await stores.sent.reconcile("acme", "17", {"0002": "R"}, "P", at=210.0)
    assert matched == 2
    by_control = {s.set_control: s.status for s in await stores.sent.sets("acme", "17")}
    assert by_control == {"0001": "P", "0002": "R"}
    assert [s.set_control for s in await stores.sent.overdue(300.0)] == ["0003"]
    assert await stores.sent.reconcile("acme", "99", {}, "A", at=300.0) == 0
    await stores.close()
