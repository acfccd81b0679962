"""Fixtures for the Synapse interop tests (marked ``synapse``; ``pytest -m synapse`` runs them
alone).  Imported by the test modules (no conftest.py here: see
tests/e2e/federation/fed_fixtures.py).

- ``synapse_python`` (session): the interpreter of a venv with ``matrix-synapse`` from PyPI,
  found through ``$PARTA_SYNAPSE_PY`` or a well-known path (bench/federation_env.py
  ``WELL_KNOWN_SYNAPSE_PYTHONS``; ``make test`` installs one with
  deploy/dev/test-deps.sh and sets the variable).  Missing Synapse is a skip on a
  developer machine and a hard failure in CI (``CI=true``).
- ``parta_and_synapse`` (module): one Parta node and one Synapse, each named
  ``localhost:<federation port>`` with a certificate from the session's test CA; both verify
  the other's certificate against that CA.  Synapse allows loopback as a federation target,
  has no key servers and no rate limits.  Both are stopped at module end (Parta must exit 0).
"""

from __future__ import annotations

import os
import sys
from typing import Any, Iterator

import pytest

sys.path.insert(
    0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "federation")
)

from fed_harness import IN_CI, FedCluster, TestCA
from federation_env import FederatedSynapse, find_synapse_python


@pytest.fixture(scope="session")
def synapse_python() -> str:
    python, how = find_synapse_python()
    if python is None:
        if IN_CI:
            pytest.fail(
                f"Synapse is required for the interop tests in CI but was not found: "
                f"{how} (`make test` installs matrix-synapse and sets PARTA_SYNAPSE_PY)",
                pytrace=False,
            )
        pytest.skip(f"Synapse not installed: {how}")
    return python


@pytest.fixture(scope="session")
def interop_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(str(tmp_path_factory.mktemp("interop-ca")))


@pytest.fixture(scope="module")
def parta_and_synapse(
    synapse_python: str, interop_ca: TestCA, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    cluster = FedCluster(str(tmp_path_factory.mktemp("interop-parta")), interop_ca)
    synapse = FederatedSynapse(
        str(tmp_path_factory.mktemp("interop-synapse")),
        synapse_python,
        interop_ca,
        log_level="INFO",
    )
    failures: list[str] = []
    try:
        synapse.start()
        (parta,) = cluster.create(1)
        yield parta, synapse
    finally:
        try:
            synapse.stop()
        except Exception as exc:  # noqa: BLE001 - reported with the other failures
            failures.append(f"stopping Synapse: {exc}")
        failures += cluster.stop_all()
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)
