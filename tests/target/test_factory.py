"""The factory line end to end on QEMU devices booted from the built image, driven through labgrid.

Three fresh devices boot in parallel. Two stations (separate database connections to one real
PostgreSQL server started here; SQLite if PostgreSQL is not installed) provision and self-test two
of them at the same time; the identity is then checked on the device, in the certificate the app
serves over HTTPS (through a forwarded port, verified against the factory CA) and in the OTA
client's configuration. Refusals: an already provisioned device, a CA chain that does not match the
certificate, a duplicate DID. The third device loses power in the middle of writing its identity
(QEMU killed while the helper is stopped between files), boots without an identity, and is
provisioned again with a new DID while the interrupted one stays void.
"""

from __future__ import annotations

import configparser
import dataclasses
import json
import os
import signal
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from pycam.definition import Product
from pycam.errors import PycamError
from pycam.factory.ca import FactoryCA, init_ca
from pycam.factory.config import load_line
from pycam.factory.db import StationDB
from pycam.factory.lgthreads import thread_safe_steps
from pycam.factory.netserver import NetServer
from pycam.factory.station import Outcome, Station
from tests.factory.pg import pg_bin, postgres_server
from tests.target.device import rauc_status, sh, slot, wait_unit_done
from tests.target.strategy import Status

NOT_APPLICABLE_ON_QEMU = {"audio", "button", "ir", "ptz"}
PROVISIONED: dict[str, Outcome] = {}


@dataclasses.dataclass
class Line:
    product: Product
    db_url: str
    ca: FactoryCA
    ca_dir: Path
    out: Path
    net: NetServer
    events: list[tuple[float, str, str, str, str]]

    def station(self, name: str, ca: FactoryCA | None = None) -> Station:
        base = load_line()
        # Emulated devices on a shared 2-core host measure a fraction of real hardware's I/O; the
        # line's seed-002 limits (10 Mbit/s, 10 MB/s) are for boards. Lower, not off: a broken path
        # (no data, a stalled disk) still fails.
        limits = dataclasses.replace(base.limits, network_min_mbit_s=1.0, storage_min_mb_s=1.0)
        line = dataclasses.replace(base, station=name, database=self.db_url, output=self.out, ca=self.ca_dir,
                                   limits=limits)

        def progress(device: str, step: str, state: str, detail: str) -> None:
            self.events.append((time.monotonic(), device, step, state, detail))
            print(f"{name} {device:10s} {step:9s} {state:5s} {detail}", flush=True)

        return Station(line, StationDB(self.db_url), ca or self.ca, hardware=self.product.board.hardware,
                       version=self.product.ota.version, net=self.net, progress=progress)


@pytest.fixture(scope="module")
def line(product: Product, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Line]:
    ca_dir = init_ca(tmp_path_factory.mktemp("factory-ca") / "ca")
    net = NetServer()
    out = tmp_path_factory.mktemp("factory-out")
    try:
        if pg_bin() is not None:
            with postgres_server(Path(tempfile.mkdtemp(prefix="pycam-pg-"))) as url:
                yield Line(product, url, FactoryCA.load(ca_dir), ca_dir, out, net, [])
        else:
            yield Line(product, str(out / "station.db"), FactoryCA.load(ca_dir), ca_dir, out, net, [])
    finally:
        net.close()


@pytest.fixture(scope="module")
def fleet(devices: Any) -> Iterator[dict[str, Any]]:
    """Three fresh devices, booted in parallel (boot time is not the station's)."""
    thread_safe_steps()
    strategies = {name: devices.new(f"factory-{name}") for name in ("a", "b", "c")}
    errors: list[BaseException] = []

    def boot(strategy: Any) -> None:
        try:
            strategy.transition("shell")
        except BaseException as e:  # reported below, after every boot ended
            errors.append(e)

    threads = [threading.Thread(target=boot, args=(s,)) for s in strategies.values()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    yield strategies
    for s in strategies.values():
        s.transition("off")


def allocations(line: Line) -> list[Any]:
    return StationDB(line.db_url).allocations()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def power_cut(strategy: Any) -> None:
    """Kill QEMU (the device loses power at once; no shutdown, no flush from the guest)."""
    q = strategy.qemu
    os.kill(q._child.pid, signal.SIGKILL)
    q._child.wait()
    # labgrid's off() would ask QEMU over QMP, which died with it: leave the state off() leaves
    q._child = None
    q.status = 0
    strategy.target.deactivate(strategy.shell)
    strategy.status = Status.off


class CutPowerWhenPaused:
    """The station's console, except that during the commit it waits for the device helper to stop at
    its pause point (between the files of the new generation) and then cuts the power."""

    def __init__(self, strategy: Any, point: str = "files") -> None:
        self.strategy = strategy
        self.point = point
        self.cut = False

    def run(self, cmd: str, timeout: float = 60) -> tuple[list[str], list[str], int]:
        if self.cut:
            raise ConnectionError("device is off (power cut)")
        if "factory-provision commit" not in cmd:
            return self.strategy.shell.run(cmd, timeout=timeout)
        self.strategy.shell.console.sendline(cmd)
        self.strategy.shell.console.expect(f"PYCAM-FACTORY-PAUSED {self.point}", timeout=180)
        power_cut(self.strategy)
        self.cut = True
        raise ConnectionError("console lost: the device lost power during the commit")


def test_concurrent_stations_provision_and_self_test(fleet: dict[str, Any], line: Line) -> None:
    stations = {"a": line.station("station-1"), "b": line.station("station-2")}
    outcomes: dict[str, Outcome] = {}

    def work(name: str) -> None:
        outcomes[name] = stations[name].provision(f"factory-{name}", fleet[name].shell)

    threads = [threading.Thread(target=work, args=(n,)) for n in stations]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    PROVISIONED.update({name: out for name, out in outcomes.items() if out.outcome == "pass"})
    for name, out in outcomes.items():
        table = "\n".join(f"  {r.test:9s} {r.verdict:4s} {r.value} | {r.limit} | {r.detail}" for r in out.results)
        print(f"factory-{name}: {out.outcome} {out.did} {out.mac} in {out.seconds} s ({out.steps})\n{table}")
        assert out.outcome == "pass", f"{out.failed_step}: {out.error}\n{table}"
        verdicts = {r.test: r.verdict for r in out.results}
        assert {t for t, v in verdicts.items() if v == "n/a"} == NOT_APPLICABLE_ON_QEMU
        for r in out.results:
            if r.verdict != "n/a":
                assert r.value and r.limit, r  # every measured result carries its value and limit
        assert {"video", "tls", "network", "storage", "watchdog", "firmware", "clock"} <= set(verdicts)
        assert (out.report_dir / "report.html").exists() and (out.report_dir / "label.svg").exists()
    assert outcomes["a"].did != outcomes["b"].did and outcomes["a"].mac != outcomes["b"].mac
    allocs = {a.did: a for a in allocations(line)}
    assert {allocs[o.did].station for o in outcomes.values()} == {"station-1", "station-2"}
    assert all(allocs[o.did].status == "provisioned" for o in outcomes.values())
    # progress was reported per device and per step
    seen = {(dev, step) for _, dev, step, state, _ in line.events if state == "done"}
    for name in ("a", "b"):
        for step in ("connect", "keygen", "allocate", "sign", "write", "apply", "selftest", "report"):
            assert (f"factory-{name}", step) in seen


def test_identity_on_device_in_https_certificate_and_ota_config(fleet: dict[str, Any], line: Line) -> None:
    dut = fleet["a"]
    if "a" not in PROVISIONED:
        pytest.skip("device a was not provisioned (see the previous test)")
    out = PROVISIONED["a"]
    ident = json.loads(sh(dut.shell, "cat /factory/identity.json"))
    assert ident["did"] == out.did and ident["serial"] == out.did and ident["mac"] == out.mac
    assert ident["station"] == "station-1" and ident["admin_password_hash"].startswith("pbkdf2_sha256$")
    assert sh(dut.shell, "hostname").strip() == out.did.lower()
    assert out.mac in sh(dut.shell, "cat /sys/class/net/*/address").split()
    assert sh(dut.shell, "stat -L -c '%a %U:%G' /factory/device.key").strip() == "640 root:pycam"
    assert " ro," in sh(dut.shell, "grep ' /factory ' /proc/mounts") + ","
    # the private key never left the device: the certificate's key is the one on the device
    pub = sh(dut.shell, "openssl pkey -in /factory/device.key -pubout")
    cert = x509.load_pem_x509_certificate(out.cert_pem.encode())
    from cryptography.hazmat.primitives import serialization

    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    assert cert.public_key().public_bytes(serialization.Encoding.PEM, spki).decode().strip() == pub.strip()

    # HTTPS from the host through a forwarded port, verified against the factory CA and the DID's hostname
    port = free_port()
    # the new MAC got a new DHCP lease from QEMU's user network: forward to the address it has now
    address = sh(dut.shell, "ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1 | head -n 1").strip()
    dut.qemu.add_port_forward("tcp", "127.0.0.1", port, address, 8080)
    ctx = ssl.create_default_context(cafile=str(line.ca_dir / "ca.crt"))
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw, \
            ctx.wrap_socket(raw, server_hostname=out.did.lower()) as tls:
        served = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))
    assert served.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == out.did
    assert served.serial_number == cert.serial_number

    # the app authenticates with the provisioned admin password and reports the DID as its serial
    import base64
    import urllib.request

    req = urllib.request.Request(f"https://127.0.0.1:{port}/api/properties")
    req.add_header("Authorization", "Basic " + base64.b64encode(f"admin:{out.admin_password}".encode()).decode())
    loose = ssl.create_default_context(cafile=str(line.ca_dir / "ca.crt"))
    loose.check_hostname = False  # 127.0.0.1 is not the device's name; the chain is still verified
    with urllib.request.urlopen(req, context=loose, timeout=30) as r:
        assert out.did in r.read().decode()

    # the app took the identity by a reload, not a restart: its process predates the apply step
    app_started = int(sh(dut.shell, "systemctl show -p ExecMainStartTimestampMonotonic --value pycam-app"))
    identity_applied = int(sh(dut.shell, "systemctl show -p ActiveEnterTimestampMonotonic --value "
                                         "pycam-factory-identity"))
    assert 0 < app_started < identity_applied
    assert "reloaded: " in sh(dut.shell, "journalctl -b -u pycam-app -o cat --no-pager | grep 'reloaded: '")

    # the health gate, waiting since boot, saw the re-provisioned (HTTPS) app and confirmed the slot
    assert wait_unit_done(dut.shell, "pycam-health-gate.service", 400) == "active"
    assert slot(rauc_status(dut.shell), "rootfs.0")["boot_status"] == "good"

    # the OTA client's configuration names the device
    conf = configparser.ConfigParser()
    conf.read_string(sh(dut.shell, "cat /factory/ota/hawkbit.conf"))
    assert conf["client"]["target_name"] == out.did
    assert len(conf["client"]["auth_token"]) == 32 and conf["device"]["mac_address"] == out.mac

    # and at the next boot the identity applies itself before the network starts
    dut.transition("off")
    dut.transition("shell")
    assert sh(dut.shell, "hostname").strip() == out.did.lower()
    assert out.mac in sh(dut.shell, "cat /sys/class/net/*/address").split()
    assert "factory-identity: hostname" in sh(dut.shell, "journalctl -b -u pycam-factory-identity --no-pager")
    applied = int(sh(dut.shell, "systemctl show -p ActiveEnterTimestampMonotonic --value pycam-factory-identity"))
    networkd = int(sh(dut.shell, "systemctl show -p InactiveExitTimestampMonotonic --value systemd-networkd"))
    assert 0 < applied <= networkd  # the MAC was set before networkd started (its DHCP lease is for that MAC)


def test_refusals_already_provisioned_and_bad_ca(fleet: dict[str, Any], line: Line, tmp_path: Path) -> None:
    dut = fleet["a"]
    before = allocations(line)
    again = line.station("station-1").provision("factory-a", dut.shell)
    assert again.outcome == "refused" and again.failed_step == "connect" and "already provisioned" in again.error
    assert allocations(line) == before  # a refusal allocates nothing

    # a station whose CA is not usable refuses before any device is touched
    broken = tmp_path / "broken-ca"
    broken.mkdir()
    (broken / "ca.crt").write_bytes((line.ca_dir / "ca.crt").read_bytes())
    (broken / "ca.key").write_bytes((init_ca(tmp_path / "other") / "ca.key").read_bytes())
    with pytest.raises(PycamError, match="key does not match"):
        FactoryCA.load(broken)

    # a station sending a CA chain that does not match what it signed with: the device refuses,
    # keeps its identity, and the explicit re-provisioning attempt is audited
    stranger = FactoryCA.load(init_ca(tmp_path / "stranger"))
    mixed = dataclasses.replace(line.ca, chain_pem=stranger.chain_pem)
    old = json.loads(sh(dut.shell, "cat /factory/identity.json"))
    out = line.station("station-1", ca=mixed).provision("factory-a", dut.shell, reprovision=True,
                                                        reason="test: wrong chain")
    assert out.outcome == "refused" and out.failed_step == "write", out.error
    assert "does not verify against the CA chain" in out.error
    assert json.loads(sh(dut.shell, "cat /factory/identity.json")) == old
    actions = [(a["action"], a["did"]) for a in StationDB(line.db_url).audit_log()]
    assert ("reprovision", old["did"]) in actions and ("reprovision-failed", old["did"]) in actions
    assert StationDB(line.db_url).allocation(old["did"]).status == "provisioned"


def test_power_cut_duplicate_did_and_reprovisioning(fleet: dict[str, Any], line: Line) -> None:
    dut = fleet["c"]
    station = line.station("station-1")
    sh(dut.shell, "mkdir -p /run/pycam-factory && echo files > /run/pycam-factory/pause-at")
    cutter = CutPowerWhenPaused(dut)
    cut = station.provision("factory-c", cutter, run_selftest=False)
    assert cutter.cut and cut.outcome == "error" and cut.failed_step == "write"
    voided = StationDB(line.db_url).allocation(cut.did)
    assert voided is not None and voided.status == "void" and "lost power" in voided.reason

    dut.transition("shell")  # power back on: boots normally
    status = json.loads(sh(dut.shell, "/usr/lib/pycam/factory-provision status").split(" ", 1)[1])
    assert status["provisioned"] is False and status["stale"] == [".gen-1.tmp"]
    assert sh(dut.shell, "test -e /factory/identity.json && echo yes || echo no").strip() == "no"

    # duplicate DID: the line's counter moved back (a restored database) - refused, nothing written
    db = StationDB(line.db_url)
    counter = next(r for r in db._rows("SELECT name, next FROM counters") if r[0].startswith("did:"))
    db._run("UPDATE counters SET next = next - 1 WHERE name = ?", (counter[0],))
    before = allocations(line)
    dup = station.provision("factory-c", dut.shell, run_selftest=False)
    assert dup.outcome == "error" and dup.failed_step == "allocate" and "duplicate identity refused" in dup.error
    assert allocations(line) == before
    db._run("UPDATE counters SET next = next + 1 WHERE name = ?", (counter[0],))

    # re-provisionable: a new DID; the interrupted one stays void and is on no device
    again = station.provision("factory-c", dut.shell, run_selftest=False)
    assert again.outcome == "pass", again.error
    assert again.did != cut.did and again.mac != cut.mac
    assert json.loads(sh(dut.shell, "cat /factory/identity.json"))["did"] == again.did
    assert sh(dut.shell, "ls -a /factory | grep -c '^\\.gen-' || true").strip() == "0"
    dids = [a.did for a in allocations(line)]
    macs = [a.mac for a in allocations(line)]
    assert len(dids) == len(set(dids)) and len(macs) == len(set(macs))
    assert StationDB(line.db_url).allocation(cut.did).status == "void"


@pytest.mark.soak
@pytest.mark.parametrize("point", ["generation", "switched"])
def test_soak_power_cut_at_each_point(devices: Any, line: Line, point: str) -> None:
    """Power cut after the generation is complete but before the switch (no identity), and right
    after the switch (the complete identity, which the station could not confirm and voided: the
    device is then refused as provisioned and gets a new identity only when re-provisioned)."""
    thread_safe_steps()
    dut = devices.new(f"factory-cut-{point}")
    dut.transition("shell")
    station = line.station("station-1")
    sh(dut.shell, f"mkdir -p /run/pycam-factory && echo {point} > /run/pycam-factory/pause-at")
    cutter = CutPowerWhenPaused(dut, point)
    cut = station.provision(f"factory-cut-{point}", cutter, run_selftest=False)
    assert cutter.cut and cut.outcome == "error" and StationDB(line.db_url).allocation(cut.did).status == "void"
    dut.transition("shell")
    status = json.loads(sh(dut.shell, "/usr/lib/pycam/factory-provision status").split(" ", 1)[1])
    if point == "generation":
        assert status["provisioned"] is False
        again = station.provision(f"factory-cut-{point}", dut.shell, run_selftest=False)
    else:
        assert status["provisioned"] is True and status["did"] == cut.did
        refused = station.provision(f"factory-cut-{point}", dut.shell, run_selftest=False)
        assert refused.outcome == "refused"
        again = station.provision(f"factory-cut-{point}", dut.shell, run_selftest=False, reprovision=True,
                                  reason="identity of a voided allocation after a power cut")
    assert again.outcome == "pass" and again.did != cut.did
    assert json.loads(sh(dut.shell, "cat /factory/identity.json"))["did"] == again.did
    dut.transition("off")


@pytest.mark.soak
def test_soak_many_devices_two_stations(devices: Any, line: Line) -> None:
    """Six devices, three per station, provisioned and self-tested with both stations working at once."""
    thread_safe_steps()
    names = [f"factory-many-{i}" for i in range(6)]
    fleet = {n: devices.new(n) for n in names}
    stations = [line.station("station-1"), line.station("station-2")]
    outcomes: dict[str, Outcome] = {}

    def work(i: int) -> None:
        for name in names[i::2]:
            fleet[name].transition("shell")
            outcomes[name] = stations[i].provision(name, fleet[name].shell)
            fleet[name].transition("off")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {o.outcome for o in outcomes.values()} == {"pass"}, {n: o.error for n, o in outcomes.items()}
    dids = [a.did for a in allocations(line)]
    assert len(dids) == len(set(dids))
