"""The OTA client (ota/client) against the hawkBit fixture and a static index, on the host.

The hawkBit server is tests/hawkbit/fixture.py (no hawkBit can run here; it follows the published
DDI and Management APIs). RAUC, U-Boot and the health gate are FakeDevice (conftest.py) because
RAUC cannot install on the host; everything else (HTTP, Range resume, hashes, feedback, state on
disk across a "reboot") is the real client code. tests/target/test_ota_hawkbit.py runs the same
client with the real RAUC in QEMU.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pycam_ota.client import Client, candidates
from pycam_ota.config import Config, ConfigError, parse
from pycam_ota.ddi import Artifact, Offer, parse_sleep

from pycam.errors import PycamError
from pycam.publish import Hawkbit, publish_dir, publish_hawkbit, read_bundle
from tests.hawkbit.fixture import HawkbitFixture

from .conftest import COMPATIBLE, FakeDevice, make_bundle

TOKEN = "s3cr3t-target-token"


def hawkbit_config(tmp_path: Path, server: HawkbitFixture, target: str = "cam-1", **extra: Any) -> Config:
    text = f"""[client]
hawkbit_server = {server.url.removeprefix("http://")}
ssl = false
tenant_id = DEFAULT
target_name = {target}
auth_token = {TOKEN}
bundle_download_location = {tmp_path / "dl" / "bundle.raucb"}
retry_wait = 30

[device]
model = qemu
hw_revision = 1

[pycam]
state_dir = {tmp_path / "state"}
"""
    for key, value in extra.items():
        text = text.replace("[device]", f"{key} = {value}\n\n[device]")
    return parse(tmp_path / "hawkbit.conf", text)


def publish(server: HawkbitFixture, tmp_path: Path, bundles: list[Path], targets: list[str]) -> dict[str, Any]:
    api = Hawkbit(server.url, user="admin", password="admin", token=None)
    return publish_hawkbit([read_bundle(b) for b in bundles], api, targets=targets, rollout=None)


class Reboot:
    """What a reboot does to the client: a new boot id; the state on /data stays."""

    def __init__(self, client: Client) -> None:
        self.n = 1
        client._boot_id = lambda: f"boot-{self.n}"

    def __call__(self) -> None:
        self.n += 1


def executions(server: HawkbitFixture, action: int) -> list[tuple[str, str]]:
    return [(f["body"]["status"]["execution"], f["body"]["status"]["result"]["finished"])
            for f in server.feedback_for(action)]


def details(server: HawkbitFixture, action: int) -> str:
    return "\n".join(d for f in server.feedback_for(action) for d in f["body"]["status"].get("details", []))


@pytest.fixture
def bundles(tmp_path: Path) -> dict[str, Path]:
    out = tmp_path / "out"
    out.mkdir()
    return {"full": make_bundle(out, "0.2.0"), "delta": make_bundle(out, "0.2.0", base="0.1.0", size=20_000)}


def test_update_installs_the_delta_reboots_and_reports_success_after_the_health_gate(
        tmp_path: Path, hawkbit: HawkbitFixture, bundles: dict[str, Path]) -> None:
    hawkbit.add_target("cam-1", TOKEN)
    action = publish(hawkbit, tmp_path, [bundles["full"], bundles["delta"]], ["cam-1"])["actions"][0]
    device = FakeDevice(running="0.1.0", slot="A")
    client = Client(hawkbit_config(tmp_path, hawkbit), device)
    reboot = Reboot(client)

    assert client.step() == 7  # the server's polling sleep, 00:00:07
    assert device.installs == [bundles["delta"].name]  # the delta from the running version, not the full one
    assert device.reboots == 1
    assert hawkbit.targets["cam-1"].attributes == {"model": "qemu", "hw_revision": "1", "pycam_version": "0.1.0"}
    assert [d["file"] for d in hawkbit.downloads] == [bundles["delta"].name]
    assert ("closed", "success") not in executions(hawkbit, action)  # installed is not done
    assert hawkbit.actions[action].status == "running"
    assert ("proceeding", "none") in executions(hawkbit, action)
    assert any(f["body"]["status"]["result"].get("progress") == {"cnt": 100, "of": 100}
               for f in hawkbit.feedback_for(action))

    reboot()
    device.boot_into("B", "0.2.0")
    device.gate = "pending"  # the health gate has not decided yet
    client.step()
    assert hawkbit.actions[action].status == "running"
    device.gate = "good"
    client.step()
    assert executions(hawkbit, action)[-1] == ("closed", "success")
    assert "confirmed by the health gate" in details(hawkbit, action)
    assert hawkbit.actions[action].status == "finished"
    assert client.state.pending() is None
    assert client.state.status()["event"] == "success"
    assert not Path(client.cfg.bundle_download_location).exists()  # the download does not linger on /data


def test_rollback_by_the_boot_counter_is_reported_as_failure(tmp_path: Path, hawkbit: HawkbitFixture,
                                                             bundles: dict[str, Path]) -> None:
    hawkbit.add_target("cam-1", TOKEN)
    action = publish(hawkbit, tmp_path, [bundles["full"]], ["cam-1"])["actions"][0]
    device = FakeDevice()
    client = Client(hawkbit_config(tmp_path, hawkbit), device)
    reboot = Reboot(client)
    client.step()
    assert device.installs == [bundles["full"].name]

    reboot()  # B boots, its gate fails and reboots: nothing is reported yet
    device.boot_into("B", "0.2.0")
    device.gate = "failed"
    client.step()
    assert hawkbit.actions[action].status == "running"

    reboot()  # ... until the counter is out and A is back
    device.boot_into("A", "0.1.0")
    device.gate = "good"
    client.step()
    assert executions(hawkbit, action)[-1] == ("closed", "failure")
    assert "rolled back" in details(hawkbit, action)
    assert hawkbit.actions[action].status == "error"
    assert client.state.status()["failed_versions"] == ["0.2.0"]


def test_no_reboot_yet_means_no_report(tmp_path: Path, hawkbit: HawkbitFixture, bundles: dict[str, Path]) -> None:
    hawkbit.add_target("cam-1", TOKEN)
    action = publish(hawkbit, tmp_path, [bundles["full"]], ["cam-1"])["actions"][0]
    device = FakeDevice()
    client = Client(hawkbit_config(tmp_path, hawkbit, post_update_reboot="false"), device)
    Reboot(client)
    client.step()
    client.step()  # same boot: slot A is still running, which is not a rollback
    assert device.reboots == 0
    assert hawkbit.actions[action].status == "running"
    assert ("closed", "failure") not in executions(hawkbit, action)


def test_refused_delta_falls_back_to_the_full_bundle(tmp_path: Path, hawkbit: HawkbitFixture,
                                                     bundles: dict[str, Path]) -> None:
    hawkbit.add_target("cam-1", TOKEN)
    action = publish(hawkbit, tmp_path, [bundles["full"], bundles["delta"]], ["cam-1"])["actions"][0]
    device = FakeDevice(refuse_deltas=True)
    client = Client(hawkbit_config(tmp_path, hawkbit), device)
    Reboot(client)
    client.step()
    assert device.installs == [bundles["delta"].name, bundles["full"].name]
    assert [d["file"] for d in hawkbit.downloads] == [bundles["delta"].name, bundles["full"].name]
    assert "falling back to the full bundle" in details(hawkbit, action)
    assert device.reboots == 1


def test_a_device_on_another_version_takes_the_full_bundle(tmp_path: Path, hawkbit: HawkbitFixture,
                                                           bundles: dict[str, Path]) -> None:
    hawkbit.add_target("cam-1", TOKEN)
    publish(hawkbit, tmp_path, [bundles["full"], bundles["delta"]], ["cam-1"])
    device = FakeDevice(running="0.0.9")
    client = Client(hawkbit_config(tmp_path, hawkbit), device)
    Reboot(client)
    client.step()
    assert device.installs == [bundles["full"].name]
    assert [d["file"] for d in hawkbit.downloads] == [bundles["full"].name]


def test_selection() -> None:
    full = Artifact("p-0.3.0.raucb", "u", 1, "a")
    d1 = Artifact("p-0.3.0.delta-from-0.2.0.raucb", "u", 1, "b", base="0.2.0")
    d2 = Artifact("p-0.3.0.delta-from-0.1.0.raucb", "u", 1, "c", base="0.1.0")
    offer = Offer("1", "0.3.0", (d1, full, d2))
    assert candidates(offer, "0.1.0") == [d2, full]
    assert candidates(offer, "0.2.0") == [d1, full]
    assert candidates(offer, "0.0.1") == [full]
    assert candidates(Offer("1", "0.3.0", (d1,)), "0.0.1") == []


def test_interrupted_download_resumes_with_a_range_request(tmp_path: Path, hawkbit: HawkbitFixture,
                                                           bundles: dict[str, Path]) -> None:
    hawkbit.add_target("cam-1", TOKEN)
    action = publish(hawkbit, tmp_path, [bundles["full"]], ["cam-1"])["actions"][0]
    hawkbit.cut_downloads_after = 100_000
    device = FakeDevice()
    client = Client(hawkbit_config(tmp_path, hawkbit), device)
    Reboot(client)
    client.step()
    assert device.installs == []
    part = Path(client.cfg.bundle_download_location + ".part")
    assert part.stat().st_size == 100_000
    assert hawkbit.actions[action].status == "running"  # not given up: resumed at the next poll
    client.step()
    assert [(d["range"], d["status"]) for d in hawkbit.downloads] == [(None, 200), ("bytes=100000-", 206)]
    assert device.installs == [bundles["full"].name]


def test_corrupt_artifact_is_refused_and_reported(tmp_path: Path, hawkbit: HawkbitFixture,
                                                  bundles: dict[str, Path]) -> None:
    hawkbit.add_target("cam-1", TOKEN)
    action = publish(hawkbit, tmp_path, [bundles["full"]], ["cam-1"])["actions"][0]
    stored = next(iter(next(iter(hawkbit.modules.values())).artifacts.values())).path
    data = bytearray(stored.read_bytes())
    data[5000] ^= 0xFF
    stored.write_bytes(bytes(data))
    device = FakeDevice()
    client = Client(hawkbit_config(tmp_path, hawkbit), device)
    client.step()
    assert device.installs == []
    assert executions(hawkbit, action)[-1] == ("closed", "failure")
    assert "does not match" in details(hawkbit, action)
    assert not Path(client.cfg.bundle_download_location + ".part").exists()


def test_cancel_before_the_download(tmp_path: Path, hawkbit: HawkbitFixture, bundles: dict[str, Path]) -> None:
    hawkbit.add_target("cam-1", TOKEN)
    action = publish(hawkbit, tmp_path, [bundles["full"]], ["cam-1"])["actions"][0]
    hawkbit.cancel(action)
    device = FakeDevice()
    client = Client(hawkbit_config(tmp_path, hawkbit), device)
    client.step()
    assert device.installs == []
    assert hawkbit.actions[action].status == "canceled"
    assert [f["kind"] for f in hawkbit.feedback_for(action)] == ["cancel"]


def test_cancel_after_the_install_is_rejected(tmp_path: Path, hawkbit: HawkbitFixture,
                                              bundles: dict[str, Path]) -> None:
    hawkbit.add_target("cam-1", TOKEN)
    action = publish(hawkbit, tmp_path, [bundles["full"]], ["cam-1"])["actions"][0]
    device = FakeDevice()
    client = Client(hawkbit_config(tmp_path, hawkbit, post_update_reboot="false"), device)
    Reboot(client)
    client.step()
    assert device.installs
    hawkbit.cancel(action)
    client.ddi is not None and client._cancel(client.ddi.poll()["_links"]["cancelAction"]["href"])
    assert executions(hawkbit, action)[-1] == ("rejected", "success")
    assert hawkbit.actions[action].status == "running"


def test_wrong_token_is_an_error_not_a_crash(tmp_path: Path, hawkbit: HawkbitFixture) -> None:
    hawkbit.add_target("cam-1", "another-token")
    client = Client(hawkbit_config(tmp_path, hawkbit), FakeDevice())
    assert client.step() == 30  # retry_wait
    assert hawkbit.polls == []


def test_static_index_update_and_no_retry_after_a_rollback(tmp_path: Path, static_server: tuple[Path, str],
                                                           bundles: dict[str, Path]) -> None:
    root, url = static_server
    publish_dir([read_bundle(bundles["full"]), read_bundle(bundles["delta"])], root, poll_seconds=600)
    cfg = parse(tmp_path / "c.conf", f"""[client]
bundle_download_location = {tmp_path / "dl" / "bundle.raucb"}
[pycam]
index_url = {url}/
state_dir = {tmp_path / "state"}
""")
    assert cfg.mode == "index"
    device = FakeDevice()
    client = Client(cfg, device)
    reboot = Reboot(client)
    assert client.step() == 600
    assert device.installs == [bundles["delta"].name]
    reboot()
    device.boot_into("A", "0.1.0")  # rolled back
    client.step()
    assert client.state.status()["event"] == "failure"
    client.step()
    assert device.installs == [bundles["delta"].name]  # 0.2.0 failed here: not tried again


def test_config_reads_rauc_hawkbit_updaters_format(tmp_path: Path) -> None:
    example = (Path(__file__).parents[2] / "ota" / "hawkbit.conf").read_text()
    cfg = parse(Path("/etc/pycam/hawkbit.conf"), example)
    assert cfg.mode == "none" and cfg.post_update_reboot and cfg.bundle_download_location.startswith("/data/")
    upstream = """[client]
hawkbit_server            = 10.10.0.254:8080
ssl                       = false
ssl_verify                = false
tenant_id                 = DEFAULT
target_name               = test-target
auth_token                = cb115a721af28f781b493fa467819ef5
bundle_download_location  = /tmp/bundle.raucb
retry_wait                = 60
[device]
mac_address               = ff:ff:ff:ff:ff:ff
"""
    cfg = parse(tmp_path / "x", upstream)
    assert cfg.controller_base == "http://10.10.0.254:8080/DEFAULT/controller/v1/test-target"
    assert cfg.auth_header() == {"Authorization": "TargetToken cb115a721af28f781b493fa467819ef5"}
    with pytest.raises(ConfigError, match="target_name"):
        parse(tmp_path / "x", upstream.replace("target_name               = test-target\n", ""))
    with pytest.raises(ConfigError, match="ssl = 'maybe' is not a boolean"):
        parse(tmp_path / "x", upstream.replace("ssl                       = false", "ssl = maybe"))
    assert parse_sleep("00:05:00", 1) == 300 and parse_sleep("junk", 9) == 9


def test_status_file_is_json(tmp_path: Path, hawkbit: HawkbitFixture, bundles: dict[str, Path]) -> None:
    hawkbit.add_target("cam-1", TOKEN)
    publish(hawkbit, tmp_path, [bundles["full"]], ["cam-1"])
    client = Client(hawkbit_config(tmp_path, hawkbit), FakeDevice())
    Reboot(client)
    client.step()
    status = json.loads((tmp_path / "state" / "status.json").read_text())
    assert status["event"] == "installed" and status["slot"] == "B"
    assert client.state.pending()["stage"] == "installed"  # type: ignore[index]


def test_publish_refuses_a_bundle_that_does_not_match_its_sidecar(bundles: dict[str, Path]) -> None:
    with open(bundles["full"], "r+b") as f:
        f.seek(100)
        f.write(b"X")
    with pytest.raises(PycamError, match="differs from its sidecar"):
        read_bundle(bundles["full"])


def test_index_compatible_is_checked(tmp_path: Path, static_server: tuple[Path, str],
                                     bundles: dict[str, Path]) -> None:
    root, url = static_server
    index = publish_dir([read_bundle(bundles["full"])], root)
    assert index == root / COMPATIBLE / "index.json"
    doc = json.loads(index.read_text())
    doc["compatible"] = "pycam-other"
    (root / "pycam-other").mkdir()
    (root / "pycam-other" / "index.json").write_text(json.dumps(doc))
    cfg = parse(tmp_path / "c.conf", f"[client]\n[pycam]\nindex_url = {url}\nstate_dir = {tmp_path / 's'}\n")
    device = FakeDevice(compat="pycam-other2")
    assert Client(cfg, device).step() == cfg.retry_wait  # no index for it: an error, retried later
    assert device.installs == []
