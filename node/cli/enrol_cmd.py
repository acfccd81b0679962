"""``parta node enrol GATEWAY_URL --token TOKEN -c CONFIG``: join the city's closed federation.

See ``node.enrolment_client`` for what is checked and stored.  Added to ``parta node`` by
``node_cmd.register``; runs a reactor only for the one HTTPS request.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .main import CliError


def add_enrol_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("enrol", help="enrol this node with the city gateway (one-time token)")
    p.add_argument(
        "-c",
        "--config",
        required=True,
        metavar="CONFIG",
        help="path to config.yaml (written by 'parta node init')",
    )
    p.add_argument("gateway_url", help="the gateway's URL, e.g. https://city.example")
    p.add_argument("--token", required=True, help="the enrolment token from the city office")
    p.add_argument(
        "--ca-file",
        help="PEM CA certificate(s) to trust for the gateway's HTTPS "
        "(default: the system's trust store)",
    )
    p.set_defaults(func=cmd_enrol)


def _run_reactor(make: Any) -> Any:
    from twisted.internet import defer, reactor
    from twisted.python.failure import Failure

    box: list = []

    def start() -> None:
        d = defer.ensureDeferred(make(reactor))
        d.addBoth(box.append)
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(start)
    # IReactorCore does not declare it, the installed reactor's run() takes it.
    reactor.run(installSignalHandlers=True)  # type: ignore[call-arg]
    if not box:
        raise CliError("interrupted")
    if isinstance(box[0], Failure):
        box[0].raiseException()
    return box[0]


def cmd_enrol(args: argparse.Namespace) -> int:
    from federation.roster import roster_key_fingerprint
    from node.clock import wall_clock_ms
    from node.config import load_config
    from node.enrolment_client import EnrolmentClientError, enrol

    config = load_config(args.config)

    def warn(message: str) -> None:
        print(message, file=sys.stderr)

    try:
        result = _run_reactor(
            lambda reactor: enrol(
                reactor,
                server_name=config.server_name,
                data_dir=config.data_dir,
                signing_key_path=config.signing_key_path,
                gateway_url=args.gateway_url,
                token_text=args.token,
                now_ms=wall_clock_ms(),
                ca_file=args.ca_file,
                warn=warn,
            )
        )
    except EnrolmentClientError as exc:
        raise CliError(f"enrolment failed: {exc}") from None
    print(f"Enrolled {result.server_name} with the city gateway {result.signer_name}")
    print(
        f"  roster:      version {result.roster_version} ({result.server_count} servers), "
        f"signature and token fingerprint verified"
    )
    print(
        f"  pinned key:  {result.roster_key.key_id} (fingerprint "
        f"{roster_key_fingerprint(result.roster_key)})"
    )
    print(f"  stored:      {result.roster_key_path}")
    print(f"               {result.roster_path}")
    print(
        "  (re)start the node to enforce the roster: federation is then closed to servers "
        "outside it"
    )
    return 0
