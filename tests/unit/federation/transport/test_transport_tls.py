"""Development certificates and TLS configuration (server-server API "TLS")."""

from __future__ import annotations

import os
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from federation.transport.server_names import InvalidServerName
from federation.transport.tls import (
    ClientTLSPolicy,
    TLSConfigError,
    generate_ca,
    generate_self_signed,
    issue_certificate,
    load_pem_certificates,
    server_tls_options,
)


def load(path):
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


def sans(cert):
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return (
        sorted(ext.get_values_for_type(x509.DNSName)),
        sorted(str(i) for i in ext.get_values_for_type(x509.IPAddress)),
    )


@pytest.mark.parametrize(
    "server_name, dns, ips",
    [
        ("localhost:8448", ["localhost"], ["127.0.0.1", "::1"]),
        ("school-a.example", ["school-a.example"], []),
        ("127.0.0.1:8449", [], ["127.0.0.1"]),
        ("[::1]:8449", [], ["::1"]),
    ],
)
def test_self_signed_subject_alt_names(tmp_path, server_name, dns, ips):
    cert_path, key_path = str(tmp_path / "c.pem"), str(tmp_path / "k.pem")
    generate_self_signed(server_name, cert_path, key_path)
    cert = load(cert_path)
    assert sans(cert) == (dns, ips)
    assert cert.issuer == cert.subject
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    # The certificate is signed by its own key.
    cert.verify_directly_issued_by(cert)
    server_tls_options(cert_path, key_path)  # loads as a listener


def test_extra_sans_and_invalid_server_name(tmp_path):
    c, k = str(tmp_path / "c.pem"), str(tmp_path / "k.pem")
    generate_self_signed("a.example", c, k, extra_sans=["b.example", "10.0.0.7"])
    assert sans(load(c)) == (["a.example", "b.example"], ["10.0.0.7"])
    with pytest.raises(InvalidServerName):
        generate_self_signed("bad name", c, k)


def test_city_ca_issues_node_certificates(tmp_path):
    ca_c, ca_k = str(tmp_path / "ca.pem"), str(tmp_path / "ca.key")
    generate_ca("City CA", ca_c, ca_k)
    c, k = str(tmp_path / "n.pem"), str(tmp_path / "n.key")
    issue_certificate(ca_c, ca_k, "school-a.example:8448", c, k)
    ca, leaf = load(ca_c), load(c)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    leaf.verify_directly_issued_by(ca)
    assert leaf.issuer == ca.subject and sans(leaf) == (["school-a.example"], [])
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey)


def test_server_options_with_chain_file(tmp_path):
    ca_c, ca_k = str(tmp_path / "ca.pem"), str(tmp_path / "ca.key")
    generate_ca("City CA", ca_c, ca_k)
    c, k = str(tmp_path / "n.pem"), str(tmp_path / "n.key")
    issue_certificate(ca_c, ca_k, "a.example", c, k)
    chain = str(tmp_path / "chain.pem")
    with open(chain, "wb") as out:
        out.write(open(c, "rb").read() + open(ca_c, "rb").read())
    assert len(load_pem_certificates(chain)) == 2
    assert server_tls_options(chain, k).getContext() is not None


def test_configuration_errors_name_the_file(tmp_path):
    c1, k1 = str(tmp_path / "1.pem"), str(tmp_path / "1.key")
    c2, k2 = str(tmp_path / "2.pem"), str(tmp_path / "2.key")
    generate_self_signed("a.example", c1, k1)
    generate_self_signed("b.example", c2, k2)
    with pytest.raises(TLSConfigError, match="is not the private key"):
        server_tls_options(c1, k2)
    with pytest.raises(TLSConfigError, match="cannot read .*missing.pem"):
        server_tls_options(str(tmp_path / "missing.pem"), k1)
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"hello")
    with pytest.raises(TLSConfigError, match="no PEM certificate"):
        server_tls_options(str(junk), k1)
    with pytest.raises(TLSConfigError, match="not an unencrypted PEM private key"):
        server_tls_options(c1, str(junk))
    broken = tmp_path / "broken.pem"
    broken.write_bytes(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(TLSConfigError, match="invalid certificate"):
        load_pem_certificates(str(broken))
    with pytest.raises(TLSConfigError, match="no PEM certificate"):
        ClientTLSPolicy(str(junk))


def test_client_policy_caches_creators(tmp_path):
    c, k = str(tmp_path / "c.pem"), str(tmp_path / "k.pem")
    generate_self_signed("a.example", c, k)
    policy = ClientTLSPolicy(c)
    assert policy.creator_for("a.example") is policy.creator_for("a.example")
    assert policy.creator_for("a.example") is not policy.creator_for("b.example")
    assert policy.creator_for("127.0.0.1") is not None  # IP names: no SNI, IP checked
