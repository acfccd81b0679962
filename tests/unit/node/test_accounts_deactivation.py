"""Account deactivation (client-server API "Account deactivation"): the endpoint over the
real ``ApiResource`` with a real ``RoomService`` on the same database, and ``parta node user
deactivate`` on the database of a node that keeps running."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from accounts_support import PASSWORD, SERVER, V3, Node
from node.accounts import admin
from node.accounts.deactivation import make_room_leaver
from rooms_support import StepClock, make_service


@pytest.fixture
def node(monkeypatch):
    n = Node(monkeypatch)
    n.rooms = make_service(db=n.db, accounts=n.accounts, clock=StepClock())
    n.accounts.room_leaver = make_room_leaver(n.rooms)
    for name in ("teacher", "pupil", "other"):
        n.add_user(name, display_name=name.capitalize())
    return n


def uid(name):
    return f"@{name}:{SERVER}"


def _deactivate(node, user, token=None, password=PASSWORD, ip="10.0.0.1", **extra):
    status, body = node.call("POST", V3 + "/account/deactivate", extra, token=token, ip=ip)
    assert status == 401, body
    return node.call(
        "POST",
        V3 + "/account/deactivate",
        {
            **extra,
            "auth": {
                "type": "m.login.password",
                "session": body["session"],
                "password": password,
                "identifier": {"type": "m.id.user", "user": user},
            },
        },
        token=token,
        ip=ip,
    )


def _rooms(node):
    rooms = node.rooms
    joined = node.run(rooms.create_room(uid("teacher"), {"preset": "public_chat"}))
    node.run(rooms.update_membership(uid("pupil"), joined, uid("pupil"), "join"))
    invited = node.run(rooms.create_room(uid("teacher"), {"preset": "private_chat"}))
    node.run(rooms.update_membership(uid("teacher"), invited, uid("pupil"), "invite"))
    return joined, invited


def test_deactivate_revokes_tokens_at_once_and_leaves_rooms(node):
    joined, invited = _rooms(node)
    token = node.token_for("pupil")
    second = node.token_for("pupil", device_id="TABLET")
    other = node.token_for("other")
    assert node.call("GET", V3 + "/account/whoami", token=second)[0] == 200  # cached
    status, body = _deactivate(node, "pupil", token=token)
    assert (status, body) == (200, {"id_server_unbind_result": "success"})
    for old in (token, second):
        status, err = node.call("GET", V3 + "/account/whoami", token=old)
        assert (status, err["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    assert node.run(node.accounts.list_devices(uid("pupil"))) == []
    status, err = node.login("pupil")
    assert (status, err["errcode"]) == (403, "M_USER_DEACTIVATED")
    status, err = node.login("pupil", "not the password")
    assert (status, err["errcode"]) == (403, "M_FORBIDDEN")
    for room_id in (joined, invited):
        assert node.run(node.rooms.get_room(room_id)).membership(uid("pupil")) == "leave"
    assert node.run(node.rooms.joined_room_ids(uid("teacher"))) == sorted([joined, invited])
    # other users are not affected
    assert node.call("GET", V3 + "/account/whoami", token=other)[0] == 200
    assert node.login("other")[0] == 200


def test_deactivate_without_token_and_with_erase(node):
    me = quote(uid("pupil"))
    status, body = _deactivate(node, "pupil", erase=True, id_server="id.example")
    assert status == 200
    status, profile = node.call("GET", f"{V3}/profile/{me}")
    assert (status, profile) == (200, {})
    status, profile = node.call("GET", f"{V3}/profile/{quote(uid('other'))}")
    assert profile == {"displayname": "Other"}


def test_deactivate_needs_the_right_password_and_checks_the_body(node):
    token = node.token_for("pupil")
    status, body = _deactivate(node, "pupil", token=token, password="wrong guess")
    assert status == 401 and body["errcode"] == "M_FORBIDDEN"
    assert node.call("GET", V3 + "/account/whoami", token=token)[0] == 200
    status, body = _deactivate(node, "other", token=token)  # someone else's password
    assert status == 401
    assert node.login("other")[0] == 200
    status, body = node.call("POST", V3 + "/account/deactivate", {"erase": "yes"}, token=token)
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")


def test_deactivate_is_locked_out_with_the_other_password_checks(node):
    for i in range(12):
        node.login("pupil", "wrong guess", ip=f"10.9.0.{i}")
    status, body = _deactivate(node, "pupil", ip="10.9.1.1")
    assert (status, body["errcode"]) == (429, "M_LIMIT_EXCEEDED")
    assert node.login("pupil", ip="10.9.1.1")[0] == 429  # still locked, not deactivated
    node.reactor.advance(3600)
    assert node.login("pupil")[0] == 200


def test_cli_deactivation_reaches_the_running_node(node):
    joined, _ = _rooms(node)
    token = node.token_for("pupil")
    assert node.call("GET", V3 + "/account/whoami", token=token)[0] == 200  # cached
    node.reactor.advance(11)  # the start-up sweep has run
    with node.db.engine.begin() as conn:  # what the CLI does, next to the node
        assert admin.deactivate_user(conn, server_name=SERVER, user="pupil", erase=False) == uid(
            "pupil"
        )
    node.reactor.advance(11)
    status, err = node.call("GET", V3 + "/account/whoami", token=token)
    assert (status, err["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    assert node.run(node.rooms.get_room(joined)).membership(uid("pupil")) == "leave"
    assert node.login("pupil")[1]["errcode"] == "M_USER_DEACTIVATED"


def test_startup_sweep_leaves_rooms_of_users_deactivated_while_stopped(node):
    joined, _ = _rooms(node)
    with node.db.engine.begin() as conn:
        admin.deactivate_user(conn, server_name=SERVER, user=uid("pupil"), erase=True)
    node.reactor.advance(11)
    assert node.run(node.rooms.get_room(joined)).membership(uid("pupil")) == "leave"


def test_admin_refusals(node):
    with node.db.engine.begin() as conn:
        for user, message in (
            ("nobody", "no such user"),
            ("@x:elsewhere", "not a user of"),
            ("a\x00b", "not a user of"),
        ):
            with pytest.raises(admin.AdminError, match=message):
                admin.deactivate_user(conn, server_name=SERVER, user=user, erase=False)
        admin.deactivate_user(conn, server_name=SERVER, user="other", erase=False)
        with pytest.raises(admin.AdminError, match="already deactivated"):
            admin.deactivate_user(conn, server_name=SERVER, user="other", erase=False)


def test_cli_user_deactivate_command(tmp_path, capsys):
    from node.cli.main import main

    data = tmp_path / "node"
    assert (
        main(["node", "init", "--server-name", SERVER, "--data-dir", str(data), "--port", "0"]) == 0
    )
    config = str(data / "config.yaml")
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    assert (
        main(
            [
                "node",
                "user",
                "add",
                "lena",
                "--role",
                "pupil",
                "--password-file",
                str(pw),
                "-c",
                config,
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["node", "user", "deactivate", "lena", "--erase", "-c", config]) == 0
    out = capsys.readouterr().out
    assert f"Deactivated {uid('lena')} and cleared its profile" in out
    assert main(["node", "user", "list", "-c", config]) == 0
    assert "deactivated" in capsys.readouterr().out
    assert main(["node", "user", "deactivate", "lena", "-c", config]) != 0
    assert "already deactivated" in capsys.readouterr().err
