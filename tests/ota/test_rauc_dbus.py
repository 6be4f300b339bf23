"""pycam_ota.rauc's D-Bus protocol handling (jeepney) against a stand-in RAUC service on a private bus.

RAUC cannot install on the host, so a small service here answers de.pengutronix.rauc.Installer's
methods with the signatures of RAUC 1.8's introspection XML (InstallBundle sa{sv}, Progress (isi),
Completed i, LastError, GetSlotStatus a(sa{sv}), GetPrimary) on a private dbus-daemon. The real RAUC
is exercised by tests/target/test_ota_hawkbit.py in QEMU.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from jeepney import DBusAddress, HeaderFields, MessageType, new_error, new_method_return, new_signal
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection
from pycam_ota.rauc import Rauc

IFACE = "de.pengutronix.rauc.Installer"


@pytest.fixture
def bus() -> Iterator[str]:
    if shutil.which("dbus-daemon") is None:
        pytest.skip("dbus-daemon is not installed")
    proc = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1"], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    address = proc.stdout.readline().strip()
    old = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    os.environ["DBUS_SESSION_BUS_ADDRESS"] = address
    yield address
    proc.terminate()
    proc.wait(10)
    if old is None:
        os.environ.pop("DBUS_SESSION_BUS_ADDRESS", None)
    else:
        os.environ["DBUS_SESSION_BUS_ADDRESS"] = old


class FakeRaucService(threading.Thread):
    """Installs nothing: a bundle path containing 'bad' fails with a LastError, anything else succeeds."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.conn = open_dbus_connection(bus="SESSION")
        self.conn.send_and_get_reply(message_bus.RequestName("de.pengutronix.rauc"))
        self.last_error = ""
        self.installed: list[tuple[str, dict[str, Any]]] = []
        self.stop = False

    def emit(self, member: str, signature: str, body: tuple[Any, ...], iface: str = IFACE) -> None:
        self.conn.send(new_signal(DBusAddress("/", interface=iface), member, signature, body))

    def run(self) -> None:
        while not self.stop:
            try:
                msg = self.conn.receive(timeout=0.5)
            except TimeoutError:
                continue
            if msg.header.message_type != MessageType.method_call:
                continue
            member = msg.header.fields[HeaderFields.member]
            if member == "InstallBundle":
                source, args = msg.body
                self.installed.append((source, args))
                self.conn.send(new_method_return(msg))
                for pct, text in ((0, "Installing"), (40, "Checking bundle"), (100, "Installing done.")):
                    self.emit("PropertiesChanged", "sa{sv}as",
                              (IFACE, {"Progress": ("(isi)", (pct, text, 1))}, []),
                              iface="org.freedesktop.DBus.Properties")
                failed = "bad" in source
                self.last_error = "Failed to verify bundle: signature mismatch" if failed else ""
                self.emit("Completed", "i", (1 if failed else 0,))
            elif member == "Get":
                _iface, name = msg.body
                values = {"LastError": self.last_error, "BootSlot": "A", "Compatible": "pycam-qemuarm64"}
                if name in values:
                    self.conn.send(new_method_return(msg, "v", (("s", values[name]),)))
                else:
                    self.conn.send(new_error(msg, "org.freedesktop.DBus.Error.UnknownProperty", "s", (name,)))
            elif member == "GetSlotStatus":
                slots = [("rootfs.0", {"bootname": ("s", "A"), "state": ("s", "booted")}),
                         ("rootfs.1", {"bootname": ("s", "B"), "state": ("s", "inactive")})]
                self.conn.send(new_method_return(msg, "a(sa{sv})", (slots,)))
            elif member == "GetPrimary":
                self.conn.send(new_method_return(msg, "s", ("rootfs.1",)))


@pytest.fixture
def rauc_service(bus: str) -> Iterator[FakeRaucService]:
    service = FakeRaucService()
    service.start()
    yield service
    service.stop = True
    service.join(5)
    service.conn.close()


def test_install_reports_progress_and_completes(rauc_service: FakeRaucService) -> None:
    rauc = Rauc(bus="SESSION")
    seen: list[tuple[int, str]] = []
    assert rauc.install("/data/pycam/ota/bundle.raucb", {"tls-no-verify": ("b", True)},
                        lambda pct, text: seen.append((pct, text))) is None
    assert [p for p, _ in seen] == [0, 40, 100]
    assert rauc_service.installed == [("/data/pycam/ota/bundle.raucb", {"tls-no-verify": ("b", True)})]
    assert rauc.prop("BootSlot") == "A" and rauc.prop("Compatible") == "pycam-qemuarm64"
    assert rauc.bootname(rauc.primary()) == "B"
    rauc.close()


def test_failed_install_returns_last_error(rauc_service: FakeRaucService) -> None:
    rauc = Rauc(bus="SESSION")
    assert rauc.install("/data/bad.raucb", {}) == "Failed to verify bundle: signature mismatch"
    rauc.close()
