"""``parta node enrol`` over HTTPS: the gateway's certificate is verified (a throwaway city
CA, trusted with ``--ca-file``); without that CA the enrolment fails before any token is
sent, and nothing is pinned."""

from __future__ import annotations

import datetime
import ipaddress
import os

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway_e2e_support import create_token, init_gateway, init_school


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca_and_cert(directory: str) -> tuple[str, str, str]:
    """(ca.pem, cert.pem, key.pem) for ``localhost``/127.0.0.1, signed by a new CA."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("Parta test city CA"))
        .issuer_name(_name("Parta test city CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    paths = [os.path.join(directory, n) for n in ("ca.pem", "cert.pem", "key.pem")]
    with open(paths[0], "wb") as fh:
        fh.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(paths[1], "wb") as fh:
        fh.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(paths[2], "wb") as fh:
        fh.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return paths[0], paths[1], paths[2]


@pytest.fixture(scope="module")
def tls_city(tmp_path_factory):
    root = tmp_path_factory.mktemp("tls-city")
    ca, cert, key = make_ca_and_cert(str(root))
    gateway = init_gateway(str(root / "gateway"), server_name="city.tls.test")
    with open(gateway.config_path) as fh:
        config = yaml.safe_load(fh)
    config["client_listener"].update(tls_certificate_path=cert, tls_private_key_path=key)
    with open(gateway.config_path, "w") as fh:
        yaml.safe_dump(config, fh, sort_keys=False)
    school = init_school(str(root / "school"), "school.tls.test")
    gateway.health_url = f"https://localhost:{gateway.port}/health"
    gateway.start(ca_file=ca)
    try:
        yield gateway, school, ca
    finally:
        code = gateway.stop()
    assert code == 0, gateway.log_tail()


def test_enrol_over_https_verifies_the_certificate(tls_city):
    gateway, school, ca = tls_city
    url = f"https://localhost:{gateway.port}"
    token = create_token(gateway, "9", "Lyceum No. 9", "West")

    # Without the city CA the certificate is not trusted: no connection, nothing pinned,
    # and the token is still unused.
    res = school.cli("enrol", url, "--token", token, check=False)
    assert res.returncode == 1 and "cannot reach the gateway" in res.stderr
    assert "certificate verify failed" in res.stderr and "--ca-file" in res.stderr
    assert not os.path.exists(os.path.join(school.data_dir, "roster_key.json"))

    res = school.cli("enrol", url, "--token", token, "--ca-file", ca)
    assert "Enrolled school.tls.test with the city gateway city.tls.test" in res.stdout
    assert "plain HTTP" not in res.stderr
    assert os.path.exists(os.path.join(school.data_dir, "roster_key.json"))
