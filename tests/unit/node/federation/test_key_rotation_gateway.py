"""``parta node keys rotate`` on an enrolled node (node/federation/key_rotation.py) without a
network: when the gateway refuses the key update or cannot be reached, the key files stay as
they were and the command fails with one line; ``--offline`` rotates anyway with a warning;
the request sent is a key update the roster entry accepts.  The round trip with a real
gateway is in tests/e2e/test_gateway_enrolment.py."""

from __future__ import annotations

import json

import pytest
import yaml

from federation.enrolment import verify_key_update_request
from federation.keys import SigningKey, read_signing_keys
from federation.roster import build_roster, server_entry, verify_roster
from node import enrolment_client as ec
from node.cli.main import main
from node.config import load_config
from node.federation import key_rotation

SERVER = "school9.example"
CITY = "city.example"
RK = SigningKey("roster_1", b"\x01" * 32)


def _enrolled_node(tmp_path, capsys, gateway_url="https://city.example"):
    data = tmp_path / "node"
    assert (
        main(["node", "init", "--server-name", SERVER, "--data-dir", str(data), "--port", "0"]) == 0
    )
    config_path = str(data / "config.yaml")
    key = read_signing_keys((data / "signing.key").read_text())[0]
    doc = build_roster(
        None,
        {SERVER: server_entry(school_id="9", name="School 9", verify_keys=[key.verify_key])},
        1_700_000_000_000,
        10**13,
        CITY,
        RK,
    )
    ec.store_enrolment(
        str(data),
        key=RK.verify_key,
        signer_name=CITY,
        gateway_url=gateway_url,
        doc=doc,
        now_ms=1_700_000_000_000,
    )
    capsys.readouterr()
    return data, config_path


def _files(data):
    old = data / "old_signing_keys.json"
    return (
        (data / "signing.key").read_bytes(),
        old.read_bytes() if old.exists() else None,
        (data / "roster.json").read_bytes(),
    )


def _fake_gateway(monkeypatch, answer):
    sent = []

    async def post(reactor, url, body, ca_file):
        sent.append((url, body, ca_file))
        if isinstance(answer, Exception):
            raise answer
        return answer(body) if callable(answer) else answer

    monkeypatch.setattr(key_rotation, "_post_json", post)
    # The CLI would start a reactor for the request; the fake needs none.
    monkeypatch.setattr(
        "node.cli.enrol_cmd._run_reactor", lambda make: key_rotation.run_without_reactor(make(None))
    )
    return sent


@pytest.mark.parametrize(
    "answer, message",
    [
        (
            (
                403,
                {
                    "errcode": "M_FORBIDDEN",
                    "error": "Key update for school9.example is not "
                    "signed by any key the roster pins for it",
                },
            ),
            "the gateway refused the key update (403 M_FORBIDDEN): Key update for",
        ),
        ((502, "bad gateway"), "the gateway answered 502"),
        (
            ec.EnrolmentClientError(
                "cannot reach the gateway at https://city.example/_parta/v1/"
                "keys/update: Connection refused"
            ),
            "cannot reach the gateway",
        ),
    ],
)
def test_refused_or_unreachable_gateway_changes_nothing(
    tmp_path, capsys, monkeypatch, answer, message
):
    data, config_path = _enrolled_node(tmp_path, capsys)
    before = _files(data)
    sent = _fake_gateway(monkeypatch, answer)
    assert main(["node", "keys", "rotate", "-c", config_path]) == 1
    err = capsys.readouterr().err
    assert message in err and "key not rotated" in err
    assert len(err.strip().splitlines()) == 1
    assert _files(data) == before
    assert len(sent) == 1 and sent[0][0] == "https://city.example/_parta/v1/keys/update"


def test_accepted_update_writes_the_new_key(tmp_path, capsys, monkeypatch):
    data, config_path = _enrolled_node(tmp_path, capsys)
    old_key = read_signing_keys((data / "signing.key").read_text())[0]
    entry = verify_roster(
        json.loads((data / "roster.json").read_text()), RK.verify_key, CITY
    ).servers[SERVER]

    def gateway(body):
        new = verify_key_update_request(body, entry, body["ts"])
        servers = {
            SERVER: server_entry(
                school_id="9",
                name="School 9",
                verify_keys=list(new.values()),
                old_verify_keys={
                    old_key.key_id: {"key": old_key.verify_key.encode(), "expired_ts": body["ts"]}
                },
            )
        }
        prev = json.loads((data / "roster.json").read_text())
        return 200, {"roster": build_roster(prev, servers, body["ts"], 10**13, CITY, RK)}

    _fake_gateway(monkeypatch, gateway)
    assert main(["node", "keys", "rotate", "-c", config_path]) == 0
    out = capsys.readouterr().out
    new_key = read_signing_keys((data / "signing.key").read_text())[0]
    assert new_key.key_id != old_key.key_id
    assert f"The city gateway now pins {new_key.key_id}" in out and "(roster version 2)" in out
    assert set(json.loads((data / "old_signing_keys.json").read_text())) == {old_key.key_id}
    assert json.loads((data / "roster.json").read_text())["version"] == 2


def test_offline_rotates_locally_with_a_warning(tmp_path, capsys, monkeypatch):
    data, config_path = _enrolled_node(tmp_path, capsys)
    before = _files(data)
    sent = _fake_gateway(monkeypatch, (500, {}))
    assert main(["node", "keys", "rotate", "--offline", "-c", config_path]) == 0
    captured = capsys.readouterr()
    assert "roster members will refuse the new key" in captured.err
    assert sent == []
    after = _files(data)
    assert after[0] != before[0] and after[2] == before[2]


def test_plain_http_to_a_non_loopback_gateway_is_refused(tmp_path, capsys, monkeypatch):
    data, config_path = _enrolled_node(tmp_path, capsys, gateway_url="http://city.example")
    before = _files(data)
    sent = _fake_gateway(monkeypatch, (200, {}))
    assert main(["node", "keys", "rotate", "-c", config_path]) == 1
    assert "refusing plain http" in capsys.readouterr().err
    assert sent == [] and _files(data) == before


def test_ca_file_comes_from_the_federation_config(tmp_path, capsys, monkeypatch):
    data, config_path = _enrolled_node(tmp_path, capsys)
    (data / "city-ca.pem").write_text("unused by the fake gateway\n")
    config = yaml.safe_load((data / "config.yaml").read_text())
    config["federation"]["tls_ca_file"] = "city-ca.pem"
    (data / "config.yaml").write_text(yaml.safe_dump(config))
    assert load_config(config_path).federation.tls_ca_file == str(data / "city-ca.pem")
    sent = _fake_gateway(monkeypatch, (403, {"errcode": "M_FORBIDDEN", "error": "no"}))
    assert main(["node", "keys", "rotate", "-c", config_path]) == 1
    assert sent[0][2] == str(data / "city-ca.pem")
