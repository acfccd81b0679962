"""``twisted.web`` resource that runs routed ``async`` handlers and renders Matrix JSON.

One leaf resource per listener.  Body, request-line and header limits are enforced while
the bytes arrive, by the listener's site (``node.http.site``, which asks ``body_limit`` for
the route's limit).  Then, for each request, this resource: reads the body (checking the
limit again), matches a route, authenticates (via an injected ``authenticate`` coroutine),
applies the injected rate limiter, awaits the handler, and renders ``(status, json)``.  Any
``MatrixError`` becomes ``{"errcode", "error"}`` with its status; anything else is logged and
becomes a 500 ``M_UNKNOWN`` without details (no data leaks).

A handler may return a ``Response`` (bytes in memory, e.g. a thumbnail) or a ``FileResponse``
(an open file, streamed with backpressure by ``file_sender.FileProducer``, so a media download
holds one chunk in memory, not the file).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Awaitable, Callable, Protocol

import orjson
from twisted.internet import defer
from twisted.web import resource, server

from federation.errors import MatrixError

from .file_sender import FileProducer, FileResponse
from .request import ApiRequest, Requester
from .router import Route, Router

log = logging.getLogger("parta.http")

CORS_HEADERS = {
    b"Access-Control-Allow-Origin": b"*",
    b"Access-Control-Allow-Methods": b"GET, HEAD, POST, PUT, DELETE, OPTIONS",
    b"Access-Control-Allow-Headers": b"X-Requested-With, Content-Type, Authorization, Date",
}


class Response:
    """A non-JSON response (media bytes, HTML).  Handlers may return one instead of a tuple."""

    __slots__ = ("status", "body", "content_type", "headers")

    def __init__(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers or {}


class Authenticator(Protocol):
    async def __call__(self, request: ApiRequest, token: str) -> Requester: ...


class RequestObserver(Protocol):
    """Metrics hook: called once per finished request."""

    def __call__(self, route_name: str, method: str, status: int, seconds: float) -> None: ...


def _extract_token(request: ApiRequest) -> str | None:
    auth = request.headers.get("authorization")
    if auth and auth.startswith("Bearer "):
        return auth[7:].strip()
    # Deprecated by the spec (v1.11) but still sent by some clients.
    return request.query("access_token")


class MissingToken(MatrixError):
    errcode = "M_MISSING_TOKEN"
    http_status = 401


class ApiResource(resource.Resource):
    isLeaf = True

    def __init__(
        self,
        router: Router,
        *,
        authenticate: Authenticator | None,
        max_body_bytes: int,
        rate_limit: Callable[[ApiRequest], Awaitable[None]] | None = None,
        observe: RequestObserver | None = None,
        body_limits: dict[str, int] | None = None,
    ) -> None:
        super().__init__()
        self.router = router
        self.authenticate = authenticate
        self.max_body_bytes = max_body_bytes
        self.body_limits = body_limits or {}  # route name -> larger limit (media upload)
        self.rate_limit = rate_limit
        self.observe = observe
        self._smallest_limit = min([max_body_bytes, *self.body_limits.values()])

    def body_limit(self, method: bytes, uri: bytes, declared: int | None) -> int:
        """The body limit of the route ``method uri`` names, asked by the HTTP edge
        (``node.http.site``) as soon as the headers are in, before any body byte is read.

        A declared length within every route's limit (nearly every request) is let through
        without a second route match; the returned limit then just bounds that body.
        """
        if declared is not None and declared <= self._smallest_limit:
            return self._smallest_limit
        if not self.body_limits:
            return self.max_body_bytes
        path = uri.split(b"?", 1)[0].decode("utf-8", "replace")
        route, _, _ = self.router.match(method.decode("ascii", "replace"), path)
        if route is None:
            return self.max_body_bytes
        return self.body_limits.get(route.name, self.max_body_bytes)

    def render(self, request: server.Request) -> Any:
        defer.ensureDeferred(self._handle(request))
        return server.NOT_DONE_YET

    async def _handle(self, twreq: server.Request) -> None:
        started = time.perf_counter()
        method = twreq.method.decode("ascii", "replace")
        raw_path = twreq.path.decode("utf-8", "replace")
        route_name = "unmatched"
        status = 500
        try:
            for k, v in CORS_HEADERS.items():
                twreq.setHeader(k, v)
            if method == "OPTIONS":
                status, body = 200, {}
                self._write_json(twreq, status, body)
                return
            route, params, known = self.router.match(method, raw_path)
            if route is None:
                if known:
                    raise MatrixError(
                        "Method not allowed for this endpoint",
                        errcode="M_UNRECOGNIZED",
                        http_status=405,
                    )
                raise MatrixError("Unrecognized request", errcode="M_UNRECOGNIZED", http_status=404)
            route_name = route.name
            req = self._build_request(twreq, method, raw_path, route)
            req.route_name = route.name
            await self._authenticate(req, route)
            if route.rate_limited and self.rate_limit is not None:
                await self.rate_limit(req)
            result = await route.handler(req, **params)
            status = self._write_result(twreq, result)
        except MatrixError as exc:
            status = exc.http_status
            self._write_json(twreq, status, exc.to_json())
        except Exception:  # the server must never crash on one request
            log.exception("Unhandled error in %s %s", method, route_name)
            status = 500
            self._write_json(twreq, 500, {"errcode": "M_UNKNOWN", "error": "Internal server error"})
        finally:
            if self.observe is not None:
                self.observe(route_name, method, status, time.perf_counter() - started)

    def _build_request(
        self, twreq: server.Request, method: str, raw_path: str, route: Route
    ) -> ApiRequest:
        limit = self.body_limits.get(route.name, self.max_body_bytes)
        length = twreq.getHeader(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise MatrixError(
                f"Request body too large (limit {limit} bytes)",
                errcode="M_TOO_LARGE",
                http_status=413,
            )
        body = twreq.content.read(limit + 1) if twreq.content is not None else b""
        if len(body) > limit:
            raise MatrixError(
                f"Request body too large (limit {limit} bytes)",
                errcode="M_TOO_LARGE",
                http_status=413,
            )
        args = {
            k.decode("utf-8", "replace"): [v.decode("utf-8", "replace") for v in vs]
            for k, vs in twreq.args.items()
        }
        headers = {
            k.decode("latin-1").lower(): v[-1].decode("latin-1")
            for k, v in twreq.requestHeaders.getAllRawHeaders()
        }
        client = twreq.getClientAddress()
        return ApiRequest(
            method, raw_path, args, headers, body, getattr(client, "host", "?"), raw=twreq
        )

    async def _authenticate(self, req: ApiRequest, route: Route) -> None:
        if not (route.auth or route.auth_optional):
            return
        token = _extract_token(req)
        if token is None:
            if route.auth:
                raise MissingToken("Missing access token")
            return
        if self.authenticate is None:
            raise MatrixError("Authentication is not available", http_status=500)
        req.access_token = token
        req.requester = await self.authenticate(req, token)

    def _write_result(self, twreq: server.Request, result: Any) -> int:
        if isinstance(result, FileResponse):
            return self._write_file(twreq, result)
        if isinstance(result, Response):
            if twreq._disconnected:  # client went away while we worked
                return result.status
            self._write_head(
                twreq, result.status, result.content_type, result.headers, len(result.body)
            )
            if twreq.method != b"HEAD":
                twreq.write(result.body)
            twreq.finish()
            return result.status
        status, body = result
        self._write_json(twreq, status, body)
        return status

    @staticmethod
    def _write_file(twreq: server.Request, result: FileResponse) -> int:
        """Stream ``result``'s file; it is closed on every path (HEAD, gone client, error)."""
        try:
            if twreq._disconnected:  # client went away while we worked
                result.close()
                return result.status
            ApiResource._write_head(
                twreq, result.status, result.content_type, result.headers, result.content_length
            )
            if twreq.method == b"HEAD":
                result.close()
                twreq.finish()
                return result.status
            FileProducer(twreq, result).start()
        except BaseException:
            result.close()
            raise
        return result.status

    @staticmethod
    def _write_head(
        twreq: server.Request, status: int, content_type: str, headers: dict[str, str], length: int
    ) -> None:
        twreq.setResponseCode(status)
        twreq.setHeader(b"Content-Type", content_type.encode("latin-1"))
        for k, v in headers.items():
            twreq.setHeader(k.encode("latin-1"), v.encode("latin-1"))
        twreq.setHeader(b"Content-Length", str(length).encode())

    @staticmethod
    def _write_json(twreq: server.Request, status: int, body: Any) -> None:
        if twreq._disconnected or twreq.finished:
            return
        data = orjson.dumps(body)
        twreq.setResponseCode(status)
        twreq.setHeader(b"Content-Type", b"application/json")
        twreq.setHeader(b"Content-Length", str(len(data)).encode())
        twreq.setHeader(b"Cache-Control", b"no-cache, no-store, must-revalidate")
        if twreq.method != b"HEAD":
            twreq.write(data)
        twreq.finish()
