"""Client-server API handlers of the accounts area, one module per spec section.

Each module exposes ``register(router, accounts)`` adding its routes to the client router.
"""

from . import (
    account,
    capabilities,
    deactivate,
    devices,
    login,
    logout,
    profile,
    register,
    versions,
    wellknown,
)

MODULES = (
    versions,
    wellknown,
    capabilities,
    login,
    logout,
    register,
    account,
    deactivate,
    devices,
    profile,
)


def register_all(router, accounts) -> None:
    for module in MODULES:
        module.register(router, accounts)
