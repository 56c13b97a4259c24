"""A private OpenSSH server for the SFTP tests: real sshd on loopback, its own keys, config and folder.

The session fixture :func:`sshd` starts `/usr/sbin/sshd -D -f <config> -e` on a free port of 127.0.0.1
with a fresh host key, one authorized client key for the current user (root in CI) and the
`internal-sftp` subsystem, waits until the port answers, and stops it at the end of the session.
There is no chroot: remote paths are local paths under :attr:`SshServer.root`, so a test can look at
what the connector wrote directly on disk. `scripts/test` installs openssh-server when it is missing.
"""

from __future__ import annotations

import getpass
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = Path("/usr/sbin/sshd")
SSH_KEYGEN = "ssh-keygen"
START_DEADLINE_SECONDS = 15.0


@dataclass(frozen=True)
class SshServer:
    """A running sshd: where it listens, who may log in with which key, and what clients must trust."""

    host: str
    port: int
    user: str
    client_key: Path
    known_hosts: Path
    root: Path
    folder: Path  # the server's own files (config, keys, log)
    process: subprocess.Popen[bytes]

    def new_folder(self) -> Path:
        """A fresh, empty folder under the SFTP root; its path is also its remote path."""
        path = self.root / uuid.uuid4().hex[:12]
        path.mkdir()
        return path

    def new_key(self, name: str) -> Path:
        """Another ed25519 key pair (private key path returned) that this server knows nothing about."""
        return _keygen(self.folder / f"{name}-{uuid.uuid4().hex[:8]}")

    def session_pids(self) -> list[int]:
        """The sshd processes serving connections now (the listener's children)."""
        children: list[int] = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # ended while we looked
            # The command name is in parentheses and may hold spaces; the parent pid follows it.
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == self.process.pid:
                children.append(int(entry.name))
        return children

    def drop_connections(self) -> None:
        """End every client connection from the server side, as a network failure or a restart would."""
        for pid in self.session_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue


def _keygen(path: Path) -> Path:
    subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)],
                   check=True, capture_output=True)
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _config(folder: Path, port: int, host_key: Path, authorized: Path) -> str:
    return "\n".join([
        f"Port {port}",
        "ListenAddress 127.0.0.1",
        f"HostKey {host_key}",
        f"PidFile {folder / 'sshd.pid'}",
        f"AuthorizedKeysFile {authorized}",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        # CI runs as root; keys only, never passwords.
        "PermitRootLogin prohibit-password",
        # The keys live in a temporary folder whose modes sshd would otherwise refuse.
        "StrictModes no",
        "UsePAM no",
        "Subsystem sftp internal-sftp",
        "LogLevel VERBOSE",
        "",
    ])


def _wait_for_port(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"sshd exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as probe:
                if probe.recv(4).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    pytest.fail(f"sshd did not answer on port {port} within {START_DEADLINE_SECONDS}s:\n"
                f"{log.read_text(errors='replace')}")


@contextmanager
def running_sshd(folder: Path) -> Iterator[SshServer]:
    """Start a private sshd with its files in `folder` (empty), and stop it on exit."""
    if not SSHD.is_file():
        pytest.fail(f"{SSHD} is missing: the SFTP tests need OpenSSH's server; "
                    "scripts/test installs it (apt-get install openssh-server)")
    root = folder / "root"
    root.mkdir()
    host_key = _keygen(folder / "host_key")
    client_key = _keygen(folder / "client_key")
    authorized = folder / "authorized_keys"
    authorized.write_bytes(client_key.with_suffix(".pub").read_bytes())
    port = _free_port()
    config = folder / "sshd_config"
    config.write_text(_config(folder, port, host_key, authorized))
    if os.geteuid() == 0:
        # sshd's privilege separation folder; Debian creates it at boot only when the service runs.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    known_hosts = folder / "known_hosts"
    public = host_key.with_suffix(".pub").read_text().split()
    known_hosts.write_text(f"[127.0.0.1]:{port} {public[0]} {public[1]}\n")
    log = folder / "sshd.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen([str(SSHD), "-D", "-f", str(config), "-e"], stdout=log_file,
                                   stderr=subprocess.STDOUT)
    try:
        _wait_for_port(process, port, log)
        yield SshServer(host="127.0.0.1", port=port, user=getpass.getuser(), client_key=client_key,
                        known_hosts=known_hosts, root=root, folder=folder, process=process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """A private sshd for the session (see the module docstring)."""
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server
