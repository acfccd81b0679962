"""The gateway's roster service: every roster version stored and served, new
versions published (enrolment, revocation, key rotation, periodic re-signing), enrolment
tokens issued and consumed.

Each change is one database transaction that reads the latest version, signs the next one
(``federation.roster.build_roster``: version + 1, chained by ``prev_sha256``) and inserts it;
an in-process lock keeps publications strictly sequential on every database (the version
primary key would refuse a concurrent duplicate anyway).  A refused request (bad proof,
expired token, ...) rolls back, so it never consumes a token.

The roster signing key may be offline: built with ``roster_key=None`` (and the public
``roster_verify_key``) the service still serves versions, history and exports, and every
publishing call raises ``RosterError`` (reason ``key``).
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Mapping

from sqlalchemy.engine import Connection
from twisted.internet.defer import DeferredLock

from federation.enrolment import (
    EnrolmentError,
    TokenRecord,
    build_enrolment_response,
    make_token,
    verify_enrolment_request,
    verify_key_update_request,
)
from federation.errors import InvalidParam, NotFound
from federation.keys import SigningKey, VerifyKey
from federation.roster import (
    MAX_TEXT,
    SERVER_CLASSES,
    Roster,
    RosterError,
    build_roster,
    roster_hash,
    roster_key_fingerprint,
    server_entry,
    verify_roster,
)

from . import store
from .export import export_synapse as _export_synapse

DAY_MS = 24 * 3600 * 1000
DEFAULT_VALIDITY_MS = 7 * DAY_MS
DEFAULT_TOKEN_TTL_MS = 7 * DAY_MS


class RosterService:
    def __init__(
        self,
        db: Any,
        clock: Any,
        signer_name: str,
        roster_key: SigningKey | None,
        validity_ms: int = DEFAULT_VALIDITY_MS,
        *,
        roster_verify_key: VerifyKey | None = None,
        token_ttl_ms: int = DEFAULT_TOKEN_TTL_MS,
    ) -> None:
        if roster_key is not None:
            verify_key = roster_key.verify_key
        elif roster_verify_key is not None:
            verify_key = roster_verify_key
        else:
            raise ValueError("need the roster key or at least its public half")
        self.db = db
        self.clock = clock
        self.signer_name = signer_name
        self.roster_key = roster_key
        self.roster_verify_key = verify_key
        self.validity_ms = validity_ms
        self.token_ttl_ms = token_ttl_ms
        self._lock = DeferredLock()

    @property
    def fingerprint(self) -> str:
        """What enrolment tokens carry (``roster_key_fingerprint``)."""
        return roster_key_fingerprint(self.roster_verify_key)

    # --- reading -----------------------------------------------------------------------
    async def current(self) -> dict | None:
        """The latest signed version, or None before the first one."""
        return await self.db.run(store.latest_doc)

    async def get(self, version: int) -> dict | None:
        """Version ``version`` (None if there is no such version)."""
        return await self.db.run(store.get_doc, int(version))

    async def since(self, version: int, limit: int | None = None) -> list[dict]:
        """Every version after ``version``, oldest first (``RosterState.accept_chain``)."""
        return await self.db.run(store.docs_after, int(version), limit)

    async def history(self) -> list[dict]:
        """A summary per version, newest first, each re-verified: ``signature_ok`` (shape
        and signature by the roster key, stored hash matches) and ``chain_ok`` (``prev_sha256``
        is the hash of the version before, versions contiguous)."""
        rows = await self.db.run(store.version_rows)
        out, prev_hash, prev_version = [], None, 0
        for row in rows:
            doc = json.loads(row.doc)
            try:
                verify_roster(doc, self.roster_verify_key, self.signer_name)
                sig_ok = roster_hash(doc) == row.sha256
            except RosterError:
                sig_ok = False
            chain_ok = row.version == prev_version + 1 and doc.get("prev_sha256") == prev_hash
            out.append(
                {
                    "version": row.version,
                    "sha256": row.sha256,
                    "prev_sha256": row.prev_sha256,
                    "issued_ts": row.issued_ts,
                    "valid_until_ts": row.valid_until_ts,
                    "server_count": row.server_count,
                    "signer_key_id": row.signer_key_id,
                    "signature_ok": sig_ok,
                    "chain_ok": chain_ok,
                }
            )
            prev_hash, prev_version = row.sha256, row.version
        out.reverse()
        return out

    async def list_schools(self) -> list[dict]:
        """The ``schools`` rows (school_id, name, district, server_class, server_name,
        status pending|enrolled|revoked, timestamps), by district then name."""
        return await self.db.run(store.list_schools)

    async def roster(self) -> Roster | None:
        """The latest version, verified and parsed."""
        doc = await self.current()
        return verify_roster(doc, self.roster_verify_key, self.signer_name) if doc else None

    def enrolment_response(self, doc: Mapping[str, Any]) -> dict:
        """The JSON the enrolment endpoint answers with (``verify_enrolment_response``)."""
        return build_enrolment_response(doc, self.signer_name, self.roster_verify_key)

    export_synapse = staticmethod(_export_synapse)

    # --- publishing --------------------------------------------------------------------
    def _now(self) -> int:
        return int(self.clock.time_ms())

    async def _write(self, fn: Any, *args: Any) -> Any:
        async with self._lock:
            return await self.db.run(fn, *args)

    def _sign_next(
        self, conn: Connection, prev: dict | None, servers: Mapping[str, Any], now: int
    ) -> dict:
        if self.roster_key is None:
            raise RosterError(
                "The roster signing key is not loaded (kept offline): load it "
                "to publish a roster version",
                reason="key",
            )
        doc = build_roster(prev, servers, now, self.validity_ms, self.signer_name, self.roster_key)
        store.insert_doc(conn, doc)
        return doc

    def _parse(self, doc: dict | None) -> Roster | None:
        if doc is None:
            return None
        return verify_roster(doc, self.roster_verify_key, self.signer_name)

    async def publish(self, servers: Mapping[str, Mapping[str, Any]]) -> dict:
        """Sign and store the next version listing exactly ``servers`` (name -> entry JSON,
        see ``federation.roster.server_entry``)."""

        def txn(conn: Connection, now: int) -> dict:
            return self._sign_next(conn, store.latest_doc(conn), servers, now)

        return await self._write(txn, self._now())

    async def refresh_if_due(self, fraction: float = 0.5) -> dict | None:
        """Re-sign the latest version (same servers, new validity) once ``fraction`` of its
        validity has passed, so nodes never see it expire while the gateway is up.  Returns
        the new version, or None if not due (or no roster yet)."""

        def txn(conn: Connection, now: int) -> dict | None:
            prev = store.latest_doc(conn)
            if prev is None:
                return None
            due = prev["issued_ts"] + int((prev["valid_until_ts"] - prev["issued_ts"]) * fraction)
            if now < due:
                return None
            return self._sign_next(conn, prev, prev["servers"], now)

        return await self._write(txn, self._now())

    async def add_server(
        self,
        server_name: str,
        *,
        school_id: str,
        name: str,
        district: str = "",
        server_class: str = "city",
        verify_keys: Iterable[VerifyKey] | Mapping[str, VerifyKey],
    ) -> dict:
        """Add or replace a server without enrolment (the gateway itself at init, an
        ``external`` server such as a ministry) and publish."""
        school_id = _check_school_fields(school_id, name, district, server_class)
        entry = server_entry(
            school_id=school_id,
            name=name,
            district=district,
            server_class=server_class,
            verify_keys=verify_keys,
        )

        def txn(conn: Connection, now: int) -> dict:
            prev = store.latest_doc(conn)
            servers = dict(prev["servers"]) if prev else {}
            for other, e in servers.items():
                if e["school_id"] == school_id and other != server_name:
                    raise EnrolmentError(
                        f"school_id {school_id} is already used by {other}",
                        reason="conflict",
                        http_status=409,
                    )
            if prev is not None and servers.get(server_name) == entry:
                return prev
            servers[server_name] = entry
            doc = self._sign_next(conn, prev, servers, now)
            store.clear_server_name(conn, server_name, school_id)
            store.upsert_school(
                conn,
                school_id,
                now,
                name=name,
                district=district,
                server_class=server_class,
                server_name=server_name,
                status="enrolled",
                enrolled_ts=now,
                revoked_ts=None,
            )
            return doc

        return await self._write(txn, self._now())

    # --- enrolment ---------------------------------------------------------------------
    async def create_enrolment_token(
        self,
        school_id: str,
        name: str,
        district: str = "",
        ttl_ms: int | None = None,
        *,
        server_class: str = "school",
    ) -> str:
        """Register (or update) a pending school and return a new one-time token string.

        Refused for a school that is currently enrolled (revoke it first)."""
        school_id = _check_school_fields(school_id, name, district, server_class)
        ttl = self.token_ttl_ms if ttl_ms is None else int(ttl_ms)
        if ttl <= 0:
            raise InvalidParam("Token lifetime must be positive")

        def txn(conn: Connection, now: int) -> str:
            row = store.get_school(conn, school_id)
            if row is not None and row.status == "enrolled":
                raise EnrolmentError(
                    f"School {school_id} is already enrolled as {row.server_name}; revoke it first",
                    reason="conflict",
                    http_status=409,
                )
            store.upsert_school(
                conn,
                school_id,
                now,
                name=name,
                district=district,
                server_class=server_class,
                status="pending",
            )
            tok = make_token(
                school_id=school_id,
                roster_verify_key=self.roster_verify_key,
                signer_name=self.signer_name,
                expires_ts=now + ttl,
            )
            store.insert_token(conn, tok.token_id, tok.verifier, school_id, now, tok.expires_ts)
            return tok.encode()

        return await self._write(txn, self._now())

    async def enrol(self, request_body: Any) -> dict:
        """Check an enrolment request (``federation.enrolment``), consume its token, add the
        school's server with its keys and publish.  Returns the new signed version.

        Raises ``EnrolmentError`` (token unknown/used/expired, wrong proof or signature,
        server name or school already in the roster) without consuming the token."""

        def txn(conn: Connection, now: int) -> dict:
            def lookup(token_id: str) -> TokenRecord | None:
                row = store.get_token(conn, token_id)
                if row is None:
                    return None
                return TokenRecord(
                    token_id=row.token_id,
                    verifier=row.verifier,
                    expires_ts=row.expires_ts,
                    school_id=row.school_id,
                    used=row.used_ts is not None,
                )

            ok = verify_enrolment_request(request_body, lookup, now)
            school_id = ok.token.school_id
            school = store.get_school(conn, school_id)
            if school is None:  # pragma: no cover - tokens reference schools (FK)
                raise EnrolmentError("Token for an unknown school", reason="unknown_token")
            prev = store.latest_doc(conn)
            servers = dict(prev["servers"]) if prev else {}
            if ok.server_name in servers:
                raise EnrolmentError(
                    f"{ok.server_name} is already in the roster", reason="conflict", http_status=409
                )
            for other, e in servers.items():
                if e["school_id"] == school_id:
                    raise EnrolmentError(
                        f"School {school_id} is already enrolled as {other}",
                        reason="conflict",
                        http_status=409,
                    )
            if not store.consume_token(conn, ok.token.token_id, ok.server_name, now):
                raise EnrolmentError("This enrolment token has already been used", reason="used")
            servers[ok.server_name] = server_entry(
                school_id=school_id,
                name=school.name,
                district=school.district,
                server_class=school.server_class,
                verify_keys=ok.verify_keys,
            )
            doc = self._sign_next(conn, prev, servers, now)
            store.clear_server_name(conn, ok.server_name, school_id)
            store.upsert_school(
                conn,
                school_id,
                now,
                server_name=ok.server_name,
                status="enrolled",
                enrolled_ts=now,
                revoked_ts=None,
            )
            return doc

        return await self._write(txn, self._now())

    async def revoke(self, school_id: str) -> dict:
        """Publish a version without the school's server(s), void its unused tokens and
        mark it revoked.  A school that was only pending gets no new version (the latest
        is returned).  ``NotFound`` for a school the gateway does not know."""
        school_id = str(school_id)

        def txn(conn: Connection, now: int) -> dict | None:
            prev = store.latest_doc(conn)
            servers = dict(prev["servers"]) if prev else {}
            gone = [n for n, e in servers.items() if e["school_id"] == school_id]
            school = store.get_school(conn, school_id)
            if not gone and school is None:
                raise NotFound(f"School {school_id} is not known to the gateway")
            store.void_tokens_of(conn, school_id, now)
            if school is not None:
                store.upsert_school(conn, school_id, now, status="revoked", revoked_ts=now)
            if not gone:
                return prev
            for n in gone:
                del servers[n]
            return self._sign_next(conn, prev, servers, now)

        return await self._write(txn, self._now())

    async def update_keys(self, server_name: str, request_body: Any) -> dict:
        """Key rotation: replace ``server_name``'s pinned keys with the request's set,
        authenticated by a key the roster currently pins (``verify_key_update_request``).
        Keys dropped from the set move to ``old_verify_keys`` with ``expired_ts`` = now."""

        def txn(conn: Connection, now: int) -> dict:
            if (
                not isinstance(request_body, Mapping)
                or request_body.get("server_name") != server_name
            ):
                raise EnrolmentError(
                    "server_name in the request does not match", reason="malformed"
                )
            prev = store.latest_doc(conn)
            roster = self._parse(prev)
            entry = roster.servers.get(server_name) if roster else None
            new_keys = verify_key_update_request(request_body, entry, now)
            # It refuses a server the roster lacks, so there is a roster with this entry.
            assert prev is not None and entry is not None
            old = dict(prev["servers"][server_name].get("old_verify_keys") or {})
            for key_id, vk in entry.verify_keys.items():
                if key_id in new_keys:
                    if new_keys[key_id].public_bytes != vk.public_bytes:
                        raise EnrolmentError(
                            f"Key ID {key_id} is reused for a different key; use a new key ID",
                            reason="malformed",
                        )
                    continue
                old[key_id] = {"key": vk.encode(), "expired_ts": now}
            for key_id in new_keys:
                if key_id in old:
                    raise EnrolmentError(
                        f"Key ID {key_id} was used before; use a new key ID", reason="malformed"
                    )
            servers = dict(prev["servers"])
            servers[server_name] = server_entry(
                school_id=entry.school_id,
                name=entry.name,
                district=entry.district,
                server_class=entry.server_class,
                verify_keys=new_keys,
                old_verify_keys=old,
            )
            doc = self._sign_next(conn, prev, servers, now)
            if store.get_school(conn, entry.school_id) is not None:
                store.upsert_school(conn, entry.school_id, now)  # touch updated_ts
            return doc

        return await self._write(txn, self._now())


def _check_school_fields(school_id: Any, name: Any, district: Any, server_class: Any) -> str:
    school_id = str(school_id).strip() if school_id is not None else ""
    if not school_id or len(school_id) > 64:
        raise InvalidParam("School ID must be 1-64 characters")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_TEXT:
        raise InvalidParam(f"School name must be 1-{MAX_TEXT} characters")
    if not isinstance(district, str) or len(district) > MAX_TEXT:
        raise InvalidParam(f"District must be at most {MAX_TEXT} characters")
    if server_class not in SERVER_CLASSES:
        raise InvalidParam(f"Server class must be one of {', '.join(SERVER_CLASSES)}")
    return school_id
