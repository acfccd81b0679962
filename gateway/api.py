"""The gateway's HTTP API on the client listener (Parta's own endpoints).

    GET  /_parta/v1/roster                 the current signed roster version
    GET  /_parta/v1/roster?since=N         {"versions": [every version > N, oldest first],
                                            "latest_version", "limited"} for accept_chain
    GET  /_parta/v1/roster/{version}       one signed version
    POST /_parta/v1/enrol                  enrolment request (federation.enrolment); the
                                           token proof authenticates it -> enrolment response
    POST /_parta/v1/keys/update            key rotation request, signed by a pinned key
    GET  /_parta/v1/directory/schools?q=   {"schools": [...]}: the city directory; anonymous
                                           callers see enrolled schools only (what the public
                                           roster says anyway), city office users everything

Errors are Matrix JSON errors: refused enrolments carry ``EnrolmentError``'s errcode
(``M_FORBIDDEN``/``M_BAD_JSON``, 409 on conflicts) and message.  Nothing here needs an
access token; the directory uses one (or a dashboard session) if present.
"""

from __future__ import annotations

import logging
from typing import Any

from federation.errors import BadJSON, InvalidParam, MatrixError, NotFound

from .directory import MAX_QUERY, directory_entries, search
from .roster_enforcement import note_roster_request

log = logging.getLogger("parta.gateway")

MAX_CHAIN = 500  # versions per ?since= page ("limited": true means ask again)
MAX_VERSION = 2**53


class RosterUnavailable(MatrixError):
    errcode = "M_NOT_FOUND"
    http_status = 404


def _version_param(raw: Any, name: str) -> int:
    if not isinstance(raw, str) or not raw.isdigit() or len(raw) > 16:
        raise InvalidParam(f"{name} must be a non-negative integer")
    value = int(raw)
    if value > MAX_VERSION:
        raise InvalidParam(f"{name} is too large")
    return value


def register(router: Any, gw: Any) -> None:
    """Add the endpoints to ``router``; ``gw`` is the ``gateway.app.Gateway``."""
    roster = gw.roster

    async def get_roster(req: Any) -> tuple[int, Any]:
        since_raw = req.query("since")
        if since_raw is not None:
            since = _version_param(since_raw, "since")
            note_roster_request(gw, req, since)  # a node's signed refresh = its ack
            docs = await roster.since(since, MAX_CHAIN + 1)
            limited = len(docs) > MAX_CHAIN
            docs = docs[:MAX_CHAIN]
            latest = await roster.current()
            return 200, {
                "versions": docs,
                "limited": limited,
                "latest_version": latest["version"] if latest else 0,
            }
        doc = await roster.current()
        if doc is None:
            raise RosterUnavailable("The gateway has not published a roster yet")
        return 200, doc

    async def get_roster_version(req: Any, version: str) -> tuple[int, Any]:
        v = _version_param(version, "version")
        if v < 1:
            raise InvalidParam("Roster versions start at 1")
        doc = await roster.get(v)
        if doc is None:
            raise NotFound(f"There is no roster version {v}")
        return 200, doc

    async def post_enrol(req: Any) -> tuple[int, Any]:
        body = req.json()
        try:
            doc = await roster.enrol(body)
        except MatrixError as exc:
            log.info(
                "event=enrolment_refused ip=%s server_name=%r reason=%s",
                req.client_ip,
                str(body.get("server_name"))[:255],
                getattr(exc, "reason", exc.errcode),
            )
            raise
        server_name = body["server_name"]
        log.info("event=enrolled server_name=%s roster_version=%s", server_name, doc["version"])
        gw.roster_changed(doc)
        return 200, roster.enrolment_response(doc)

    async def post_keys_update(req: Any) -> tuple[int, Any]:
        body = req.json()
        server_name = body.get("server_name")
        if not isinstance(server_name, str):
            raise BadJSON("server_name must be a string")
        doc = await roster.update_keys(server_name, body)
        log.info("event=keys_updated server_name=%s roster_version=%s", server_name, doc["version"])
        gw.roster_changed(doc)
        return 200, {"roster": doc}

    async def get_directory(req: Any) -> tuple[int, Any]:
        q = req.query("q", "") or ""
        if len(q) > MAX_QUERY:
            raise InvalidParam(f"q must be at most {MAX_QUERY} characters")
        full = await gw.is_office_request(req)
        entries = directory_entries(await roster.list_schools(), await roster.current())
        found = search(entries, q, statuses=None if full else ("enrolled",))
        keys = ("school_id", "name", "district", "server", "class", "status")
        return 200, {"schools": [{k: e[k] for k in keys} for e in found], "total": len(found)}

    router.add("GET", "/_parta/v1/roster", get_roster, auth=False)
    router.add("GET", "/_parta/v1/roster/{version}", get_roster_version, auth=False)
    router.add("POST", "/_parta/v1/enrol", post_enrol, auth=False)
    router.add("POST", "/_parta/v1/keys/update", post_keys_update, auth=False)
    router.add("GET", "/_parta/v1/directory/schools", get_directory, auth=False, auth_optional=True)
