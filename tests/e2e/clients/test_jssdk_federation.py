"""matrix-js-sdk across schools: "start chat" with someone at another school, and at Synapse.

Element starts a direct chat with ``createRoom {invite: [user], is_direct: true, preset:
trusted_private_chat}``.  Here two Parta schools and a Synapse server federate on loopback;
each user runs the SDK against their own server.  The invitee's SDK must see the invite as a
DM from the inviter, join it, and both must read each other's messages.  Every warning the
SDK logs about a server response fails the module (``test_no_sdk_warnings``, last).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys

import pytest

sys.path.insert(
    0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "federation")
)
sys.path.insert(
    0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "interop")
)

from nio import AsyncClient, RegisterResponse

from e2e_helpers import DEFAULT_PASSWORD
from fed_harness import FedCluster
from federation_env import FederatedSynapse
from interop_fixtures import interop_ca, synapse_python  # noqa: F401 - pytest fixtures
from jssdk_driver import IN_CI, JsSdk, complaints, unavailable_reason

pytestmark = [pytest.mark.synapse, pytest.mark.timeout(900)]

_REASON = unavailable_reason()
if _REASON and not IN_CI:
    pytest.skip(_REASON, allow_module_level=True)


@pytest.fixture(scope="module")
def servers(synapse_python, interop_ca, tmp_path_factory):  # noqa: F811 - fixtures
    """Two Parta schools and one Synapse, federating with certificates from one test CA."""
    cluster = FedCluster(str(tmp_path_factory.mktemp("js-parta")), interop_ca)
    synapse = FederatedSynapse(
        str(tmp_path_factory.mktemp("js-synapse")), synapse_python, interop_ca
    )
    failures: list[str] = []
    try:
        synapse.start()
        a, b = cluster.create(2)
        yield a, b, synapse
    finally:
        try:
            synapse.stop()
        except Exception as exc:  # noqa: BLE001 - reported with the other failures
            failures.append(f"stopping Synapse: {exc}")
        failures += cluster.stop_all()
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)


@pytest.fixture(scope="module")
def sdk():
    if _REASON:
        pytest.fail(f"matrix-js-sdk unavailable in CI: {_REASON}")
    driver = JsSdk()
    yield driver
    driver.close()


def _synapse_login(synapse) -> dict:
    async def register() -> dict:
        client = AsyncClient(synapse.base_url)
        try:
            resp = await client.register(
                f"sam{secrets.token_hex(3)}", DEFAULT_PASSWORD, device_name="jssdk"
            )
            assert isinstance(resp, RegisterResponse), f"register on Synapse: {resp}"
            return {
                "user_id": resp.user_id,
                "access_token": resp.access_token,
                "device_id": resp.device_id,
            }
        finally:
            await client.close()

    return asyncio.run(register())


@pytest.fixture(scope="module")
def people(servers, sdk) -> dict[str, dict]:
    a, b, synapse = servers
    logins = {
        "anna": (a, a.register(f"anna{secrets.token_hex(3)}")),
        "ben": (b, b.register(f"ben{secrets.token_hex(3)}")),
        "sam": (synapse, _synapse_login(synapse)),
    }
    for name, (server, login) in logins.items():
        sdk.client(name, server.base_url, login)
        assert sdk.start(name)[-1] == "PREPARED"
    return {name: login for name, (_, login) in logins.items()}


def _start_chat(sdk: JsSdk, inviter: str, invitee: str, people: dict) -> None:
    room_id = sdk.call(
        inviter,
        "createRoom",
        {
            "invite": [people[invitee]["user_id"]],
            "is_direct": True,
            "preset": "trusted_private_chat",
        },
    )["room_id"]
    invited = sdk.wait_for(invitee, room_id, membership="invite", timeout_ms=60_000)
    assert invited["is_dm_invite"] == people[inviter]["user_id"]
    sdk.call(invitee, "joinRoom", room_id)
    sdk.wait_for(invitee, room_id, membership="join", timeout_ms=60_000)
    hello = sdk.call(inviter, "sendTextMessage", room_id, "Guten Morgen")["event_id"]
    sdk.wait_for(invitee, room_id, eventId=hello, timeout_ms=60_000)
    back = sdk.call(invitee, "sendTextMessage", room_id, "Guten Morgen zurück")["event_id"]
    sdk.wait_for(inviter, room_id, eventId=back, timeout_ms=60_000)


def test_start_chat_with_another_school(sdk, people):
    _start_chat(sdk, "anna", "ben", people)


def test_start_chat_with_a_synapse_user(sdk, people):
    _start_chat(sdk, "anna", "sam", people)


def test_synapse_user_starts_chat_with_parta_user(sdk, people):
    _start_chat(sdk, "sam", "ben", people)


def test_no_sdk_warnings(sdk, people):
    found = complaints(sdk)
    assert found == [], "\n".join(found)
