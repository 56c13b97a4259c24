"""The `file` connector: settled files in, atomic files out."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from crossdock.connectors import file as file_connector
from crossdock.connectors.base import ConnectorContext, load_connector
from crossdock.connectors.file import SPEC, FileSink, FileSource
from crossdock.dsl.options import Role
from crossdock.engine.clock import ManualClock
from crossdock.engine.errors import PermanentError, TransientError
from crossdock.engine.message import Inbound, Message, Outcome, derived_id

pytestmark = pytest.mark.anyio


class ClockThatTouches(ManualClock):
    """A manual clock that runs `between` whenever the source sleeps, i.e. between its two looks."""

    def __init__(self, between: Callable[[], None]) -> None:
        super().__init__()
        self.between = between

    async def sleep(self, seconds: float) -> None:
        self.between()
        await super().sleep(seconds)


def options(**overrides: Any) -> dict[str, Any]:
    """Options as the runtime passes them: every declared default, then the route's values."""
    values = {spec.key: spec.default for spec in SPEC.options}
    values["settle"] = 0.01
    values.update(overrides)
    return values


def source(folder: Path, clock: ManualClock | None = None, **overrides: Any) -> FileSource:
    context = ConnectorContext(owner="test", clock=clock or ManualClock())
    return file_connector.open_source(options(folder=str(folder), **overrides), context)


def sink(folder: Path, **overrides: Any) -> FileSink:
    return file_connector.open_sink(options(folder=str(folder), **overrides), ConnectorContext(owner="test"))


async def take(src: FileSource) -> list[Inbound]:
    return [inbound async for inbound in src.receive(once=True)]


def message(body: Any = b'{"po": "PO-1"}', file_name: str | None = None) -> Message:
    meta = {"file_name": file_name} if file_name is not None else {}
    return Message(body=body, route="r", message_id="m-1", correlation_id="c-1", meta=meta)


# -- the spec --------------------------------------------------------------------------------------


def test_spec_is_registered_and_declares_roles() -> None:
    assert load_connector("file").SPEC is SPEC
    by_key = {spec.key: spec for spec in SPEC.options}
    assert by_key["folder"].required
    assert by_key["after_success_move_to"].roles == frozenset({Role.SOURCE})
    assert by_key["file_name"].roles == frozenset({Role.SINK})
    assert by_key["create_folders"].default is True
    assert all(spec.description for spec in SPEC.options)


# -- source ----------------------------------------------------------------------------------------


async def test_source_takes_settled_files_in_name_order(tmp_path: Path) -> None:
    (tmp_path / "b.json").write_bytes(b"second")
    (tmp_path / "a.json").write_bytes(b"\x00first")
    async with source(tmp_path) as src:
        taken = await take(src)
    assert [(i.meta["file_name"], i.body) for i in taken] == [("a.json", b"\x00first"), ("b.json", b"second")]
    stat = (tmp_path / "a.json").stat()
    path = tmp_path / "a.json"
    assert taken[0].message_id == derived_id(str(path.absolute()), str(stat.st_size), str(stat.st_mtime_ns))
    assert taken[0].meta["path"] == str(path)


async def test_source_skips_hidden_temporary_unmatched_files_and_folders(tmp_path: Path) -> None:
    for name in (".hidden.x12", "a.x12.tmp", "b.x12.part", "c.x12.crdownload", "d.json", "e.X12.TMP"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.x12").mkdir()
    (tmp_path / "order.x12").write_bytes(b"ISA")
    async with source(tmp_path, files="*.x12") as src:
        taken = await take(src)
    assert [i.meta["file_name"] for i in taken] == ["order.x12"]


async def test_source_skips_a_file_still_being_written(tmp_path: Path) -> None:
    growing = tmp_path / "big.json"
    growing.write_bytes(b"part one,")
    (tmp_path / "still.json").write_bytes(b"done")

    def append() -> None:
        with growing.open("ab") as handle:
            handle.write(b" part two")

    async with source(tmp_path, clock=ClockThatTouches(append)) as src:
        first = await take(src)
    assert [i.meta["file_name"] for i in first] == ["still.json"]
    async with source(tmp_path) as src:
        second = await take(src)
    assert [(i.meta["file_name"], i.body) for i in second] == [("big.json", b"part one, part two"),
                                                              ("still.json", b"done")]


async def test_source_waits_settle_between_its_two_looks(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_bytes(b"x")
    clock = ManualClock()
    async with source(tmp_path, clock=clock, settle=0.75) as src:
        await take(src)
    assert clock.sleeps == [0.75]


async def test_source_does_not_offer_a_file_in_flight_twice(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_bytes(b"x")
    async with source(tmp_path) as src:
        first = await take(src)
        assert await take(src) == []
        await first[0].release()
        again = await take(src)
    assert [i.meta["file_name"] for i in again] == ["a.json"]
    assert again[0].message_id == first[0].message_id


async def test_ack_success_moves_to_the_done_folder_by_default(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_bytes(b"x")
    async with source(tmp_path) as src:
        [inbound] = await take(src)
        await inbound.ack(Outcome.DELIVERED)
        assert await take(src) == []
    assert not (tmp_path / "a.json").exists()
    assert (tmp_path / "done" / "a.json").read_bytes() == b"x"


async def test_ack_success_moves_to_the_configured_folder(tmp_path: Path) -> None:
    inbox, archive = tmp_path / "inbox", tmp_path / "archive"
    inbox.mkdir()
    (inbox / "a.json").write_bytes(b"x")
    async with source(inbox, after_success_move_to=str(archive)) as src:
        [inbound] = await take(src)
        await inbound.ack(Outcome.FILTERED)
    assert (archive / "a.json").read_bytes() == b"x"
    assert list(inbox.iterdir()) == [inbox / "failed"]


async def test_ack_success_deletes_when_asked(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_bytes(b"x")
    async with source(tmp_path, after_success_delete=True) as src:
        [inbound] = await take(src)
        await inbound.ack(Outcome.DUPLICATE)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["failed"]


async def test_ack_dead_lettered_moves_to_the_failed_folder(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_bytes(b"x")
    async with source(tmp_path, after_failure_move_to="rejected") as src:
        [inbound] = await take(src)
        await inbound.ack(Outcome.DEAD_LETTERED)
    assert (tmp_path / "rejected" / "a.json").read_bytes() == b"x"
    assert not (tmp_path / "a.json").exists()


async def test_moves_never_overwrite(tmp_path: Path) -> None:
    done = tmp_path / "done"
    done.mkdir()
    (done / "a.json").write_bytes(b"earlier")
    (done / "a-1.json").write_bytes(b"earlier too")
    (tmp_path / "a.json").write_bytes(b"now")
    async with source(tmp_path) as src:
        [inbound] = await take(src)
        await inbound.ack(Outcome.DELIVERED)
    assert (done / "a.json").read_bytes() == b"earlier"
    assert (done / "a-1.json").read_bytes() == b"earlier too"
    assert (done / "a-2.json").read_bytes() == b"now"


async def test_done_file_marker_gates_the_file_and_is_removed_after(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_bytes(b"a")
    (tmp_path / "b.json").write_bytes(b"b")
    (tmp_path / "b.json.done").write_bytes(b"")
    async with source(tmp_path, done_file=".done") as src:
        taken = await take(src)
        assert [i.meta["file_name"] for i in taken] == ["b.json"]
        await taken[0].ack(Outcome.DELIVERED)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "done", "failed"]
    assert (tmp_path / "done" / "b.json").read_bytes() == b"b"


async def test_missing_folder_is_created_when_allowed(tmp_path: Path) -> None:
    inbox = tmp_path / "new" / "inbox"
    async with source(inbox):
        assert inbox.is_dir()
        assert (inbox / "done").is_dir() and (inbox / "failed").is_dir()


async def test_missing_folder_is_a_permanent_error_without_create_folders(tmp_path: Path) -> None:
    with pytest.raises(PermanentError) as caught:
        async with source(tmp_path / "absent", create_folders=False):
            pass
    assert caught.value.code == "FIL001"
    assert str(tmp_path / "absent") in caught.value.message


async def test_move_and_delete_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PermanentError) as caught:
        source(tmp_path, after_success_move_to="archive", after_success_delete=True)
    assert caught.value.code == "FIL004"


async def test_a_file_that_cannot_be_moved_stays_in_flight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.json").write_bytes(b"x")

    def refuse(*_: object) -> None:
        raise OSError(errno.EACCES, "Permission denied")

    async with source(tmp_path) as src:
        [inbound] = await take(src)
        monkeypatch.setattr(file_connector, "move_without_overwrite", refuse)
        with pytest.raises(PermanentError) as caught:
            await inbound.ack(Outcome.DELIVERED)
        assert await take(src) == []
    assert caught.value.code == "FIL003"
    assert (tmp_path / "a.json").exists()


async def test_continuous_receive_polls_every_check_interval(tmp_path: Path) -> None:
    clock = ManualClock()
    async with source(tmp_path, clock=clock, check_every=30.0) as src:
        stream = src.receive(once=False)
        (tmp_path / "a.json").write_bytes(b"x")
        first = await anext(stream)
        (tmp_path / "b.json").write_bytes(b"y")
        second = await anext(stream)
        await stream.aclose()
    assert [first.meta["file_name"], second.meta["file_name"]] == ["a.json", "b.json"]
    assert clock.sleeps == [0.01, 30.0, 0.01]


# -- sink ------------------------------------------------------------------------------------------


async def test_sink_writes_the_body_under_the_rendered_name(tmp_path: Path) -> None:
    async with sink(tmp_path / "out") as out:
        await out.send(message(b"\x00{}", file_name="PO-1.json"))
    assert (tmp_path / "out" / "PO-1.json").read_bytes() == b"\x00{}"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["PO-1.json"]


async def test_sink_defaults_to_the_message_id(tmp_path: Path) -> None:
    async with sink(tmp_path) as out:
        await out.send(message())
    assert (tmp_path / "m-1.json").read_bytes() == b'{"po": "PO-1"}'


async def test_sink_overwrites_the_same_name_on_redelivery(tmp_path: Path) -> None:
    async with sink(tmp_path) as out:
        await out.send(message(b"first", "a.json"))
        await out.send(message(b"second", "a.json"))
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
    assert (tmp_path / "a.json").read_bytes() == b"second"


async def test_sink_never_shows_a_partial_file_under_the_final_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, bool, bytes]] = []
    real_replace = os.replace

    def watching_replace(src: str | Path, dst: str | Path) -> None:
        seen.append((Path(src).name, Path(dst).exists(), Path(src).read_bytes()))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", watching_replace)
    async with sink(tmp_path) as out:
        await out.send(message(b"complete body", "a.json"))
    [(temp_name, final_existed, temp_body)] = seen
    assert temp_name.startswith(".a.json.") and temp_name.endswith(".tmp")
    assert not final_existed
    assert temp_body == b"complete body"


@pytest.mark.parametrize("name", ["../escape.json", "sub/a.json", "..", ".hidden.json", "a\\b.json", "/x"])
async def test_sink_refuses_names_that_leave_the_folder(tmp_path: Path, name: str) -> None:
    async with sink(tmp_path / "out") as out:
        with pytest.raises(PermanentError) as caught:
            await out.send(message(file_name=name))
    assert caught.value.code == "FIL002"
    assert [p.name for p in tmp_path.rglob("*")] == ["out"]


async def test_sink_refuses_a_body_that_is_not_bytes(tmp_path: Path) -> None:
    async with sink(tmp_path) as out:
        with pytest.raises(PermanentError) as caught:
            await out.send(message({"po": "PO-1"}))
    assert caught.value.code == "FIL005"


@pytest.mark.parametrize(
    ("code", "expected"),
    [(errno.ENOSPC, TransientError), (errno.EIO, TransientError), (errno.EAGAIN, TransientError),
     (errno.EACCES, PermanentError), (errno.ENAMETOOLONG, PermanentError)],
)
async def test_sink_classifies_os_errors_and_removes_the_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, expected: type[Exception]
) -> None:
    def failing_fsync(fd: int) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "fsync", failing_fsync)
    async with sink(tmp_path) as out:
        with pytest.raises(expected) as caught:
            await out.send(message(b"x", "a.json"))
    assert str(tmp_path / "a.json") in str(caught.value)
    assert list(tmp_path.iterdir()) == []


async def test_a_move_cut_short_by_a_crash_is_finished_not_processed_again(tmp_path: Path) -> None:
    inbox = tmp_path / "in"
    done = inbox / "done"
    done.mkdir(parents=True)
    (inbox / "a.json").write_bytes(b"{}")
    (inbox / "b.json").write_bytes(b"{}")
    os.link(inbox / "a.json", done / "a.json")  # killed between the link and the unlink of the move
    async with source(inbox) as src:
        taken = await take(src)
    assert [i.meta["file_name"] for i in taken] == ["b.json"]
    assert not (inbox / "a.json").exists() and (done / "a.json").read_bytes() == b"{}"
