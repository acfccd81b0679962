"""TLS for federation (spec: server-server API "TLS": HTTPS only; the destination presents a
certificate from a known CA; requesting servers may override the trusted CAs and may skip
validation "for the purposes of testing"; SNI sent for DNS names, not for IP addresses).

* ``generate_self_signed(server_name, cert_path, key_path)`` - a development certificate for
  ``parta node init``: ECDSA P-256, subjectAltName for the server's hostname (a DNS name or an
  IP address; ``localhost`` also gets ``127.0.0.1`` and ``::1``).  It is its own issuer, so
  another node trusts it by listing it in its CA file.
* ``generate_ca`` / ``issue_certificate`` - a city CA and node certificates signed by it.
* ``server_tls_options(cert_path, key_path)`` - the listener's context factory (the PEM
  certificate file may hold the chain after the leaf); ``listen_tls`` starts a listener.
* ``ClientTLSPolicy`` - outbound: verification ON against a CA file (``ca_file``) or the
  system trust store; hostname (or IP) checked against ``tls_name``; or, with
  ``insecure_skip_tls_verify``, no verification at all (logged as a WARNING once per policy).

The files above are written with ``federation.atomic_write.write_file_atomic``.

Problems with files are ``TLSConfigError`` naming the file.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import re
from typing import Any, Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..atomic_write import write_file_atomic
from .server_names import parse_server_name

log = logging.getLogger(__name__)

_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


class TLSConfigError(Exception):
    pass


# --- certificate generation ----------------------------------------------------------------


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _write_pem(path: str, data: bytes, mode: int) -> None:
    """Certificates and keys are replaced atomically; their directory is created if need be."""
    write_file_atomic(path, data, mode, prefix=".tls-", make_dirs=True)


def subject_alt_names(server_name: str, extra: Iterable[str] = ()) -> list[x509.GeneralName]:
    """SANs for ``server_name``'s hostname, plus ``extra`` hostnames/IPs."""
    host = parse_server_name(server_name).host
    names: list[str] = [host]
    if host == "localhost":
        names += ["127.0.0.1", "::1"]
    names += list(extra)
    out: list[x509.GeneralName] = []
    for n in dict.fromkeys(names):
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            out.append(x509.DNSName(n))
    return out


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _leaf_builder(
    server_name: str, public_key: Any, issuer: x509.Name, days: int, extra_sans: Iterable[str]
) -> x509.CertificateBuilder:
    host = parse_server_name(server_name).host
    now = _now()
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host[:64])]))
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName(subject_alt_names(server_name, extra_sans)), critical=False
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    )


def generate_self_signed(
    server_name: str,
    cert_path: str,
    key_path: str,
    *,
    days: int = 825,
    extra_sans: Iterable[str] = (),
) -> None:
    """Write a self-signed certificate and its private key (mode 0600) for development."""
    key = _new_key()
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, parse_server_name(server_name).host[:64])]
    )
    cert = (
        _leaf_builder(server_name, key.public_key(), name, days, extra_sans)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    _write_pem(key_path, _key_pem(key), 0o600)
    _write_pem(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def generate_ca(common_name: str, cert_path: str, key_path: str, *, days: int = 3650) -> None:
    """Write a CA certificate (e.g. the city's) and its private key (0600)."""
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_pem(key_path, _key_pem(key), 0o600)
    _write_pem(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def issue_certificate(
    ca_cert_path: str,
    ca_key_path: str,
    server_name: str,
    cert_path: str,
    key_path: str,
    *,
    days: int = 825,
    extra_sans: Iterable[str] = (),
) -> None:
    """Write a certificate for ``server_name`` signed by the CA, and its key (0600)."""
    ca_cert = x509.load_pem_x509_certificate(_read(ca_cert_path))
    ca_key = serialization.load_pem_private_key(_read(ca_key_path), password=None)
    key = _new_key()
    cert = (
        _leaf_builder(server_name, key.public_key(), ca_cert.subject, days, extra_sans)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()  # type: ignore[arg-type]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    _write_pem(key_path, _key_pem(key), 0o600)
    _write_pem(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


# --- loading -------------------------------------------------------------------------------


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise TLSConfigError(f"cannot read {path}: {exc.strerror or exc}") from None


def load_pem_certificates(path: str) -> list[bytes]:
    """Every PEM certificate block in ``path`` (at least one)."""
    blocks = _PEM_CERT.findall(_read(path))
    if not blocks:
        raise TLSConfigError(f"{path}: no PEM certificate found")
    for block in blocks:
        try:
            x509.load_pem_x509_certificate(block)
        except ValueError as exc:
            raise TLSConfigError(f"{path}: invalid certificate: {exc}") from None
    return blocks


def server_tls_options(cert_path: str, key_path: str) -> Any:
    """A ``twisted.internet.ssl.CertificateOptions`` for a TLS listener.

    Twisted's defaults (protocol versions, ciphers) with the leaf, its chain and the key
    loaded as ``cryptography`` objects; a key that does not match the leaf is refused."""
    from OpenSSL import SSL
    from twisted.internet import ssl

    blocks = load_pem_certificates(cert_path)
    certs = [x509.load_pem_x509_certificate(b) for b in blocks]
    try:
        key = serialization.load_pem_private_key(_read(key_path), password=None)
    except (ValueError, TypeError) as exc:
        raise TLSConfigError(f"{key_path}: not an unencrypted PEM private key ({exc})") from None
    options = ssl.CertificateOptions()
    ctx = options.getContext()
    try:
        ctx.use_certificate(certs[0])
        for extra in certs[1:]:
            ctx.add_extra_chain_cert(extra)
        # pyOpenSSL takes RSA, EC, DSA, Ed25519 and Ed448 keys and raises TypeError for the
        # other kinds a PEM file can hold (X25519, DH, ...).
        ctx.use_privatekey(key)  # type: ignore[arg-type]
        ctx.check_privatekey()
    except SSL.Error as exc:
        raise TLSConfigError(
            f"{key_path} is not the private key of the certificate in {cert_path} ({exc})"
        ) from None
    return options


def listen_tls(
    reactor: Any, factory: Any, port: int, options: Any, interface: str = "127.0.0.1"
) -> Any:
    """Listen with TLS (``options`` from ``server_tls_options``); Deferred[IListeningPort].

    Endpoints are used with the reactor passed as the TLS clock (``reactor.listenSSL``
    would use the global reactor for TLS write scheduling)."""
    from twisted.internet.endpoints import TCP4ServerEndpoint, TCP6ServerEndpoint, wrapServerTLS

    cls = TCP6ServerEndpoint if ":" in interface else TCP4ServerEndpoint
    return wrapServerTLS(options, cls(reactor, port, interface=interface), clock=reactor).listen(
        factory
    )


# --- outbound policy -----------------------------------------------------------------------


class ClientTLSPolicy:
    """Builds (and caches, per name) the TLS connection creators for outbound requests."""

    def __init__(
        self, ca_file: str | None = None, *, insecure_skip_tls_verify: bool = False
    ) -> None:
        from twisted.internet import ssl

        self.insecure = insecure_skip_tls_verify
        self.ca_file = ca_file
        self._creators: dict[str, Any] = {}
        if self.insecure:
            log.warning(
                "!!! INSECURE: TLS certificate verification is DISABLED for outbound "
                "federation (insecure_skip_tls_verify). Any server can impersonate any "
                "other. Use this only for loopback tests. !!!"
            )
            self._trust_root = None
        elif ca_file:
            self._trust_root = ssl.trustRootFromCertificates(
                [ssl.Certificate.loadPEM(b) for b in load_pem_certificates(ca_file)]
            )
        else:
            self._trust_root = ssl.platformTrust()

    def creator_for(self, tls_name: str) -> Any:
        """An ``IOpenSSLClientConnectionCreator`` checking the certificate for ``tls_name``."""
        creator = self._creators.get(tls_name)
        if creator is None:
            if self.insecure:
                creator = _InsecureCreator(tls_name)
            else:
                from twisted.internet import ssl

                creator = ssl.optionsForClientTLS(tls_name, trustRoot=self._trust_root)
            self._creators[tls_name] = creator
        return creator


class _InsecureCreator:
    """TLS without certificate verification; SNI still sent for DNS names."""

    def __init__(self, tls_name: str) -> None:
        from OpenSSL import SSL
        from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
        from zope.interface import directlyProvides

        directlyProvides(self, IOpenSSLClientConnectionCreator)
        self._ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
        self._ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
        self._ctx.set_verify(SSL.VERIFY_NONE, lambda *a: True)
        try:
            ipaddress.ip_address(tls_name)
            self._sni: bytes | None = None
        except ValueError:
            self._sni = tls_name.encode("idna")

    def clientConnectionForTLS(self, tls_protocol: Any) -> Any:
        from OpenSSL import SSL

        conn = SSL.Connection(self._ctx, None)
        conn.set_app_data(tls_protocol)
        if self._sni is not None:
            conn.set_tlsext_host_name(self._sni)
        return conn
