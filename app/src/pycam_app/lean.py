"""Keeping OpenSSL out of a plain-HTTP process, and letting it back in when a certificate arrives.

A plain-HTTP service makes `import ssl` and `_hashlib` fail, as on a Python built without them (README,
Memory; cli._lean_process decides when). A device provisioned while the service runs then needs TLS
without a restart (`systemctl reload`, or a certificate written while the service was still starting):
`allow_openssl` removes the block, imports ssl, and gives the modules that were imported during the
block (asyncio's sslproto, selector_events and base_events, aiohttp's client helpers) the module they
fell back from (`try: import ssl / except ImportError: ssl = None`). The HTTP client modules of aiohttp,
never used by the service, are left as they are.
"""

from __future__ import annotations

import importlib
import sys
import types

BLOCKED = ("ssl", "_hashlib")
# Modules that also derive names from ssl when imported (asyncio.sslproto: SSLAgainErrors, used in every
# server-side handshake) are executed again. Only such leaf modules: others (asyncio.base_events,
# selector_events) use ssl at call time only, and re-executing them would give the running event loop's
# classes new twins.
DERIVED = {"asyncio.sslproto"}


def block_openssl() -> None:
    for name in BLOCKED:
        if name not in sys.modules:
            sys.modules[name] = None  # type: ignore[assignment]


def openssl_blocked() -> bool:
    return any(name in sys.modules and sys.modules[name] is None for name in BLOCKED)


def allow_openssl() -> types.ModuleType:
    """Undo block_openssl (a no-op when nothing is blocked); returns the ssl module."""
    for name in BLOCKED:
        if name in sys.modules and sys.modules[name] is None:
            del sys.modules[name]
    import ssl

    for module in list(sys.modules.values()):
        # __dict__, not getattr: a module's lazy __getattr__ must not run (or import) anything here
        namespace = getattr(module, "__dict__", None)
        if isinstance(namespace, dict) and "ssl" in namespace and namespace["ssl"] is None:
            namespace["ssl"] = ssl
            if module.__name__ in DERIVED:
                importlib.reload(module)
    return ssl
