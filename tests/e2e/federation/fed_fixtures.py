"""Fixtures for the federation e2e tests (harness: fed_harness.py).

Test modules import them (``from fed_fixtures import fed_ca, fed_cluster, fake_server``):
this directory has no conftest.py because tests/e2e/test_demo.py does ``from conftest
import ...``, which a nested conftest.py (imported later under the same module name) breaks.

- ``fed_ca`` (session): the test CA that signs every server's federation certificate.
- ``fed_cluster`` (module): ``fed_cluster.create(n, named=False, backends=None, **config)``
  starts ``n`` federating nodes; at module end every node gets SIGTERM and must exit 0.
- ``fake_server`` (module): an in-process fake homeserver with its own signing key and
  HTTPS key endpoint (bench/federation_env.py ``FakeServer``).

Every test under tests/e2e is marked ``e2e`` by tests/e2e/conftest.py.
"""

from __future__ import annotations

import os
import sys
from typing import Iterator

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fed_harness import FakeServer, FedCluster, TestCA


@pytest.fixture(scope="session")
def fed_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(str(tmp_path_factory.mktemp("fed-ca")))


@pytest.fixture(scope="module")
def fed_cluster(
    fed_ca: TestCA, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FedCluster]:
    pg = None
    if getattr(request.module, "USES_POSTGRES", False):
        pg = request.getfixturevalue("pg_server")
    cluster = FedCluster(str(tmp_path_factory.mktemp("fed")), fed_ca, pg)
    yield cluster
    failures = cluster.stop_all()
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)


@pytest.fixture(scope="module")
def fake_server(fed_ca: TestCA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeServer]:
    fake = FakeServer(fed_ca, str(tmp_path_factory.mktemp("fake-hs"))).start()
    yield fake
    fake.stop()
