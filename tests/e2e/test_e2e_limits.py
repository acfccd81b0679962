"""E2E: per-user rate limits (429 M_LIMIT_EXCEEDED with retry_after_ms), request body limits
(413 M_TOO_LARGE), /health and /metrics — against a real node on SQLite and PostgreSQL."""

from __future__ import annotations

from urllib.parse import quote

from e2e_helpers import api, http_request, text


def test_rate_limited_send_is_429_with_retry_after(node_factory):
    limited = node_factory(rate_limits={"per_second": 0.1, "burst_count": 3})
    token = limited.register("hasty")["access_token"]
    status, body = api(limited, "POST", "/_matrix/client/v3/createRoom", token=token,
                       json_body={})
    assert status == 200, body
    room = quote(body["room_id"])
    answers = [api(limited, "PUT", f"/_matrix/client/v3/rooms/{room}/send/m.room.message/r{i}",
                   token=token, json_body=text(f"spam {i}")) for i in range(6)]
    limited_answers = [b for s, b in answers if s == 429]
    assert limited_answers, answers
    assert all(b["errcode"] == "M_LIMIT_EXCEEDED" for b in limited_answers)
    assert all(isinstance(b["retry_after_ms"], int) and b["retry_after_ms"] > 0
               for b in limited_answers)
    # Another user has their own budget.
    other = limited.register("patient")["access_token"]
    status, body = api(limited, "POST", "/_matrix/client/v3/createRoom", token=other,
                       json_body={})
    assert status == 200, body


def test_request_body_limit_is_413(node):
    token = node.register("bigbody")["access_token"]
    limit = 1024 * 1024                        # the config default max_request_body_bytes
    status, body = api(node, "POST", "/_matrix/client/v3/createRoom", token=token,
                       json_body={"name": "x" * (limit + 1)})
    assert status == 413 and body["errcode"] == "M_TOO_LARGE"


def test_health_and_metrics(node):
    status, _, _ = http_request("GET", node.base_url + "/health")
    assert status == 200
    node.register("counted")
    status, headers, data = http_request("GET", node.metrics_url + "/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain")
    text_ = data.decode()
    assert 'parta_http_requests_total{' in text_
    assert 'route="/_matrix/client/v3/register"' in text_
