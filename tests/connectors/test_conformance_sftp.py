"""The sftp connector passes the shared conformance suite against the session's OpenSSH server."""

from __future__ import annotations

import pytest
from conformance import Harness, conformance_tests
from servers.sshd import SshServer

from crossdock.connectors import sftp as sftp_connector
from crossdock.connectors.base import ConnectorContext
from crossdock.engine.clock import ManualClock


async def sftp_harness(request: pytest.FixtureRequest) -> Harness:
    server: SshServer = request.getfixturevalue("sshd")
    tmp_path = request.getfixturevalue("tmp_path")
    context = ConnectorContext(owner="conformance", data_dir=tmp_path, clock=ManualClock())
    options = {spec.key: spec.default for spec in sftp_connector.SPEC.options}
    options.update(host=server.host, port=server.port, user=server.user, key=str(server.client_key),
                   known_hosts=str(server.known_hosts), folder=str(server.new_folder()), files="*.json",
                   settle=0.0, file_name=None)
    return Harness(lambda: sftp_connector.open_source(options, context),
                   lambda: sftp_connector.open_sink(options, context))


globals().update(conformance_tests("sftp", sftp_harness))
