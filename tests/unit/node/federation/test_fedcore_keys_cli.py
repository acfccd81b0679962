"""``parta node init`` writes a federation section and a development TLS certificate;
``parta node keys rotate`` makes a new signing key and keeps the old one as an old verify
key (Synapse key-file format), which the key endpoint then publishes."""

from __future__ import annotations

import json
import os
import stat

from cryptography import x509

from federation.keys import read_signing_keys
from federation.signing import verify_json
from federation.transport.key_server import KeyServer
from node.cli.main import main
from node.config import load_config
from node.federation.signing_keys import load_keys


class _Clock:
    def time_ms(self) -> int:
        return 1_700_000_000_000


def _init(tmp_path, capsys, *extra):
    data = tmp_path / "node"
    assert (
        main(
            [
                "node",
                "init",
                "--server-name",
                "localhost:18448",
                "--data-dir",
                str(data),
                "--port",
                "8111",
                *extra,
            ]
        )
        == 0
    )
    capsys.readouterr()
    return data, str(data / "config.yaml")


def test_init_writes_a_tls_certificate_and_federation_listener(tmp_path, capsys):
    data, config_path = _init(tmp_path, capsys, "--federation-port", "18448")
    cfg = load_config(config_path)
    listener = cfg.federation.listener
    assert listener.port == 18448
    assert listener.tls_certificate_path == str(data / "tls.crt")
    assert listener.tls_private_key_path == str(data / "tls.key")
    assert stat.S_IMODE(os.stat(listener.tls_private_key_path).st_mode) == 0o600
    cert = x509.load_pem_x509_certificate((data / "tls.crt").read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    assert cfg.federation.old_signing_keys_path == str(data / "old_signing_keys.json")


def test_default_federation_port_follows_the_client_port(tmp_path, capsys):
    data = tmp_path / "n0"
    assert (
        main(["node", "init", "--server-name", "s.test", "--data-dir", str(data), "--port", "0"])
        == 0
    )
    assert load_config(str(data / "config.yaml")).federation.listener.port == 0
    _, config_path = _init(tmp_path, capsys)
    assert load_config(config_path).federation.listener.port == 8448


def test_keys_rotate(tmp_path, capsys):
    data, config_path = _init(tmp_path, capsys)
    old = read_signing_keys((data / "signing.key").read_text())[0]
    assert main(["node", "keys", "rotate", "-c", config_path]) == 0
    out = capsys.readouterr().out
    new = read_signing_keys((data / "signing.key").read_text())
    assert len(new) == 1 and new[0].key_id != old.key_id
    assert new[0].key_id in out and old.key_id in out
    assert stat.S_IMODE(os.stat(data / "signing.key").st_mode) == 0o600
    saved = json.loads((data / "old_signing_keys.json").read_text())
    assert saved[old.key_id]["key"] == old.verify_key.encode()
    assert isinstance(saved[old.key_id]["expired_ts"], int)

    current, retired = load_keys(load_config(config_path))
    assert [k.key_id for k in current] == [new[0].key_id]
    assert [o.verify_key.key_id for o in retired] == [old.key_id]
    body = KeyServer("localhost:18448", current, _Clock(), retired).server_keys_response()
    assert set(body["verify_keys"]) == {new[0].key_id}
    assert body["old_verify_keys"][old.key_id]["key"] == old.verify_key.encode()
    verify_json(body, "localhost:18448", new[0].verify_key)

    # A second rotation keeps both retired keys.
    assert main(["node", "keys", "rotate", "-c", config_path]) == 0
    _, retired = load_keys(load_config(config_path))
    assert {o.verify_key.key_id for o in retired} == {old.key_id, new[0].key_id}
