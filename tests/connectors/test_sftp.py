"""The `sftp` connector against a real OpenSSH server (tests/servers/sshd.py): files in, files out,
host keys checked, errors classified, and no file processed twice across a crash."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from servers.sshd import SshServer

from crossdock.connectors import sftp as sftp_connector
from crossdock.connectors.base import ConnectorContext, load_connector
from crossdock.connectors.sftp import SPEC, SftpSession, SftpSink, SftpSource
from crossdock.dsl.lint import lint
from crossdock.dsl.options import Role, Scope
from crossdock.engine.clock import ManualClock
from crossdock.engine.errors import PermanentError, TransientError, TransientKind
from crossdock.engine.message import Inbound, Message, Outcome, derived_id
from crossdock.engine.stores.readlog import ReadLog, ReadRecord

pytestmark = pytest.mark.anyio


class ClockThatTouches(ManualClock):
    """A manual clock that runs `between` whenever the source sleeps, i.e. between its two looks."""

    def __init__(self, between: Callable[[], None]) -> None:
        super().__init__()
        self.between = between

    async def sleep(self, seconds: float) -> None:
        self.between()
        await super().sleep(seconds)


def options(server: SshServer, folder: Path | str, **overrides: Any) -> dict[str, Any]:
    """Options as the runtime passes them: every declared default, the connection, then the step's values."""
    values = {spec.key: spec.default for spec in SPEC.options}
    values.update(host=server.host, port=server.port, user=server.user, key=str(server.client_key),
                  known_hosts=str(server.known_hosts), folder=str(folder), settle=0.01)
    values.update(overrides)
    return values


def context(data: Path, clock: ManualClock | None = None) -> ConnectorContext:
    return ConnectorContext(owner="test", data_dir=data, clock=clock or ManualClock())


def source(server: SshServer, folder: Path, data: Path, clock: ManualClock | None = None,
           **overrides: Any) -> SftpSource:
    return sftp_connector.open_source(options(server, folder, **overrides), context(data, clock))


def sink(server: SshServer, folder: Path | str, data: Path, **overrides: Any) -> SftpSink:
    return sftp_connector.open_sink(options(server, folder, **overrides), context(data))


async def take(src: SftpSource) -> list[Inbound]:
    return [inbound async for inbound in src.receive(once=True)]


def message(body: Any = b'{"po": "PO-1"}', file_name: str | None = "po-1.json") -> Message:
    meta = {"file_name": file_name} if file_name is not None else {}
    return Message(body=body, route="r", message_id="m-1", correlation_id="c-1", meta=meta)


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def box(sshd: SshServer) -> Path:
    """A fresh remote folder (its local path is its remote path)."""
    return sshd.new_folder()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """The data folder where the source keeps its read log."""
    return tmp_path / "data"


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word (a hung server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


# -- the spec --------------------------------------------------------------------------------------


def test_spec_is_registered_with_connection_options_and_secrets() -> None:
    assert load_connector("sftp").SPEC is SPEC
    assert SPEC.connection == "required"
    by_key = {spec.key: spec for spec in SPEC.options}
    for key in ("host", "port", "user", "key", "key_passphrase", "password", "known_hosts", "connect_timeout"):
        assert by_key[key].scope is Scope.CONNECTION, key
    assert {k for k, spec in by_key.items() if spec.secret} == {"key", "key_passphrase", "password"}
    assert by_key["known_hosts"].required and by_key["host"].required and by_key["folder"].required
    assert by_key["after_success_move_to"].roles == frozenset({Role.SOURCE})
    assert by_key["file_name"].roles == frozenset({Role.SINK})
    assert by_key["file_name"].default == "{{ message_id }}{{ extension }}"
    assert all(spec.description and spec.example for spec in SPEC.options)


def test_the_file_connector_s_option_names_mean_the_same_here() -> None:
    file_keys = {spec.key for spec in load_connector("file").SPEC.options}
    sftp_keys = {spec.key for spec in SPEC.options}
    assert file_keys <= sftp_keys


def test_secrets_stay_out_of_the_settings_repr(sshd: SshServer, box: Path, tmp_path: Path) -> None:
    settings = sftp_connector.ConnectionSettings.from_options(
        options(sshd, box, key=sshd.client_key.read_text(), password="hunter2-password",
                key_passphrase="correct-horse"), context(tmp_path))
    text = repr(settings)
    assert settings.key_text is not None and settings.key_file is None
    assert "hunter2-password" not in text and "correct-horse" not in text and "PRIVATE KEY" not in text


ROUTE_FILE = """
connection "acme-sftp" is sftp
  host env "ACME_SFTP_HOST"
  port 2222
  user "crossdock"
  key secret "ACME_SFTP_KEY"
  known hosts "config/known_hosts"
end
route "r"
  from sftp "acme-sftp"
    folder "/outbound/850"
    files "*.x12"
    check every 30s
    after success move to "/archive"
    after failure move to "/rejected"
  to sftp "acme-sftp" folder "/inbound/997"
  dead letter to store
end
"""


def test_the_documented_route_lints_and_resolves_its_options(tmp_path: Path) -> None:
    (tmp_path / "acme.route").write_text(ROUTE_FILE)
    result = lint([tmp_path])
    assert result.errors == [] and result.plan is not None
    [route] = result.plan.routes.values()
    assert route.source.options.get("check_every") == 30.0
    assert route.source.options.get("port") == 2222
    assert route.source.options.get("after_failure_move_to") == "/rejected"


def test_secrets_and_hosts_belong_in_the_connection_block(tmp_path: Path) -> None:
    text = ROUTE_FILE.replace('    files "*.x12"\n', '    files "*.x12"\n    host "elsewhere"\n')
    text = text.replace('  key secret "ACME_SFTP_KEY"', '  key "-----BEGIN OPENSSH PRIVATE KEY-----"')
    (tmp_path / "acme.route").write_text(text)
    codes = {(d.code, d.span.line) for d in lint([tmp_path]).errors}
    assert codes == {("OPT002", 6), ("OPT003", 13)}


# -- round trips -----------------------------------------------------------------------------------


async def test_upload_then_download_round_trip(sshd: SshServer, box: Path, data: Path) -> None:
    body = bytes(range(256)) * 1000  # binary, and larger than one SFTP read
    async with sink(sshd, box, data) as out:
        await out.send(message(body, "po-1.x12"))
        await out.send(message(b"second", "po-2.x12"))
    assert (box / "po-1.x12").read_bytes() == body
    async with source(sshd, box, data, files="*.x12") as src:
        taken = await take(src)
        assert [(i.meta["file_name"], i.body) for i in taken] == [("po-1.x12", body), ("po-2.x12", b"second")]
        for inbound in taken:
            await inbound.ack(Outcome.DELIVERED)
    assert names(box / "done") == ["po-1.x12", "po-2.x12"]


async def test_download_takes_matching_files_in_name_order_with_a_stable_id(sshd: SshServer, box: Path,
                                                                           data: Path) -> None:
    for name in ("b.x12", "a.x12", ".hidden.x12", "c.x12.tmp", "d.x12.part", "e.json"):
        (box / name).write_bytes(name.encode())
    (box / "sub.x12").mkdir()
    async with source(sshd, box, data, files="*.x12") as src:
        taken = await take(src)
        assert [i.meta["file_name"] for i in taken] == ["a.x12", "b.x12"]
        path = box / "a.x12"
        stat = path.stat()
        assert taken[0].message_id == derived_id("sftp", sshd.host, str(sshd.port), str(path), str(stat.st_size),
                                                 str(int(stat.st_mtime)))
        assert taken[0].meta["path"] == str(path) and taken[0].meta["size"] == 5
        await taken[0].release()
    async with source(sshd, box, data, files="*.x12") as src:
        again = await take(src)
    assert [i.message_id for i in again] == [i.message_id for i in taken]


async def test_many_files_with_several_downloads_in_flight_arrive_in_order(sshd: SshServer, box: Path,
                                                                          data: Path) -> None:
    for n in range(40):
        (box / f"f{n:03}.txt").write_bytes(f"body {n}".encode())
    async with source(sshd, box, data, parallel_downloads=8) as src:
        taken = await take(src)
    assert [i.body for i in taken] == [f"body {n}".encode() for n in range(40)]


async def test_a_file_in_flight_is_not_offered_twice_and_a_released_one_is(sshd: SshServer, box: Path,
                                                                         data: Path) -> None:
    (box / "a.json").write_bytes(b"x")
    async with source(sshd, box, data) as src:
        [first] = await take(src)
        assert await take(src) == []
        await first.release()
        [again] = await take(src)
    assert again.message_id == first.message_id
    assert names(box) == ["a.json", "done", "failed"]


# -- settle and done files -------------------------------------------------------------------------


async def test_a_file_still_growing_between_the_two_looks_is_left_for_the_next_round(sshd: SshServer, box: Path,
                                                                                    data: Path) -> None:
    growing = box / "big.json"
    growing.write_bytes(b"part one,")
    (box / "still.json").write_bytes(b"done")

    def append() -> None:
        with growing.open("ab") as handle:
            handle.write(b" part two")

    async with source(sshd, box, data, clock=ClockThatTouches(append)) as src:
        first = await take(src)
    assert [i.meta["file_name"] for i in first] == ["still.json"]
    async with source(sshd, box, data) as src:
        second = await take(src)
    assert [(i.meta["file_name"], i.body) for i in second] == [("big.json", b"part one, part two"),
                                                              ("still.json", b"done")]


async def test_settle_is_waited_between_the_two_looks(sshd: SshServer, box: Path, data: Path) -> None:
    (box / "a.json").write_bytes(b"x")
    clock = ManualClock()
    async with source(sshd, box, data, clock=clock, settle=2.0) as src:
        await take(src)
    assert clock.sleeps == [2.0]


async def test_done_file_marker_gates_the_file_and_is_removed_with_it(sshd: SshServer, box: Path,
                                                                     data: Path) -> None:
    (box / "a.x12").write_bytes(b"a")
    (box / "b.x12").write_bytes(b"b")
    (box / "b.x12.done").write_bytes(b"")
    async with source(sshd, box, data, done_file=".done") as src:
        taken = await take(src)
        assert [i.meta["file_name"] for i in taken] == ["b.x12"]
        await taken[0].ack(Outcome.DELIVERED)
    assert names(box) == ["a.x12", "done", "failed"]
    assert (box / "done" / "b.x12").read_bytes() == b"b"


# -- acknowledgment --------------------------------------------------------------------------------


async def test_ack_success_moves_to_the_configured_absolute_folder(sshd: SshServer, box: Path, data: Path) -> None:
    inbox, archive = box / "outbound", box / "archive"
    inbox.mkdir()
    (inbox / "a.x12").write_bytes(b"x")
    async with source(sshd, inbox, data, after_success_move_to=str(archive),
                      after_failure_move_to=str(box / "rejected")) as src:
        [inbound] = await take(src)
        await inbound.ack(Outcome.FILTERED)
        assert await take(src) == []
    assert (archive / "a.x12").read_bytes() == b"x"
    assert names(inbox) == []
    assert names(box) == ["archive", "outbound", "rejected"]


async def test_ack_dead_lettered_moves_to_the_failure_folder(sshd: SshServer, box: Path, data: Path) -> None:
    (box / "a.x12").write_bytes(b"x")
    async with source(sshd, box, data, after_failure_move_to="rejected") as src:
        [inbound] = await take(src)
        await inbound.ack(Outcome.DEAD_LETTERED)
    assert (box / "rejected" / "a.x12").read_bytes() == b"x"
    assert names(box) == ["done", "rejected"]


async def test_ack_success_deletes_when_asked(sshd: SshServer, box: Path, data: Path) -> None:
    (box / "a.x12").write_bytes(b"x")
    async with source(sshd, box, data, after_success_delete=True) as src:
        [inbound] = await take(src)
        await inbound.ack(Outcome.DUPLICATE)
    assert names(box) == ["failed"]


async def test_moving_and_deleting_both_is_refused(sshd: SshServer, box: Path, data: Path) -> None:
    with pytest.raises(PermanentError) as caught:
        source(sshd, box, data, after_success_delete=True, after_success_move_to="archive")
    assert caught.value.code == "SFT008"


async def test_moves_never_overwrite(sshd: SshServer, box: Path, data: Path) -> None:
    done = box / "done"
    done.mkdir()
    (done / "a.x12").write_bytes(b"earlier")
    (done / "a-1.x12").write_bytes(b"earlier too")
    (box / "a.x12").write_bytes(b"now")
    async with source(sshd, box, data) as src:
        [inbound] = await take(src)
        await inbound.ack(Outcome.DELIVERED)
    assert (done / "a.x12").read_bytes() == b"earlier"
    assert (done / "a-1.x12").read_bytes() == b"earlier too"
    assert (done / "a-2.x12").read_bytes() == b"now"


async def test_missing_folder_without_create_folders_is_permanent(sshd: SshServer, box: Path, data: Path) -> None:
    async with source(sshd, box / "nowhere", data, create_folders=False) as src:
        with pytest.raises(PermanentError) as caught:
            await take(src)
    assert caught.value.code == "SFT009" and caught.value.details["path"] == str(box / "nowhere")
    async with sink(sshd, box / "nowhere", data, create_folders=False) as out:
        with pytest.raises(PermanentError) as caught:
            await out.send(message())
    assert caught.value.code == "SFT009"


# -- crash safety and vanishing files --------------------------------------------------------------


async def test_a_crash_between_processing_and_the_move_never_processes_the_file_twice(
        sshd: SshServer, box: Path, data: Path) -> None:
    (box / "po.x12").write_bytes(b"ISA*...")
    async with source(sshd, box, data) as src:
        [inbound] = await take(src)
        # The move fails after the record was written (here: `done` became a file); then the process dies.
        (box / "done").rmdir()
        (box / "done").write_bytes(b"in the way")
        with pytest.raises(PermanentError) as caught:
            await inbound.ack(Outcome.DELIVERED)
        assert caught.value.code == "SFT003"
    (box / "done").unlink()
    async with source(sshd, box, data) as restarted:
        assert await take(restarted) == []  # moved as recorded, not processed again
    assert (box / "done" / "po.x12").read_bytes() == b"ISA*..."
    assert names(box) == ["done", "failed"]
    async with ReadLog(data / sftp_connector.READLOG_FILE, restarted.readlog.place) as readlog:
        assert await readlog.records() == {}


async def test_a_recorded_file_is_finished_as_recorded_after_a_crash(sshd: SshServer, box: Path, data: Path) -> None:
    body = b"dead-lettered before the crash"
    (box / "po.x12").write_bytes(body)
    stat = (box / "po.x12").stat()
    async with source(sshd, box, data) as src:
        [inbound] = await take(src)
        # The process dies right after recording the outcome: no ack, no move.
        await src.readlog.record(ReadRecord("po.x12", stat.st_size, int(stat.st_mtime),
                                            hashlib.sha256(body).hexdigest(), Outcome.DEAD_LETTERED.value, 0.0))
    assert inbound.body == body
    async with source(sshd, box, data) as restarted:
        assert await take(restarted) == []
    assert (box / "failed" / "po.x12").read_bytes() == body


async def test_a_failed_move_is_finished_at_the_next_look_without_processing_again(
        sshd: SshServer, box: Path, data: Path) -> None:
    (box / "po.x12").write_bytes(b"ISA*...")
    async with source(sshd, box, data, files="*.x12") as src:
        [inbound] = await take(src)
        (box / "failed").rmdir()
        (box / "failed").write_bytes(b"in the way")
        with pytest.raises(PermanentError):
            await inbound.ack(Outcome.DEAD_LETTERED)
        assert await take(src) == []  # still in the way: neither offered again nor stopping the source
        assert (box / "po.x12").exists()
        (box / "failed").unlink()
        (box / "failed").mkdir()
        assert await take(src) == []
    assert (box / "failed" / "po.x12").read_bytes() == b"ISA*..."


async def test_a_new_file_reusing_a_recorded_name_is_processed(sshd: SshServer, box: Path, data: Path) -> None:
    (box / "po.x12").write_bytes(b"other contents")
    stat = (box / "po.x12").stat()
    async with source(sshd, box, data) as src:
        # A record of an earlier file of that name, size and time, whose contents differed.
        await src.readlog.record(ReadRecord("po.x12", stat.st_size, int(stat.st_mtime),
                                            hashlib.sha256(b"first contents").hexdigest(),
                                            Outcome.DELIVERED.value, 0.0))
        [inbound] = await take(src)
    assert inbound.body == b"other contents"


async def test_a_file_vanishing_between_list_and_read_is_skipped(sshd: SshServer, box: Path, data: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    for name in ("a.json", "b.json", "c.json"):
        (box / name).write_bytes(name.encode())
    taken: list[str] = []
    with caplog.at_level(logging.INFO, logger="crossdock.connectors.sftp"):
        async with source(sshd, box, data, parallel_downloads=1) as src:
            async for inbound in src.receive(once=True):
                taken.append(inbound.meta["file_name"])
                if inbound.meta["file_name"] == "a.json":
                    # listed already; with one download at a time c.json is read only after b.json
                    (box / "c.json").unlink()
    assert taken == ["a.json", "b.json"]
    assert any("c.json disappeared" in record.getMessage() for record in caplog.records)


# -- the sink --------------------------------------------------------------------------------------


async def test_sink_writes_under_the_rendered_name_and_replaces_an_older_file(sshd: SshServer, box: Path,
                                                                             data: Path) -> None:
    async with sink(sshd, box / "inbound" / "997", data) as out:
        await out.send(message(b"old", "997-1.x12"))
        await out.send(message(b"new", "997-1.x12"))
        await out.send(message(b"by id", None))
    assert names(box / "inbound" / "997") == ["997-1.x12", "m-1.json"]
    assert (box / "inbound" / "997" / "997-1.x12").read_bytes() == b"new"


@pytest.mark.parametrize("name", ["../escape.json", "sub/x.json", ".hidden", "..", "a\x00b"])
async def test_sink_refuses_names_outside_the_folder_or_hidden(sshd: SshServer, box: Path, data: Path,
                                                               name: str) -> None:
    async with sink(sshd, box, data) as out:
        with pytest.raises(PermanentError) as caught:
            await out.send(message(file_name=name))
    assert caught.value.code == "SFT006"
    assert names(box) == []


async def test_sink_refuses_a_body_that_is_not_bytes(sshd: SshServer, box: Path, data: Path) -> None:
    async with sink(sshd, box, data) as out:
        with pytest.raises(PermanentError) as caught:
            await out.send(message({"po": "PO-1"}))
    assert caught.value.code == "SFT007"


async def test_upload_is_never_visible_under_its_final_name_until_complete(sshd: SshServer, box: Path,
                                                                          data: Path) -> None:
    body = b"0123456789abcdef" * (4 * 1024 * 1024)  # 64 MiB: the upload takes many round trips
    seen_temporary = False
    async with sink(sshd, box, data) as out:
        upload = asyncio.ensure_future(out.send(message(body, "big.x12")))
        while not upload.done():
            listing = names(box)
            seen_temporary = seen_temporary or any(n.startswith(".big.x12.") for n in listing)
            assert "big.x12" not in listing or (box / "big.x12").stat().st_size == len(body)
            await asyncio.sleep(0.001)
        await upload
    assert seen_temporary
    assert names(box) == ["big.x12"]
    assert (box / "big.x12").read_bytes() == body


async def test_sink_removes_its_temporary_files_left_over_an_hour_ago_and_nothing_else(
        sshd: SshServer, box: Path, data: Path, caplog: pytest.LogCaptureFixture) -> None:
    now = ManualClock().now()  # the sink's clock in these tests
    files = {".po-7.json.0a1b2c3d.tmp": now - 7200,  # a crashed upload: removed
             ".po-8.json.4e5f6a7b.tmp": now - 60,  # maybe another instance's upload in flight: kept
             ".notes.tmp": now - 7200, "po-6.json.tmp": now - 7200}  # not ours: kept
    for name, mtime in files.items():
        (box / name).write_bytes(b"partial")
        os.utime(box / name, (mtime, mtime))
    with caplog.at_level(logging.WARNING, logger="crossdock.connectors.sftp"):
        async with sink(sshd, box, data) as out:
            await out.send(message(b"whole", "po-9.json"))
    assert names(box) == sorted([".po-8.json.4e5f6a7b.tmp", ".notes.tmp", "po-6.json.tmp", "po-9.json"])
    assert any("removed 1 temporary file(s)" in r.getMessage() and ".po-7.json.0a1b2c3d.tmp" in r.getMessage()
               for r in caplog.records)


async def test_many_messages_share_one_connection(sshd: SshServer, box: Path, data: Path) -> None:
    async with sink(sshd, box, data) as out:
        await asyncio.gather(*(out.send(message(f"{n}".encode(), f"{n}.json")) for n in range(20)))
        assert out.session.connections_made == 1
    assert len(names(box)) == 20


# -- connection: host keys, login, loss, timeouts ----------------------------------------------------


async def test_an_unknown_host_key_is_refused_and_never_added(sshd: SshServer, box: Path, data: Path,
                                                             tmp_path: Path) -> None:
    other = sshd.new_key("other-host")
    known_hosts = tmp_path / "known_hosts"
    algorithm, key = other.with_suffix(".pub").read_text().split()[:2]
    known_hosts.write_text(f"[{sshd.host}]:{sshd.port} {algorithm} {key}\n")
    with pytest.raises(PermanentError) as caught:
        async with sink(sshd, box, data, known_hosts=str(known_hosts)):
            pass
    assert caught.value.code == "SFT001"
    assert "SHA256:" in caught.value.details["offered_key"]
    assert known_hosts.read_text() == f"[{sshd.host}]:{sshd.port} {algorithm} {key}\n"


async def test_a_host_missing_from_known_hosts_is_refused(sshd: SshServer, box: Path, data: Path,
                                                         tmp_path: Path) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    with pytest.raises(PermanentError) as caught:
        async with source(sshd, box, data, known_hosts=str(known_hosts)):
            pass
    assert caught.value.code == "SFT001"
    assert known_hosts.read_text() == ""


async def test_a_missing_known_hosts_file_is_refused(sshd: SshServer, box: Path, data: Path, tmp_path: Path) -> None:
    with pytest.raises(PermanentError) as caught:
        async with sink(sshd, box, data, known_hosts=str(tmp_path / "absent")):
            pass
    assert caught.value.code == "SFT004"


async def test_relative_known_hosts_and_key_paths_are_taken_from_the_data_folder(sshd: SshServer, box: Path,
                                                                                 data: Path) -> None:
    (data / "config").mkdir(parents=True)
    (data / "config" / "known_hosts").write_bytes(sshd.known_hosts.read_bytes())
    (data / "config" / "id").write_bytes(sshd.client_key.read_bytes())
    async with sink(sshd, box, data, known_hosts="config/known_hosts", key="config/id") as out:
        await out.send(message())
    assert names(box) == ["po-1.json"]


async def test_a_key_given_as_text_logs_in(sshd: SshServer, box: Path, data: Path) -> None:
    async with sink(sshd, box, data, key=sshd.client_key.read_text().strip()) as out:
        await out.send(message())
    assert names(box) == ["po-1.json"]


async def test_a_key_the_server_does_not_know_is_refused(sshd: SshServer, box: Path, data: Path) -> None:
    with pytest.raises(PermanentError) as caught:
        async with sink(sshd, box, data, key=str(sshd.new_key("stranger"))):
            pass
    assert caught.value.code == "SFT002"


async def test_unusable_credentials_are_refused(sshd: SshServer, box: Path, data: Path, tmp_path: Path) -> None:
    with pytest.raises(PermanentError) as no_secret:
        sink(sshd, box, data, key=None)
    assert no_secret.value.code == "SFT005"
    with pytest.raises(PermanentError) as unreadable:
        async with sink(sshd, box, data, key=str(tmp_path / "absent")):
            pass
    assert unreadable.value.code == "SFT005"
    with pytest.raises(PermanentError) as garbage:
        async with sink(sshd, box, data, key="-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n"):
            pass
    assert garbage.value.code == "SFT005" and "not a key" not in garbage.value.message
    with pytest.raises(PermanentError) as port:
        sink(sshd, box, data, port="twenty-two")
    assert port.value.code == "SFT005"


async def test_a_lost_connection_is_opened_again(sshd: SshServer, box: Path, data: Path) -> None:
    async with sink(sshd, box, data) as out:
        await out.send(message(b"before", "before.json"))
        sshd.drop_connections()
        try:
            await out.send(message(b"after", "after.json"))
        except TransientError as error:  # the loss was noticed by this send: the runtime retries it
            assert (error.code, error.kind) == ("SFT010", TransientKind.CONNECTION)
            await out.send(message(b"after", "after.json"))
        assert out.session.connections_made == 2
    assert (box / "after.json").read_bytes() == b"after"


async def test_a_refused_connection_is_transient(sshd: SshServer, box: Path, data: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with sink(sshd, box, data, port=port) as out:  # the route starts; the send finds the server down
        with pytest.raises(TransientError) as caught:
            await out.send(message())
    assert (caught.value.code, caught.value.kind) == ("SFT010", TransientKind.CONNECTION)


async def test_a_server_that_never_answers_times_out_transiently(sshd: SshServer, box: Path, data: Path,
                                                                silent_port: int) -> None:
    async with source(sshd, box, data, port=silent_port, connect_timeout=0.2) as src:
        with pytest.raises(TransientError) as caught:
            await take(src)
    assert (caught.value.code, caught.value.kind) == ("SFT011", TransientKind.TIMEOUT)


async def test_a_missing_remote_path_is_permanent_and_names_the_path(sshd: SshServer, box: Path) -> None:
    settings = sftp_connector.ConnectionSettings.from_options(options(sshd, box), context(box))
    session = SftpSession(settings)
    missing = str(box / "absent.x12")
    try:
        with pytest.raises(PermanentError) as caught:
            await session.run("read", missing, lambda sftp: sftp.open(missing, "rb"))
    finally:
        await session.close()
    assert caught.value.code == "SFT003"
    assert caught.value.details["path"] == missing and missing in caught.value.message
