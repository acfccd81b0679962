"""``org.parta.role``: staff role attestations as a client sees them on the profile API."""

from __future__ import annotations

import pytest

from accounts_support import SERVER, V3, Node
from federation.attestations import sign_attestation
from federation.keys import SigningKey
from federation.roster import RosterEntry
from node.accounts.attestations import LIFETIME_MS

OTHER = "b.school.test"
KEY, KEY_B = SigningKey.generate("a_1"), SigningKey.generate("b_1")
FIELD = "org.parta.role"


def _entry(server: str, school_id: str, name: str, key: SigningKey) -> RosterEntry:
    return RosterEntry(server, school_id, name, "North", "school", {key.key_id: key.verify_key})


class Roster:
    entries = {
        SERVER: _entry(SERVER, "17", "School 17", KEY),
        OTHER: _entry(OTHER, "42", "Lyceum 42", KEY_B),
    }

    def entry(self, server_name):
        return self.entries.get(server_name)


class RemoteRoles:
    def __init__(self) -> None:
        self.docs: dict[str, object] = {}
        self.asked: list[str] = []

    async def fetch(self, user_id):
        self.asked.append(user_id)
        return self.docs.get(user_id)


class RemoteProfiles:
    def is_remote(self, user_id):
        return not user_id.endswith(":" + SERVER)

    async def get_profile(self, user_id):
        return {"displayname": "Remote"}


@pytest.fixture
def node(monkeypatch):
    n = Node(monkeypatch)
    n.remote = RemoteRoles()
    n.accounts.attach_remote_profiles(RemoteProfiles())
    n.accounts.attestations.attach(lambda: Roster(), lambda: KEY, n.remote)
    return n


def _get(node, user_id, path=f"/{FIELD}"):
    return node.call("GET", V3 + f"/profile/{user_id}{path}")


def _remote_director(node, **kw):
    args = dict(
        user_id="@dir:" + OTHER,
        role="director",
        server_name=OTHER,
        school="42",
        key=KEY_B,
        issued_ts=node.clock.time_ms(),
        lifetime_ms=LIFETIME_MS,
    )
    args.update(kw)
    return sign_attestation(**args)


def test_local_director_is_shown_verified(node):
    user = node.add_user("d1", role="director", display_name="Anna")
    status, body = _get(node, user)
    assert status == 200
    shown = body[FIELD]
    assert shown["verified"] is True
    assert (shown["role"], shown["school"], shown["school_name"]) == ("director", "17", "School 17")
    assert shown["attestation"]["signatures"][SERVER][KEY.key_id]
    # The whole profile carries it too.
    status, body = _get(node, user, path="")
    assert status == 200 and body["displayname"] == "Anna" and body[FIELD]["verified"] is True


@pytest.mark.parametrize("role", ["pupil", "parent"])
def test_pupils_and_parents_have_no_role_field(node, role):
    user = node.add_user("p1", role=role)
    status, body = _get(node, user)
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    assert FIELD not in _get(node, user, path="")[1]


def test_nobody_is_attested_outside_a_city(monkeypatch):
    n = Node(monkeypatch)
    user = n.add_user("d1", role="director")
    assert _get(n, user)[0] == 404


def test_a_user_cannot_set_or_remove_the_role_field(node):
    user = node.add_user("p1", role="pupil")
    token = node.token_for("p1")
    fake = {FIELD: {"verified": True, "role": "director"}}
    status, body = node.call("PUT", V3 + f"/profile/{user}/{FIELD}", fake, token=token)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    status, body = node.call("DELETE", V3 + f"/profile/{user}/{FIELD}", token=token)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    assert _get(node, user)[0] == 404


def test_attestation_is_renewed_before_it_expires(node):
    user = node.add_user("t1", role="teacher")
    first = _get(node, user)[1][FIELD]["attestation"]
    assert _get(node, user)[1][FIELD]["attestation"] == first  # cached, not re-signed
    node.reactor.advance(LIFETIME_MS / 2000 + 1)
    renewed = _get(node, user)[1][FIELD]
    assert renewed["verified"] is True
    assert renewed["attestation"]["issued_ts"] > first["issued_ts"]


def test_remote_director_is_verified_against_the_roster(node):
    node.remote.docs["@dir:" + OTHER] = _remote_director(node)
    status, body = _get(node, "@dir:" + OTHER)
    assert status == 200
    assert body[FIELD]["verified"] is True
    assert body[FIELD]["school_name"] == "Lyceum 42"
    # Cached: the profile GET does not ask the other school again.
    _get(node, "@dir:" + OTHER)
    assert node.remote.asked == ["@dir:" + OTHER]


@pytest.mark.parametrize(
    "make,reason",
    [
        (lambda n: {**_remote_director(n), "role": "deputy"}, "signature"),
        (lambda n: _remote_director(n, key=KEY), "signature"),
        (lambda n: _remote_director(n, issued_ts=n.clock.time_ms() - LIFETIME_MS), "expired"),
        (lambda n: _remote_director(n, school="17"), "unknown_school"),
        (lambda n: "not an object", "malformed"),
    ],
)
def test_unverifiable_remote_role_is_shown_unverified(node, make, reason):
    node.remote.docs["@dir:" + OTHER] = make(node)
    status, body = _get(node, "@dir:" + OTHER)
    assert status == 200
    assert body[FIELD] == {"verified": False, "reason": reason}


def test_someone_elses_attestation_is_not_accepted(node):
    node.remote.docs["@dir:" + OTHER] = _remote_director(node, user_id="@other:" + OTHER)
    assert _get(node, "@dir:" + OTHER)[1][FIELD] == {"verified": False, "reason": "foreign"}


def test_remote_user_without_role_has_no_field(node):
    assert _get(node, "@pupil:" + OTHER)[0] == 404
    assert _get(node, "@pupil:" + OTHER, path="")[1] == {"displayname": "Remote"}


def test_city_directory_lists_leaders_and_opted_in_teachers(node):
    director = node.add_user("d1", role="director")
    deputy = node.add_user("d2", role="deputy")
    teacher = node.add_user("t1", role="teacher")
    quiet = node.add_user("t2", role="teacher")
    node.add_user("p1", role="pupil")
    node.add_user("pa1", role="parent")
    token = node.token_for("t1")
    opt_in = {"org.parta.city_directory": True}
    path = V3 + f"/profile/{teacher}/org.parta.city_directory"
    assert node.call("PUT", path, opt_in, token=token)[0] == 200
    listed = node.run(node.accounts.attestations.directory())
    assert sorted(d["user_id"] for d in listed) == sorted([director, deputy, teacher])
    assert quiet not in {d["user_id"] for d in listed}


def test_an_oversized_remote_document_is_refused_and_not_cached(node):
    doc = {**_remote_director(node), "padding": "x" * 20_000}
    node.remote.docs["@dir:" + OTHER] = doc
    assert _get(node, "@dir:" + OTHER)[1][FIELD] == {"verified": False, "reason": "malformed"}
    assert node.accounts.attestations._verdicts == {}


def test_a_role_change_is_attested_at_the_next_request(node):
    from sqlalchemy import update

    from schema.accounts import users

    user = node.add_user("t1", role="teacher")
    assert _get(node, user)[1][FIELD]["role"] == "teacher"

    def set_role(role):
        node.db.run_sync(
            lambda conn: conn.execute(
                update(users).where(users.c.user_id == user).values(role=role)
            )
        )

    set_role("deputy")  # e.g. changed by another process (CLI, roster import)
    assert _get(node, user)[1][FIELD]["role"] == "deputy"
    set_role("parent")
    assert _get(node, user)[0] == 404


def test_user_search_includes_verified_city_staff_and_caches(node):
    from types import SimpleNamespace

    from node.federation.role_attestations import CityStaffSearch

    good = _remote_director(node, displayname="Anna Direktor")
    forged = {**_remote_director(node, user_id="@t:" + OTHER, role="teacher"), "role": "director"}
    own = sign_attestation(
        user_id="@me:" + SERVER,
        role="director",
        server_name=SERVER,
        school="17",
        key=KEY,
        issued_ts=node.clock.time_ms(),
        lifetime_ms=LIFETIME_MS,
    )
    asked = []

    class Client:
        async def request(self, server, method, path, query=None, timeout=None):
            asked.append((server, path, query["term"]))
            return 200, {"results": [good, forged, own, "junk"]}

    fctx = SimpleNamespace(
        policy=SimpleNamespace(state=SimpleNamespace(signer_name="city.test")),
        server_name=SERVER,
        client=Client(),
        ctx=SimpleNamespace(clock=node.clock),
    )
    search = CityStaffSearch(fctx, node.accounts.attestations)
    items = node.run(search.search("Anna", 10))
    assert items == [{"user_id": "@dir:" + OTHER, "display_name": "Anna Direktor"}]
    assert node.run(search.search("anna", 10)) == items  # cached per term
    assert asked == [("city.test", "/_parta/v1/staff", "anna")]
    assert node.run(search.search("a", 10)) == []  # too short to ask
    assert len(asked) == 1
