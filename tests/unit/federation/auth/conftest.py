"""Fixtures for the auth rule tests: ``rv`` runs a test once per room version 10, 11, 12."""

import pytest

from federation.room_versions import V10, V11, V12


@pytest.fixture(params=[V10, V11, V12], ids=lambda v: f"v{v.identifier}")
def rv(request):
    return request.param
