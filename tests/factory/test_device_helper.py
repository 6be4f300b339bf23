"""The device's provisioning helper (rootfs/overlay/usr/lib/pycam/factory-provision), run on the host
against a directory standing in for /factory: key made locally, certificate checks, write-once, and
the atomic switch under a power cut (SIGKILL at each pause point) — state is then either no identity
(re-provisionable) or the complete new one, never a mix."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pycam.factory.ca import FactoryCA, init_ca
from pycam.factory.ids import hostname

HELPER = Path(__file__).parents[2] / "rootfs" / "overlay" / "usr" / "lib" / "pycam" / "factory-provision"
DID = "PCAM-01-00000007-2"


class Device:
    def __init__(self, root: Path) -> None:
        self.factory, self.run_dir, self.data = root / "factory", root / "run", root / "data"
        self.factory.mkdir(parents=True)
        self.data.mkdir(parents=True)
        self.env = {**os.environ, "PYCAM_FACTORY_DIR": str(self.factory), "PYCAM_FACTORY_RUN": str(self.run_dir),
                    "PYCAM_FACTORY_APP_DATA": str(self.data)}

    def call(self, *args: str) -> tuple[int, dict]:
        p = subprocess.run([sys.executable, str(HELPER), *args], env=self.env, capture_output=True, text=True,
                           timeout=60, check=False)
        lines = [x for x in p.stdout.splitlines() if x.startswith("PYCAM-FACTORY ")]
        assert lines, p.stdout + p.stderr
        return p.returncode, json.loads(lines[-1].split(" ", 1)[1])

    def payload(self, ca: FactoryCA, did: str = DID, csr: str | None = None, chain: bytes | None = None) -> Path:
        from cryptography.hazmat.primitives import serialization

        if csr is None:
            code, doc = self.call("keygen")
            assert code == 0
            csr = doc["csr"]
        cert = ca.sign(csr, did, hostname(did), "02:50:43:00:00:07", 30)
        body = {"identity": {"format": 1, "did": did, "serial": did, "mac": "02:50:43:00:00:07",
                             "hostname": hostname(did)},
                "files": {"device.crt": cert.public_bytes(serialization.Encoding.PEM).decode(),
                          "ca-chain.pem": (chain or ca.chain_pem).decode(),
                          "ota/hawkbit.conf": f"[client]\ntarget_name = {did}\n"}}
        path = self.run_dir / "payload.json"
        path.write_text(json.dumps(body))
        return path

    def identity(self) -> dict | None:
        try:
            return json.loads((self.factory / "identity.json").read_text())
        except FileNotFoundError:
            return None


@pytest.fixture
def dev(tmp_path: Path) -> Device:
    return Device(tmp_path)


def test_provision_writes_complete_identity(dev: Device, factory_ca: FactoryCA) -> None:
    code, st = dev.call("status")
    assert code == 0 and st["provisioned"] is False
    (dev.data / "credentials.json").write_text('{"source": "generated", "password_hash": "x"}')
    code, doc = dev.call("commit", str(dev.payload(factory_ca)))
    assert code == 0, doc
    assert dev.identity()["did"] == DID and dev.identity()["generation"] == 1
    for name in ("device.crt", "device.key", "ca-chain.pem", "ota/hawkbit.conf"):
        assert (dev.factory / name).is_file(), name
    assert oct((dev.factory / "device.key").stat().st_mode & 0o777) == "0o640"
    assert not (dev.run_dir / "device.key").exists()  # the key lives only on the factory partition now
    assert (dev.data / "credentials.json").exists()
    code, doc = dev.call("app-reset")
    assert code == 0 and doc["forgot_generated_password"]
    assert not (dev.data / "credentials.json").exists()  # the app's made-up password gives way to the factory's
    code, st = dev.call("status")
    assert st["provisioned"] and st["did"] == DID and st["generation"] == 1


def test_write_once_and_explicit_reprovision(dev: Device, factory_ca: FactoryCA) -> None:
    assert dev.call("commit", str(dev.payload(factory_ca)))[0] == 0
    code, doc = dev.call("commit", str(dev.payload(factory_ca, did="PCAM-01-00000008-0")))
    assert code == 3 and "already provisioned as " + DID in doc["error"]
    assert dev.identity()["did"] == DID
    code, doc = dev.call("commit", str(dev.payload(factory_ca, did="PCAM-01-00000008-0")), "--reprovision")
    assert code == 0, doc
    ident = dev.identity()
    assert ident["did"] == "PCAM-01-00000008-0" and ident["previous_did"] == DID and ident["generation"] == 2
    history = json.loads((dev.factory / "current" / "history.json").read_text())
    assert [h["did"] for h in history] == [DID, "PCAM-01-00000008-0"]
    assert sorted(p.name for p in dev.factory.glob("gen-*")) == ["gen-2"]


def test_certificate_for_another_key_refused(dev: Device, factory_ca: FactoryCA, tmp_path: Path) -> None:
    other = Device(tmp_path / "other")
    _, doc = other.call("keygen")
    dev.call("keygen")
    code, out = dev.call("commit", str(dev.payload(factory_ca, csr=doc["csr"])))
    assert code == 3 and "not for this device's key" in out["error"]
    assert dev.identity() is None


def test_bad_ca_chain_refused(dev: Device, factory_ca: FactoryCA, tmp_path: Path) -> None:
    stranger = FactoryCA.load(init_ca(tmp_path / "stranger-ca"))
    code, out = dev.call("commit", str(dev.payload(factory_ca, chain=stranger.chain_pem)))
    assert code == 3 and "does not verify against the CA chain" in out["error"]
    assert dev.identity() is None and dev.call("status")[1]["provisioned"] is False


@pytest.mark.parametrize("point", ["files", "generation", "switched"])
def test_power_cut_leaves_none_or_complete(dev: Device, factory_ca: FactoryCA, point: str) -> None:
    payload = dev.payload(factory_ca)
    (dev.run_dir / "pause-at").write_text(point)
    p = subprocess.Popen([sys.executable, str(HELPER), "commit", str(payload)], env=dev.env, stdout=subprocess.PIPE,
                         text=True)
    assert p.stdout is not None
    assert p.stdout.readline().startswith(f"PYCAM-FACTORY-PAUSED {point}")
    p.send_signal(signal.SIGKILL)  # the power cut
    p.wait()
    (dev.run_dir / "pause-at").unlink()
    ident = dev.identity()
    if point == "switched":
        assert ident is not None and ident["did"] == DID and (dev.factory / "device.key").is_file()
        return
    assert ident is None and not (dev.factory / "device.crt").exists()
    code, st = dev.call("status")
    assert st["provisioned"] is False
    assert st["stale"] == ([".gen-1.tmp"] if point == "files" else [])
    # re-provisionable: a new key, a new commit, and the leftovers are gone
    code, doc = dev.call("commit", str(dev.payload(factory_ca, did="PCAM-01-00000008-0")))
    assert code == 0, doc
    assert dev.identity()["did"] == "PCAM-01-00000008-0"
    assert not list(dev.factory.glob(".gen-*.tmp"))
