"""The school side of enrolment: ``parta node enrol https://city.example --token T``.

Steps: parse the one-time token (``federation.enrolment``), sign an enrolment request with
every key of the node's signing key file, POST it to ``<gateway>/_parta/v1/enrol``, check the
answer against the token — the roster key must hash to the fingerprint the token carries,
and the roster must verify with that key and list this node (no trust on first use) — and
store what the node will enforce:

``<data_dir>/roster_key.json`` (the pinned roster key)::

    {"signer_name": "city.example", "key_id": "ed25519:roster_1", "key": "<b64>",
     "fingerprint": "<b64 sha256 of the key>", "gateway_url": "https://city.example",
     "enrolled_ts": 1700000000000}

``<data_dir>/roster.json``: the signed roster version received (the last good roster; load
it with ``federation.roster.RosterState(pinned, signer).restore(doc)``).

Transport: HTTPS with certificate verification (the platform's trust store, or the city's
CA with ``--ca-file``).  Plain ``http://`` is refused except for loopback addresses (tests,
demos), where a warning is printed.
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlsplit

from federation.atomic_write import write_file_atomic
from federation.enrolment import (
    EnrolmentError,
    build_enrolment_request,
    parse_token,
    verify_enrolment_response,
)
from federation.errors import MatrixError
from federation.keys import VerifyKey, load_signing_key_file
from federation.roster import RosterError, RosterState, roster_key_fingerprint, verify_roster

ROSTER_KEY_FILE = "roster_key.json"
ROSTER_FILE = "roster.json"
ENROL_PATH = "/_parta/v1/enrol"
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
TIMEOUT_S = 30.0


class EnrolmentClientError(Exception):
    """Enrolment did not happen (one line for the operator)."""


@dataclass(frozen=True)
class EnrolResult:
    server_name: str
    signer_name: str
    roster_key: VerifyKey
    roster_version: int
    server_count: int
    roster_key_path: str
    roster_path: str


# --- URL -----------------------------------------------------------------------------------
def is_loopback_host(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_gateway_url(url: str, warn: Callable[[str], None]) -> str:
    """The base URL without a trailing slash; refuses anything but https (or http on
    loopback, with a warning)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise EnrolmentClientError(f"gateway URL must look like https://city.example, got {url!r}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise EnrolmentClientError("gateway URL must not carry credentials, a query or a fragment")
    if parts.scheme == "http":
        if not is_loopback_host(parts.hostname):
            raise EnrolmentClientError(
                "refusing plain http:// to a non-loopback gateway: enrolment must use https://"
            )
        warn(
            f"warning: using plain HTTP to {parts.hostname} (loopback only; use https:// "
            f"for a real gateway)"
        )
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


# --- pinned files --------------------------------------------------------------------------
def _write_atomic(path: str, text: str, mode: int = 0o644) -> None:
    write_file_atomic(path, text.encode("utf-8"), mode, prefix=".tmp-", make_dirs=True)


def load_pinned(data_dir: str) -> tuple[VerifyKey, str, dict] | None:
    """(pinned roster key, signer name, the roster_key.json object), or None when the node
    has not enrolled.  ``EnrolmentClientError`` if the file is damaged."""
    path = os.path.join(data_dir, ROSTER_KEY_FILE)
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        key = VerifyKey.decode(data["key_id"], data["key"])
        signer = data["signer_name"]
        if not isinstance(signer, str):
            raise TypeError("signer_name")
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EnrolmentClientError(f"{path} is damaged ({exc}); remove it to enrol again") from None
    except MatrixError as exc:  # KeyFormatError
        raise EnrolmentClientError(f"{path}: {exc.message}") from None
    return key, signer, data


def load_roster(data_dir: str) -> dict | None:
    """The stored last good roster document, or None."""
    path = os.path.join(data_dir, ROSTER_FILE)
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise EnrolmentClientError(f"{path} is damaged ({exc})") from None


def store_enrolment(
    data_dir: str, *, key: VerifyKey, signer_name: str, gateway_url: str, doc: dict, now_ms: int
) -> tuple[str, str]:
    key_path = os.path.join(data_dir, ROSTER_KEY_FILE)
    roster_path = os.path.join(data_dir, ROSTER_FILE)
    pinned = {
        "signer_name": signer_name,
        "key_id": key.key_id,
        "key": key.encode(),
        "fingerprint": roster_key_fingerprint(key),
        "gateway_url": gateway_url,
        "enrolled_ts": now_ms,
    }
    _write_atomic(roster_path, json.dumps(doc, sort_keys=True) + "\n")
    _write_atomic(key_path, json.dumps(pinned, indent=2, sort_keys=True) + "\n")
    return key_path, roster_path


def check_existing_pin(data_dir: str, fingerprint: str, signer_name: str) -> None:
    """A node enrolled with one city keeps it: a token for another roster key is refused
    (re-enrolling with the same city, e.g. after a revocation, is fine)."""
    existing = load_pinned(data_dir)
    if existing is None:
        return
    key, signer, _ = existing
    if roster_key_fingerprint(key) != fingerprint or signer != signer_name:
        raise EnrolmentClientError(
            f"this node already pins the roster key {key.key_id} of {signer} "
            f"({os.path.join(data_dir, ROSTER_KEY_FILE)}); the token is for another roster "
            f"key. Remove that file only if the city really changed its roster key"
        )


# --- HTTP ----------------------------------------------------------------------------------
def _agent(reactor: Any, ca_file: str | None) -> Any:
    from twisted.web.client import Agent, BrowserLikePolicyForHTTPS

    if ca_file is None:
        return Agent(reactor, connectTimeout=TIMEOUT_S)
    from twisted.internet import ssl

    try:
        with open(ca_file, encoding="ascii") as fh:
            pem = fh.read()
        blocks = [
            b + "-----END CERTIFICATE-----\n"
            for b in pem.split("-----END CERTIFICATE-----")
            if "BEGIN CERTIFICATE" in b
        ]
        certs = [ssl.Certificate.loadPEM((b.strip() + "\n").encode("ascii")) for b in blocks]
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise EnrolmentClientError(f"cannot read CA file {ca_file}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - OpenSSL errors on bad PEM
        raise EnrolmentClientError(f"CA file {ca_file} is not a PEM certificate: {exc}") from None
    if not certs:
        raise EnrolmentClientError(f"CA file {ca_file} holds no certificate")
    policy = BrowserLikePolicyForHTTPS(trustRoot=ssl.trustRootFromCertificates(certs))
    return Agent(reactor, contextFactory=policy, connectTimeout=TIMEOUT_S)


async def _post_json(reactor: Any, url: str, body: dict, ca_file: str | None) -> tuple[int, Any]:
    import treq

    headers: dict[bytes | str, list[bytes | str]] = {b"Content-Type": [b"application/json"]}
    try:
        resp = await treq.post(
            url,
            data=json.dumps(body).encode("utf-8"),
            headers=headers,
            agent=_agent(reactor, ca_file),
            timeout=TIMEOUT_S,
        )
        chunks: list[bytes] = []
        size = 0

        def collect(data: bytes) -> None:
            nonlocal size
            size += len(data)
            if size > MAX_RESPONSE_BYTES:
                raise EnrolmentClientError("the gateway's answer is too large")
            chunks.append(data)

        await treq.collect(resp, collect)
    except EnrolmentClientError:
        raise
    except Exception as exc:  # noqa: BLE001 - connection refused, TLS failure, timeout
        why = _describe(exc)
        if "certificate verify failed" in why:
            why += (
                " (the gateway's certificate is not trusted: if the city runs its own "
                "CA, pass it with --ca-file)"
            )
        raise EnrolmentClientError(f"cannot reach the gateway at {url}: {why}") from None
    raw = b"".join(chunks)
    try:
        return resp.code, json.loads(raw)
    except ValueError:
        raise EnrolmentClientError(
            f"the gateway at {url} answered {resp.code} without JSON "
            f"(is this the gateway's client URL?)"
        ) from None


def _describe(exc: BaseException) -> str:
    reasons = getattr(exc, "reasons", None)  # twisted.web._newclient.ResponseNeverReceived
    if reasons:
        return "; ".join(_describe(r.value) for r in reasons)
    return str(exc) or exc.__class__.__name__


# --- the command ---------------------------------------------------------------------------
async def enrol(
    reactor: Any,
    *,
    server_name: str,
    data_dir: str,
    signing_key_path: str,
    gateway_url: str,
    token_text: str,
    now_ms: int,
    ca_file: str | None = None,
    warn: Callable[[str], None] = print,
) -> EnrolResult:
    try:
        token = parse_token(token_text, now_ms)
    except EnrolmentError as exc:
        raise EnrolmentClientError(exc.message) from None
    base = check_gateway_url(gateway_url, warn)
    check_existing_pin(data_dir, token.roster_key_fingerprint, token.signer_name)
    try:
        keys = load_signing_key_file(signing_key_path)
    except OSError as exc:
        raise EnrolmentClientError(
            f"cannot read the node's signing key {signing_key_path}: {exc.strerror or exc}"
        ) from None
    body = build_enrolment_request(token, server_name, keys, now_ms)
    status, answer = await _post_json(reactor, base + ENROL_PATH, body, ca_file)
    if status != 200:
        if isinstance(answer, dict) and isinstance(answer.get("error"), str):
            raise EnrolmentClientError(
                f"the gateway refused the enrolment ({status} "
                f"{answer.get('errcode')}): {answer['error']}"
            )
        raise EnrolmentClientError(f"the gateway answered {status}")
    try:
        key, roster = verify_enrolment_response(answer, token, server_name, now_ms)
        state = RosterState(key, token.signer_name)
        state.accept(roster.doc, now_ms)
    except (EnrolmentError, RosterError) as exc:
        raise EnrolmentClientError(
            f"the gateway's answer is not trustworthy: {exc.message}"
        ) from None
    previous = load_roster(data_dir)
    if previous is not None:
        try:
            old = verify_roster(previous, key, token.signer_name)
        except RosterError:
            old = None  # from another key (refused above) or damaged: replace it
        if old is not None and old.version >= roster.version:
            raise EnrolmentClientError(
                f"the gateway sent roster version {roster.version}, but this node already "
                f"has version {old.version} (rollback refused)"
            )
    doc = json.loads(json.dumps(dict(roster.doc)))
    key_path, roster_path = store_enrolment(
        data_dir, key=key, signer_name=token.signer_name, gateway_url=base, doc=doc, now_ms=now_ms
    )
    return EnrolResult(
        server_name=server_name,
        signer_name=token.signer_name,
        roster_key=key,
        roster_version=roster.version,
        server_count=len(roster.servers),
        roster_key_path=key_path,
        roster_path=roster_path,
    )
