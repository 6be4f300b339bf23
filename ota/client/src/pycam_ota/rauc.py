"""RAUC's D-Bus API (de.pengutronix.rauc.Installer, RAUC 1.8) through jeepney.

InstallBundle is asynchronous: the Completed signal ends it, Progress changes are
PropertiesChanged signals, and LastError holds the reason of a failure.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from jeepney import DBusAddress, MatchRule, Properties, new_method_call
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import DBusConnection, open_dbus_connection

log = logging.getLogger("pycam-ota")
RAUC = DBusAddress("/", bus_name="de.pengutronix.rauc", interface="de.pengutronix.rauc.Installer")


class RaucError(Exception):
    pass


def _unvariant(value: Any) -> Any:
    """jeepney gives variants as (signature, value)."""
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
        return value[1]
    return value


class Rauc:
    def __init__(self, bus: str = "SYSTEM") -> None:
        self.bus = bus
        self._conn: DBusConnection | None = None

    @property
    def conn(self) -> DBusConnection:
        if self._conn is None:
            self._conn = open_dbus_connection(bus=self.bus)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _call(self, method: str, signature: str | None = None, body: tuple[Any, ...] = ()) -> tuple[Any, ...]:
        msg = new_method_call(RAUC, method, signature, body)
        reply = self.conn.send_and_get_reply(msg, timeout=60)
        if reply.header.message_type.name == "error":
            raise RaucError(f"RAUC {method}: {reply.body[0] if reply.body else reply.header}")
        return tuple(reply.body)

    def prop(self, name: str) -> Any:
        reply = self.conn.send_and_get_reply(Properties(RAUC).get(name), timeout=30)
        if reply.header.message_type.name == "error":
            raise RaucError(f"RAUC property {name}: {reply.body[0] if reply.body else reply.header}")
        return _unvariant(reply.body[0])

    def slot_status(self) -> dict[str, dict[str, Any]]:
        (slots,) = self._call("GetSlotStatus")
        return {name: {k: _unvariant(v) for k, v in info.items()} for name, info in slots}

    def primary(self) -> str:
        return str(self._call("GetPrimary")[0])

    def bootname(self, slot: str) -> str:
        return str(self.slot_status().get(slot, {}).get("bootname", ""))

    def install(self, source: str, args: dict[str, tuple[str, Any]],
                progress: Callable[[int, str], None] | None = None, timeout: float = 3600) -> str | None:
        """Install and wait; None on success, else RAUC's LastError."""
        completed = MatchRule(type="signal", interface=RAUC.interface, member="Completed", path="/")
        changed = MatchRule(type="signal", interface="org.freedesktop.DBus.Properties",
                            member="PropertiesChanged", path="/")
        for rule in (completed, changed):
            self.conn.send_and_get_reply(message_bus.AddMatch(rule), timeout=30)
        with self.conn.filter(completed) as done, self.conn.filter(changed, bufsize=64) as props:
            self._call("InstallBundle", "sa{sv}", (source, args))
            deadline = time.monotonic() + timeout
            while True:
                if time.monotonic() > deadline:
                    raise RaucError(f"RAUC did not complete the installation within {timeout:.0f} s")
                try:
                    msg = self.conn.recv_until_filtered(done, timeout=1.0)
                except TimeoutError:
                    msg = None
                while props:
                    interface, values = props.popleft().body[:2]
                    if interface == RAUC.interface and "Progress" in values and progress:
                        pct, text, _depth = _unvariant(values["Progress"])
                        progress(int(pct), str(text))
                if msg is not None:
                    result = int(msg.body[0])
                    if result == 0:
                        return None
                    return str(self.prop("LastError")) or f"installation failed (result {result})"
