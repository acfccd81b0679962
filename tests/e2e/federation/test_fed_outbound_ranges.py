"""E2E: outbound federation refuses loopback and private addresses (``federation.
ip_range_blacklist``), so a client cannot use the node to probe ports on the node's own
machine or network.

Authenticated media (client-server API "Content repository", ``GET /_matrix/client/v1/media/
download/{serverName}/{mediaId}``) makes the node fetch from any server name a user types in.
On a node without ``ip_range_whitelist``, a download from ``127.0.0.1:<open port>``,
``127.0.0.1:<closed port>`` or a name resolving to loopback gets one identical answer
(status, errcode, error text), no connection is made, and only the node's log says why.
"""

from __future__ import annotations

import socket

import pytest

from e2e_helpers import api, free_port

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def db_backend() -> str:
    """The check is before any storage: one backend is enough."""
    return "sqlite"


@pytest.fixture
def open_listener():
    """A plain TCP port that is open (the kernel completes a TCP handshake even before
    ``accept``), so a connection attempt would leave a connection to accept."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    yield sock
    sock.close()


def _download(node, token: str, server_name: str) -> tuple[int, dict]:
    return api(node, "GET", f"/_matrix/client/v1/media/download/{server_name}/abcdef", token=token)


def test_open_and_closed_loopback_ports_are_indistinguishable(node, open_listener):
    token = node.register("prober")["access_token"]
    open_port = open_listener.getsockname()[1]
    fed_port = node.config["federation"]["listener"]["port"]
    client_port = node.config["client_listener"]["port"]
    targets = [
        f"127.0.0.1:{open_port}",  # open, speaks nothing
        f"127.0.0.1:{free_port()}",  # closed
        f"127.0.0.1:{client_port}",  # open, plain HTTP (TLS would fail)
        f"127.0.0.1:{fed_port}",  # open, TLS with an untrusted certificate
        f"localhost:{open_port}",  # a DNS name resolving to loopback
        f"[::1]:{open_port}",
        f"[::ffff:127.0.0.1]:{open_port}",
    ]  # IPv4-mapped IPv6
    answers = {t: _download(node, token, t) for t in targets}
    first = answers[targets[0]]
    assert first[0] == 502, answers
    assert first[1]["errcode"] == "M_UNKNOWN", answers
    for target, answer in answers.items():
        assert answer == first, (target, answers)
    for target in targets:
        assert target not in first[1]["error"]
    with pytest.raises(BlockingIOError):  # nothing ever connected
        open_listener.accept()
    log = node.log_tail(400)
    assert "federation_address_refused" in log, log


def test_other_users_media_still_works(node):
    """The refusals leave the node serving its own media to everyone."""
    token = node.register("uploader")["access_token"]
    status, body = api(
        node,
        "POST",
        "/_matrix/media/v3/upload",
        token=token,
        raw_body=b"hello",
        headers={"Content-Type": "text/plain"},
    )
    assert status == 200, body
    media_id = body["content_uri"].rsplit("/", 1)[1]
    status, data = api(
        node, "GET", f"/_matrix/client/v1/media/download/{node.server_name}/{media_id}", token=token
    )
    assert (status, data) == (200, b"hello")
