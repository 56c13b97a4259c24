"""A private RabbitMQ node for the tests and benchmarks: loopback only, free ports, its own files.

The node runs the installed broker (Debian's `rabbitmq-server` package; scripts/test installs it) as
the current user, with everything it writes in one temporary folder: its database
(RABBITMQ_MNESIA_BASE), logs (RABBITMQ_LOG_BASE), an empty plugin list, a config file and an Erlang
cookie in a HOME of its own (mode 600), so it neither needs nor touches /var/lib/rabbitmq and never
meets another node's cookie. It listens on 127.0.0.1 only: AMQP and Erlang distribution on free
ports; epmd (port 4369) is shared with any other node on the machine.

Debian's /usr/sbin/rabbitmq-server is a wrapper that switches to the `rabbitmq` user (and to its
HOME and folder), so the scripts it wraps, in /usr/lib/rabbitmq/bin, are run directly.

`rabbitmq_node` is the session's node (with `ctl` for tests that act on the broker, such as closing
every connection); `rabbitmq` is its AMQP URL. :class:`RabbitMQNode` also serves bench/amqp_route.py.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import string
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel

from servers.ports import free_port

STARTUP_SECONDS = 120.0
STOP_SECONDS = 60.0
# The scripts Debian's /usr/sbin wrappers run as the `rabbitmq` user.
DEBIAN_SCRIPTS = Path("/usr/lib/rabbitmq/bin")
NOT_INSTALLED = ("rabbitmq-server is not installed; scripts/test installs it "
                 "(or: apt-get install rabbitmq-server)")
LOOPBACK_DISTRIBUTION = "-kernel inet_dist_use_interface {127,0,0,1}"


class RabbitMQError(RuntimeError):
    """The node could not be started, driven or stopped; the message says why and where its logs are."""


def scripts_folder() -> Path:
    """Where rabbitmq-server and rabbitmqctl are, run as they are (not through a user-switching wrapper)."""
    if (DEBIAN_SCRIPTS / "rabbitmq-server").exists():
        return DEBIAN_SCRIPTS
    found = shutil.which("rabbitmq-server") or shutil.which("rabbitmq-server", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise RabbitMQError(NOT_INSTALLED)
    return Path(found).parent




@dataclass
class RabbitMQNode:
    """One RabbitMQ node with its files under `root`; `start()` it, then `stop()` it."""

    root: Path
    name: str = field(default_factory=lambda: f"crossdock-{uuid.uuid4().hex[:12]}@localhost")
    port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    scripts: Path = field(default_factory=scripts_folder)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The AMQP URL of the default virtual host (guest may log in over loopback)."""
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    @property
    def log_folder(self) -> Path:
        return self.root / "log"

    def environment(self) -> dict[str, str]:
        """What both the server and rabbitmqctl need to find this node and only this node."""
        home = self.root / "home"
        return {
            **os.environ,
            "HOME": str(home),
            "LC_ALL": "C.UTF-8",
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_MNESIA_BASE": str(self.root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.log_folder),
            "RABBITMQ_CONFIG_FILE": str(self.root / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.root / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.root / "enabled_plugins"),
            # /etc/rabbitmq/rabbitmq-env.conf could name another node or address
            "RABBITMQ_CONF_ENV_FILE": str(self.root / "rabbitmq-env.conf"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": LOOPBACK_DISTRIBUTION,
            "RABBITMQ_CTL_ERL_ARGS": LOOPBACK_DISTRIBUTION,
        }

    def _prepare(self) -> None:
        home = self.root / "home"
        for folder in (home, self.root / "mnesia", self.log_folder):
            folder.mkdir(parents=True, exist_ok=True)
        cookie = home / ".erlang.cookie"
        cookie.write_text("".join(secrets.choice(string.ascii_uppercase) for _ in range(32)))
        cookie.chmod(0o600)  # Erlang refuses a cookie others can read
        (self.root / "enabled_plugins").write_text("[].\n")
        (self.root / "rabbitmq-env.conf").write_text("")
        # A nearly full disk on a CI machine must not block publishers (the default limit is 50MB).
        (self.root / "rabbitmq.conf").write_text("disk_free_limit.absolute = 1MB\n")

    def start(self) -> None:
        """Start the node and return once it accepts AMQP connections; RabbitMQError if it does not."""
        self._prepare()
        with open(self.root / "server.out", "wb") as out:
            self.process = subprocess.Popen(
                [str(self.scripts / "rabbitmq-server")], env=self.environment(), cwd=self.root,
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if self.process.poll() is not None:
                raise RabbitMQError(f"rabbitmq-server exited with {self.process.returncode}: {self._tail()}")
            # await_startup fails at once until the node has registered with epmd, then waits for the boot.
            result = self._run("await_startup", "--timeout", "30", timeout=60)
            if result.returncode == 0:
                return
            if time.monotonic() > deadline:
                self.stop()
                raise RabbitMQError(f"RabbitMQ node {self.name} did not start within {STARTUP_SECONDS:.0f}s: "
                                    f"{result.stdout.strip()} {self._tail()}")
            time.sleep(0.25)

    def ctl(self, *args: str, timeout: float = 60.0) -> str:
        """Run `rabbitmqctl -n <node> args...` and return its output; RabbitMQError when it fails."""
        result = self._run(*args, timeout=timeout)
        if result.returncode != 0:
            raise RabbitMQError(f"rabbitmqctl {' '.join(args)} failed ({result.returncode}): {result.stdout.strip()}")
        return result.stdout

    def close_all_connections(self, reason: str = "closed by the test suite") -> None:
        """Close every client connection from the broker side (clients see CONNECTION_FORCED)."""
        self.ctl("close_all_connections", reason)

    def queues(self) -> dict[str, dict[str, Any]]:
        """Every queue of the default virtual host by name: type, arguments, durable, ready and
        unacknowledged message counts, as the broker reports them."""
        columns = ("name", "type", "arguments", "durable", "messages_ready", "messages_unacknowledged")
        listed = json.loads(self.ctl("list_queues", "--quiet", "--formatter", "json", *columns) or "[]")
        for entry in listed:  # arguments come as [name, AMQP type, value] triples
            entry["arguments"] = {name: value for name, _, value in entry["arguments"]}
        return {entry["name"]: entry for entry in listed}

    def stop(self) -> None:
        """Stop the node (rabbitmqctl stop), killing it if it does not exit in time."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self._run("stop", timeout=STOP_SECONDS)
            try:
                self.process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def _run(self, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                [str(self.scripts / "rabbitmqctl"), "-n", self.name, *args], env=self.environment(),
                cwd=self.root, capture_output=True, text=True, timeout=timeout, check=False,
            )
        except subprocess.TimeoutExpired as expired:
            return subprocess.CompletedProcess(expired.cmd, 1, f"timed out after {timeout:.0f}s", "")

    def _tail(self) -> str:
        out = self.root / "server.out"
        text = out.read_text(errors="replace") if out.exists() else ""
        return f"(last output: {text[-1500:].strip()!r}; logs in {self.log_folder})"


@pytest.fixture(scope="session")
def rabbitmq_node() -> Iterator[RabbitMQNode]:
    """The session's RabbitMQ node, stopped when the session ends."""
    try:
        scripts = scripts_folder()
    except RabbitMQError as error:
        pytest.fail(str(error), pytrace=False)
    # A short folder name: Erlang limits the length of some paths under the node's data folder.
    with tempfile.TemporaryDirectory(prefix="cd-rmq-") as folder:
        node = RabbitMQNode(Path(folder), scripts=scripts)
        try:
            node.start()
        except RabbitMQError as error:
            pytest.fail(str(error), pytrace=False)
        try:
            yield node
        finally:
            node.stop()


@pytest.fixture(scope="session")
def rabbitmq(rabbitmq_node: RabbitMQNode) -> str:
    """The AMQP URL of the session's RabbitMQ node."""
    return rabbitmq_node.url


@pytest.fixture
def amqp_url(rabbitmq_node: RabbitMQNode) -> Iterator[str]:
    """The URL of a virtual host of this test's own, so that fixed queue and exchange names (an
    example's) start empty; deleted afterwards. A module overrides it to share the default one."""
    vhost = f"test-{uuid.uuid4().hex[:8]}"
    rabbitmq_node.ctl("add_vhost", vhost)
    rabbitmq_node.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    yield f"{rabbitmq_node.url}{vhost}"
    rabbitmq_node.ctl("delete_vhost", vhost)


@pytest.fixture
async def broker(amqp_url: str) -> AsyncIterator[AbstractChannel]:
    """A plain aio-pika channel on `amqp_url`, to look at (and act on) the broker behind crossdock's back."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        yield await connection.channel()
