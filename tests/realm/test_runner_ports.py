"""The port check before a realm starts: a port the last run left in TIME_WAIT is free (a
Ctrl-C and start again must work at once), a port another socket listens on is not."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from smartrealm.realm.config import RealmConfig, load_config
from smartrealm.realm.runner import (
    AUTH_SERVER,
    RealmStartError,
    check_ports_free,
    free_ports,
    port_problem,
)

HOST = "127.0.0.1"
pytestmark = pytest.mark.skipif(sys.platform == "win32",
                                reason="TIME_WAIT and SO_REUSEADDR are POSIX semantics")


def _listener(*, reuse: bool) -> socket.socket:
    sock = socket.socket()
    if reuse:
        # What uvicorn (asyncio's create_server) does on POSIX.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    sock.listen()
    return sock


def _port_left_in_time_wait() -> int:
    """A port the way a stopped realm leaves it: a server accepted a connection, answered
    and closed its end first (so its end is in TIME_WAIT), then stopped listening."""
    with _listener(reuse=True) as listener:
        port = int(listener.getsockname()[1])
        with socket.create_connection((HOST, port)) as client:
            served, _ = listener.accept()
            served.sendall(b"HTTP/1.1 200 OK\r\n\r\n")
            assert client.recv(64)
            served.close()  # the server closes first: its side goes to TIME_WAIT
            assert client.recv(64) == b""
    return port


def _realm(tmp_path: Path, auth_port: int) -> RealmConfig:
    config = load_config(None)
    others = free_ports([rs.id for rs in config.resource_servers])
    return config.relocated({AUTH_SERVER: auth_port, **others}, tmp_path)


def _binds_without_reuse(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


@pytest.fixture
def time_wait_port() -> Iterator[int]:
    port = _port_left_in_time_wait()
    # The situation is real: a plain bind (what the check did before) is refused here.
    assert not _binds_without_reuse(port)
    yield port


def test_a_port_in_time_wait_is_free_to_start_on(time_wait_port: int,
                                                 tmp_path: Path) -> None:
    assert port_problem(HOST, time_wait_port) is None
    check_ports_free(_realm(tmp_path, time_wait_port))


@pytest.mark.parametrize("reuse", [True, False])
def test_a_live_listener_is_reported_by_name(reuse: bool, tmp_path: Path) -> None:
    with _listener(reuse=reuse) as other:
        port = int(other.getsockname()[1])
        assert port_problem(HOST, port) == "is in use by another program"
        with pytest.raises(RealmStartError) as refused:
            check_ports_free(_realm(tmp_path, port))
    assert str(refused.value) == (
        f"auth_server: port {port} on {HOST} is in use by another program "
        f"(http://{HOST}:{port})")


def test_a_listener_beside_a_time_wait_port_is_still_reported(time_wait_port: int) -> None:
    # Someone else starts listening on the port the realm just left: still "in use".
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.bind((HOST, time_wait_port))
        other.listen()
        assert port_problem(HOST, time_wait_port) == "is in use by another program"


def test_an_address_not_on_this_machine_is_named() -> None:
    # TEST-NET-1 (RFC 5737): never assigned to a local interface.
    assert port_problem("192.0.2.1", 8080) == \
        "cannot be used: the address is not one of this machine's"
