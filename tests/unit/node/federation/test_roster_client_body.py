"""The roster client reads the gateway's answer through the transport's size-capped body
reader: a normal answer is parsed, an answer over ``MAX_RESPONSE_BYTES`` is refused as an
unavailable gateway (the last good roster is kept) and the download is stopped."""

from __future__ import annotations

import pytest
import treq
from support.deferreds import result_of
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone
from twisted.web.iweb import UNKNOWN_LENGTH

from federation.keys import SigningKey
from federation.transport.client import ResponseTooLarge, read_body
from node.federation import roster_refresh
from node.federation.roster_refresh import GatewayRosterClient, GatewayUnavailable


class Producer:
    """The body's transport: records whether the reader stopped the download."""

    def __init__(self) -> None:
        self.stopped = False

    def stopProducing(self) -> None:
        self.stopped = True

    def loseConnection(self) -> None:
        self.stopped = True


class Response:
    """A received response whose body arrives in ``chunks``, then ends."""

    def __init__(self, chunks: list[bytes], code: int = 200) -> None:
        self.code = code
        self.length = UNKNOWN_LENGTH
        self.chunks = chunks
        self.producer = Producer()

    def deliverBody(self, protocol) -> None:
        protocol.makeConnection(self.producer)
        for chunk in self.chunks:
            if self.producer.stopped:
                return
            protocol.dataReceived(chunk)
        protocol.connectionLost(Failure(ResponseDone()))


def test_read_body_joins_the_chunks_up_to_the_limit():
    assert result_of(read_body(Response([b"ab", b"cd"]), 4)) == b"abcd"


def test_read_body_over_the_limit_fails_and_stops_the_download():
    response = Response([b"ab", b"cd", b"e", b"never read"])
    with pytest.raises(ResponseTooLarge):
        result_of(read_body(response, 4))
    assert response.producer.stopped


def _client(monkeypatch, response: Response) -> GatewayRosterClient:
    async def get(*args, **kwargs):
        return response

    monkeypatch.setattr(treq, "get", get)
    return GatewayRosterClient(
        MemoryReactorClock(),
        "http://127.0.0.1:8008",
        origin="school-a.test",
        destination="city.test",
        signing_key=lambda: SigningKey("k1", b"\x01" * 32),
    )


def test_roster_answer_is_parsed(monkeypatch):
    client = _client(monkeypatch, Response([b'{"versions": ', b"[]}"]))
    assert result_of(client.fetch_since(0)) == {"versions": []}


def test_roster_answer_over_the_cap_is_an_unavailable_gateway(monkeypatch):
    monkeypatch.setattr(roster_refresh, "MAX_RESPONSE_BYTES", 10)
    response = Response([b'{"versions": ', b"[]}", b"x" * 100])
    client = _client(monkeypatch, response)
    with pytest.raises(GatewayUnavailable, match="too large"):
        result_of(client.fetch_since(0))
    assert response.producer.stopped
