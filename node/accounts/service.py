"""AccountsService: users, devices, access tokens, profiles (used by every other area).

Hot path: ``authenticate`` answers from an in-memory map ``sha256(token) -> Requester``; only a
miss reads the database.  Every operation that revokes tokens (logout, logout all, device
deletion, password change with ``logout_devices``) drops the affected entries, and a revocation
counter stops a concurrent cache fill from resurrecting a revoked token.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Iterable, Sequence

from twisted.internet import threads
from twisted.python.threadpool import ThreadPool

from federation.errors import Forbidden, MatrixError, NotFound

from .. import metrics
from ..http.request import Requester
from . import passwords, store
from .attestations import RoleAttestations
from .deactivation import SWEEP_SECONDS, DeactivationSweep, RoomLeaver
from .ids import check_localpart, generate_device_id, localpart_from_input, make_user_id
from .login_tokens import LoginTokens
from .moderation import AccountModeration
from .refresh import RefreshTokens
from .remote_profiles import RemoteProfileSource
from .roles import DEFAULT_ROLE, check_role
from .threepid_sessions import ValidationSessions
from .tokens import (
    generate_access_token,
    generate_registration_token,
    hash_token,
    is_valid_registration_token_string,
    registration_token_valid,
)

log = logging.getLogger("parta.accounts")

ProfileListener = Callable[[str, dict], Awaitable[Any]]
# (user ID, the deleted device IDs or None for every device of the user)
DeviceDeletedListener = Callable[[str, Sequence[str] | None], Awaitable[Any]]
LAST_SEEN_FLUSH_SECONDS = 60.0
KDF_THREADS = 2


class UnknownToken(MatrixError):
    errcode = "M_UNKNOWN_TOKEN"
    http_status = 401


class UserInUse(MatrixError):
    errcode = "M_USER_IN_USE"


class RegistrationTokenUsedUp(MatrixError):
    errcode = "M_FORBIDDEN"
    http_status = 403


class UserDeactivated(MatrixError):
    errcode = "M_USER_DEACTIVATED"
    http_status = 403


class AccountsService:
    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.db = ctx.db
        self.clock = ctx.clock
        self.config = ctx.config
        self.server_name: str = ctx.config.server_name
        self._reactor = ctx.reactor
        self._tokens: dict[str, Requester] = {}  # token hash -> requester
        self._user_tokens: dict[str, set[str]] = {}  # user -> cached token hashes
        self._revocations = 0  # bumped by every revocation
        self._roles: dict[str, str] = {}
        self._seen: dict[tuple[str, str], tuple[str, int]] = {}
        self._profile_listeners: list[ProfileListener] = []
        # Called after a deletion of devices committed (logout, DELETE /devices, a password
        # change that logs the other devices out, deactivation): the E2EE area drops their
        # keys and tells the users sharing a room at once (node/e2ee/wiring.py).
        self.device_deleted: list[DeviceDeletedListener] = []
        self._flush_call: Any = None
        self._kdf_pool = ThreadPool(minthreads=0, maxthreads=KDF_THREADS, name="parta-kdf")
        # Set by wiring: the credential guard (its ``attempts`` limiter is also exposed as
        # ``login_limiter``, the per-IP limit of login/register) and the UIA session manager.
        self.guard: Any = None
        self.login_limiter: Any = None
        self.uia: Any = None
        # Set by wiring (refresh_wiring.py): expiring access tokens and their refresh tokens.
        self.refresh_tokens: RefreshTokens | None = None
        # Set by wiring (threepid_wiring.py), None in bare tests: account locks/suspensions
        # (moderation.py), e-mail validation sessions, m.login.token tokens.
        self.moderation: AccountModeration | None = None
        self.threepid_sessions: ValidationSessions | None = None
        self.login_tokens: LoginTokens | None = None
        # Set by the composition root: makes a deactivated user leave their rooms.
        self.room_leaver: RoomLeaver | None = None
        # Other servers' profiles; None until the federation attaches it (remote_profiles.py).
        self.remote_profiles: RemoteProfileSource | None = None
        # Staff role attestations (org.parta.role); inert until the federation attaches the
        # city roster and the server key (attestations.py).
        self.attestations = RoleAttestations(ctx.db, ctx.clock, self.server_name)
        self._sweep = DeactivationSweep(self)
        self._sweep_call: Any = None

    def attach_remote_profiles(self, remote: RemoteProfileSource) -> None:
        """Called once by the federation's wiring: profiles of other servers' users."""
        self.remote_profiles = remote

    # --- start-up ------------------------------------------------------------------------
    def load(self) -> None:
        """Start-up only: load the role map (small: one row per school account)."""
        self._roles = self.db.run_sync(store.all_roles)
        self._schedule_flush()
        self._schedule_sweep()

    def _schedule_sweep(self) -> None:
        self._sweep_call = self.clock.call_later(SWEEP_SECONDS, self._run_sweep)

    def _run_sweep(self) -> None:
        self._defer(self._sweep.run_once()).addErrback(
            lambda f: log.warning("event=deactivation_sweep_failed error=%s", f.getErrorMessage())
        )
        self._schedule_sweep()

    def _schedule_flush(self) -> None:
        self._flush_call = self.clock.call_later(LAST_SEEN_FLUSH_SECONDS, self._flush_seen)

    def _flush_seen(self) -> None:
        self.flush_last_seen().addErrback(
            lambda f: log.warning("event=last_seen_flush_failed error=%s", f.getErrorMessage())
        )
        self._schedule_flush()

    def flush_last_seen(self) -> Any:
        """Write the batched last-seen IP/time of devices; returns a Deferred."""
        from twisted.internet import defer

        seen, self._seen = self._seen, {}
        if not seen:
            return defer.succeed(None)
        batch = [(u, d, ip, ts) for (u, d), (ip, ts) in seen.items()]
        return self._defer(self.db.run(store.touch_devices, batch))

    def stop(self) -> Any:
        """Stop the flush timer and write what is pending (a Deferred for shutdown)."""
        for call in (self._flush_call, self._sweep_call):
            if call is not None and call.active():
                call.cancel()
        return self.flush_last_seen().addErrback(lambda f: None)

    @staticmethod
    def _defer(coro: Any) -> Any:
        from twisted.internet import defer

        return defer.ensureDeferred(coro)

    async def _on_thread(self, fn: Callable, *args: Any) -> Any:
        """Run password hashing on the KDF pool (at most two hashes in memory at once)."""
        if not self._kdf_pool.started:
            self._kdf_pool.start()
            self._reactor.addSystemEventTrigger("during", "shutdown", self._kdf_pool.stop)
        return await threads.deferToThreadPool(self._reactor, self._kdf_pool, fn, *args)

    def now_ms(self) -> int:
        return self.clock.time_ms()

    def user_id_for(self, localpart: str) -> str:
        return make_user_id(localpart, self.server_name)

    # --- authentication (hot path) -------------------------------------------------------
    async def authenticate(self, request: Any, token: str) -> Requester:
        h = hash_token(token)
        requester = self._tokens.get(h)
        if requester is None:
            revocations = self._revocations
            row = await self.db.run(store.lookup_access_token, h)
            if row is None:
                raise UnknownToken("Unknown access token", soft_logout=False)
            user_id, device_id, token_id = row
            requester = Requester(user_id, device_id, token_id)
            if self.refresh_tokens is not None:  # expiring tokens (refresh.py)
                await self.refresh_tokens.on_first_use(h)
            # Cache only if no revocation ran while we read the database.
            if self._revocations == revocations:
                self._tokens[h] = requester
                self._user_tokens.setdefault(user_id, set()).add(h)
        if self.refresh_tokens is not None and self.refresh_tokens.expired(h):
            raise UnknownToken("Access token has expired", soft_logout=True)
        if self.moderation is not None:  # locked / suspended accounts (moderation.py)
            self.moderation.check(requester.user_id, request)
        if requester.device_id is not None:
            ip = getattr(request, "client_ip", None) or "?"
            self._seen[(requester.user_id, requester.device_id)] = (ip, self.now_ms())
        return requester

    def _forget_tokens(self, user_id: str, hashes: Iterable[str] | None = None) -> None:
        """Drop cached tokens (all of the user's when ``hashes`` is None)."""
        self._revocations += 1
        cached = self._user_tokens.get(user_id, set())
        drop = set(cached) if hashes is None else set(hashes)
        for h in drop:
            self._tokens.pop(h, None)
            cached.discard(h)
        if not cached:
            self._user_tokens.pop(user_id, None)

    async def issue_token(
        self, user_id: str, device_id: str | None, display_name: str | None, ip: str | None
    ) -> tuple[str, str]:
        """Create (or reuse) a device and a new access token for it."""
        device_id = device_id or generate_device_id()
        token = generate_access_token()
        now = self.now_ms()

        def txn(conn: Any) -> None:
            store.ensure_device(conn, user_id, device_id, display_name, now, ip)
            store.insert_access_token(
                conn, token_hash=hash_token(token), user_id=user_id, device_id=device_id, now_ms=now
            )

        await self.db.run(txn)
        return token, device_id

    # --- users ---------------------------------------------------------------------------
    async def create_user(
        self,
        localpart: str,
        password: str | None,
        role: str,
        display_name: str | None = None,
        *,
        registration_token: str | None = None,
    ) -> str:
        """Create a local account (CLI, demo, registration).  Raises M_USER_IN_USE.

        ``registration_token``: the token checked by the UIA stage; one use is counted in
        the account's own transaction, and if none is left (another registration took the
        last one meanwhile) nothing is created: ``RegistrationTokenUsedUp``.
        """
        check_localpart(localpart, self.server_name)
        try:
            check_role(role)
        except ValueError as exc:
            raise MatrixError(str(exc), errcode="M_INVALID_PARAM") from None
        user_id = self.user_id_for(localpart)
        pw_hash = await self._on_thread(passwords.hash_password, password) if password else None
        now = self.now_ms()

        def txn(conn: Any) -> None:
            if store.user_exists(conn, user_id):
                raise UserInUse("Desired user ID is already taken.")
            store.insert_user(
                conn,
                user_id=user_id,
                localpart=localpart,
                role=role,
                displayname=display_name if display_name is not None else localpart,
                password_hash=pw_hash,
                now_ms=now,
            )
            if registration_token is not None and not store.use_registration_token(
                conn, registration_token, now
            ):
                raise RegistrationTokenUsedUp("This registration token is no longer valid")

        await self.db.run(txn)
        self._roles[user_id] = role
        log.info("event=user_created user_id=%s role=%s", user_id, role)
        return user_id

    async def user_exists(self, user_id: str) -> bool:
        if user_id in self._roles:
            return True
        if not user_id.endswith(":" + self.server_name):
            return False
        return await self.db.run(store.user_exists, user_id)

    def role_of(self, user_id: str) -> str | None:
        """The user's school role from memory (None for unknown/remote users)."""
        return self._roles.get(user_id)

    async def get_role(self, user_id: str) -> str | None:
        role = self._roles.get(user_id)
        if role is None:
            user = await self.db.run(store.get_user, user_id)
            if user is not None:
                role = self._roles[user_id] = user["role"]
        return role

    async def search_users(self, term: str, limit: int) -> list[dict]:
        """Local users whose ID or display name contains ``term`` (user directory format)."""
        rows = await self.db.run(store.search_users, term, limit)
        out = []
        for r in rows:
            item = {"user_id": r["user_id"]}
            if r["displayname"] is not None:
                item["display_name"] = r["displayname"]
            if r["avatar_url"] is not None:
                item["avatar_url"] = r["avatar_url"]
            out.append(item)
        return out

    async def list_users(self) -> list[dict]:
        return await self.db.run(store.list_users)

    # --- passwords -----------------------------------------------------------------------
    async def check_password(self, user_id: str, password: str) -> bool:
        """True if ``password`` is the active user's (no lockout: see ``verify_password``)."""
        ok, deactivated = await self._password_matches(user_id, password)
        return ok and not deactivated

    async def _password_matches(self, user_id: str, password: str) -> tuple[bool, bool]:
        """(the password matches, the account is deactivated)."""
        user = await self.db.run(store.get_user, user_id)
        pw_hash = user["password_hash"] if user else None
        ok = bool(await self._on_thread(passwords.verify_password, password, pw_hash))
        return ok, bool(user and user["deactivated"])

    async def verify_password(self, user_id: str | None, password: str, ip: str | None) -> bool:
        """The one password check of /login and every UIA password stage (``guard``):
        429 while the user or address is locked out; a failure counts toward the lockout.
        A deactivated account with the right password is 403 ``M_USER_DEACTIVATED`` (login
        spec); with a wrong one it fails like any other, so guessers learn nothing."""
        self.guard.check_not_locked(ip, user_id)
        ok, deactivated = await self._password_matches(user_id or "@:invalid", password)
        if not ok or user_id is None:
            self.guard.failed(ip, user_id)
            return False
        if deactivated:
            raise UserDeactivated("This account has been deactivated")
        return True

    async def resolve_login_user(self, identifier: str) -> str | None:
        """Map a login identifier to a local user ID (not checked for existence)."""
        localpart = localpart_from_input(identifier, self.server_name)
        return None if localpart is None else self.user_id_for(localpart)

    async def login_password(
        self,
        identifier: str,
        password: str,
        device_id: str | None,
        display_name: str | None,
        ip: str | None,
    ) -> dict:
        user_id = await self.resolve_login_user(identifier)
        if not await self.verify_password(user_id, password, ip) or user_id is None:
            metrics.LOGINS.labels("failure").inc()
            log.info("event=login_failed ip=%s", ip)
            raise Forbidden("Invalid username or password")
        metrics.LOGINS.labels("success").inc()
        token, device_id = await self.issue_token(user_id, device_id, display_name, ip)
        log.info("event=login user_id=%s device_id=%s", user_id, device_id)
        return {"user_id": user_id, "access_token": token, "device_id": device_id}

    async def change_password(
        self, user_id: str, new_password: str, *, keep_device_id: str | None, logout_devices: bool
    ) -> None:
        pw_hash = await self._on_thread(passwords.hash_password, new_password)

        def txn(conn: Any) -> tuple[list[str], list[str]]:
            store.set_password_hash(conn, user_id, pw_hash)
            if not logout_devices:
                return [], []
            others = [d for d in store.device_ids_of(conn, user_id) if d != keep_device_id]
            return others, store.delete_devices(conn, user_id, others)

        others, hashes = await self.db.run(txn)
        if logout_devices:
            self._forget_tokens(user_id, None if keep_device_id is None else hashes)
            await self._devices_deleted(user_id, others)
        log.info("event=password_changed user_id=%s logout_devices=%s", user_id, logout_devices)

    # --- deactivation (deactivation.py) --------------------------------------------------
    async def deactivate(self, user_id: str, *, erase: bool = False) -> None:
        """Deactivate a local account: tokens, devices (and with ``erase`` the profile) go
        at once, cached tokens too; then the user leaves their rooms."""
        hashes = await self.db.run(store.deactivate_user, user_id, erase)
        if hashes is None:
            raise NotFound("User not found")
        self.forget_user_tokens(user_id)
        self._sweep.note(user_id)
        log.info("event=user_deactivated user_id=%s erase=%s", user_id, erase)
        await self._devices_deleted(user_id, None)
        await self.leave_rooms(user_id)

    def forget_user_tokens(self, user_id: str) -> None:
        self._forget_tokens(user_id)
        for key in [k for k in self._seen if k[0] == user_id]:
            del self._seen[key]

    async def leave_rooms(self, user_id: str) -> None:
        if self.room_leaver is None:
            return
        try:
            await self.room_leaver(user_id)
        except Exception:  # the account is deactivated whatever happens here
            log.exception("event=deactivation_leave_failed user_id=%s", user_id)

    # --- logout / devices ----------------------------------------------------------------
    async def logout(self, requester: Requester) -> None:
        """Spec: invalidate the token and delete its device."""
        if requester.device_id is None:
            return
        await self.delete_devices(requester.user_id, [requester.device_id])

    async def logout_all(self, user_id: str) -> None:
        def txn(conn: Any) -> list[str]:
            return store.delete_devices(conn, user_id, store.device_ids_of(conn, user_id))

        await self.db.run(txn)
        self._forget_tokens(user_id)
        log.info("event=logout_all user_id=%s", user_id)
        await self._devices_deleted(user_id, None)

    async def delete_devices(self, user_id: str, device_ids: list[str]) -> None:
        hashes = await self.db.run(store.delete_devices, user_id, device_ids)
        self._forget_tokens(user_id, hashes)
        for d in device_ids:
            self._seen.pop((user_id, d), None)
        await self._devices_deleted(user_id, device_ids)

    async def _devices_deleted(self, user_id: str, device_ids: Sequence[str] | None) -> None:
        """Tell the listeners; the deletion stands whatever they do."""
        for listener in list(self.device_deleted):
            try:
                await listener(user_id, device_ids)
            except Exception:  # noqa: BLE001 - a listener never undoes a logout
                log.exception("event=device_deleted_listener_failed user_id=%s", user_id)

    def _device_json(self, row: dict) -> dict:
        out: dict[str, Any] = {"device_id": row["device_id"]}
        if row["display_name"] is not None:
            out["display_name"] = row["display_name"]
        ip, ts = self._seen.get(
            (row["user_id"], row["device_id"]), (row["last_seen_ip"], row["last_seen_ts"])
        )
        if ip is not None:
            out["last_seen_ip"] = ip
        if ts is not None:
            out["last_seen_ts"] = ts
        return out

    async def list_devices(self, user_id: str) -> list[dict]:
        return [self._device_json(r) for r in await self.db.run(store.list_devices, user_id)]

    async def get_device(self, user_id: str, device_id: str) -> dict:
        row = await self.db.run(store.get_device, user_id, device_id)
        if row is None:
            raise NotFound("Device not found")
        return self._device_json(row)

    async def update_device(self, user_id: str, device_id: str, display_name: str | None) -> None:
        if not await self.db.run(store.update_device_name, user_id, device_id, display_name):
            raise NotFound("Device not found")

    # --- profile -------------------------------------------------------------------------
    def add_profile_listener(self, callback: ProfileListener) -> None:
        self._profile_listeners.append(callback)

    async def get_profile(self, user_id: str) -> dict:
        """``{displayname?, avatar_url?, ...}``; empty dict for unknown users."""
        return await self.db.run(store.get_profile, user_id) or {}

    async def get_profile_or_none(self, user_id: str) -> dict | None:
        return await self.db.run(store.get_profile, user_id)

    async def update_profile(
        self, user_id: str, changes: dict[str, Any], removals: Iterable[str] = ()
    ) -> dict:
        """Apply field changes/removals atomically; awaits the profile listeners."""
        from .profile_rules import check_profile_size

        def txn(conn: Any) -> dict:
            profile = store.get_profile(conn, user_id)
            if profile is None:
                raise NotFound("Profile not found")
            profile.update(changes)
            for key in removals:
                profile.pop(key, None)
            check_profile_size(profile)
            store.set_profile(conn, user_id, profile)
            return profile

        profile = await self.db.run(txn)
        for listener in list(self._profile_listeners):
            try:
                await listener(user_id, profile)
            except Exception:  # one failing listener must not break the change
                log.exception("event=profile_listener_failed user_id=%s", user_id)
        return profile

    # --- registration tokens -------------------------------------------------------------
    async def create_registration_token(
        self,
        *,
        uses_allowed: int | None,
        expiry_time: int | None,
        role: str = DEFAULT_ROLE,
        token: str | None = None,
    ) -> str:
        token = token or generate_registration_token()
        now = self.now_ms()
        await self.db.run(
            lambda conn: store.insert_registration_token(
                conn,
                token=token,
                uses_allowed=uses_allowed,
                expiry_time=expiry_time,
                role=role,
                now_ms=now,
            )
        )
        return token

    async def check_registration_token(self, token: str, ip: str | None) -> dict | None:
        """The token's row if it is valid now, else None (reserves nothing).  Goes through
        the address's lockout, and an invalid token counts as a failure (``guard``)."""
        self.guard.check_not_locked(ip)
        row = None
        if is_valid_registration_token_string(token):  # no DB look-up of junk (NUL...)
            row = await self.db.run(store.get_registration_token, token)
        if row is None or not registration_token_valid(row, self.now_ms()):
            self.guard.failed(ip)
            return None
        return row

    async def registration_token_valid(self, token: str, ip: str | None = None) -> bool:
        return await self.check_registration_token(token, ip) is not None

    async def list_registration_tokens(self) -> list[dict]:
        return await self.db.run(store.list_registration_tokens)
