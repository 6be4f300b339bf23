"""`pycam publish` against the hawkBit fixture (no hawkBit server can run here; the fixture follows
hawkBit's published Management API) and to a directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pycam.errors import PycamError
from pycam.publish import Hawkbit, Rollout, publish_dir, publish_hawkbit, read_bundle
from tests.hawkbit.fixture import HawkbitFixture

from .conftest import COMPATIBLE, make_bundle


@pytest.fixture
def out(tmp_path: Path) -> Path:
    d = tmp_path / "out"
    d.mkdir()
    return d


def api(server: HawkbitFixture, password: str = "admin") -> Hawkbit:
    return Hawkbit(server.url, user="admin", password=password, token=None)


def test_software_module_artifacts_distribution_set_and_assignment(hawkbit: HawkbitFixture, out: Path) -> None:
    full, delta = make_bundle(out, "0.2.0"), make_bundle(out, "0.2.0", base="0.1.0", size=5000)
    hawkbit.add_target("cam-1", "t1")
    result = publish_hawkbit([read_bundle(full), read_bundle(delta)], api(hawkbit), targets=["cam-1"],
                             rollout=None, allow_downgrade=True)
    sm = hawkbit.modules[result["software_module"]]
    assert (sm.name, sm.version, sm.type) == (COMPATIBLE, "0.2.0", "os")
    assert sorted(a.filename for a in sm.artifacts.values()) == sorted([full.name, delta.name])
    assert {a.filename: a.sha256 for a in sm.artifacts.values()}[full.name] == read_bundle(full).sha256
    assert sm.metadata == {"allow-downgrade": ("true", True)}
    assert hawkbit.sets[result["distribution_set"]].modules == [sm.id]
    (action,) = result["actions"]
    assert hawkbit.actions[action].target == "cam-1" and hawkbit.actions[action].status == "running"


def test_full_only_uploads_one_artifact(hawkbit: HawkbitFixture, out: Path) -> None:
    full, delta = make_bundle(out, "0.3.0"), make_bundle(out, "0.3.0", base="0.2.0", size=5000)
    result = publish_hawkbit([read_bundle(full), read_bundle(delta)], api(hawkbit), targets=[], rollout=None,
                             full_only=True)
    assert [a.filename for a in hawkbit.modules[result["software_module"]].artifacts.values()] == [full.name]


def test_rollout_in_groups_starts_the_next_group_after_the_first_succeeds(hawkbit: HawkbitFixture,
                                                                          out: Path) -> None:
    for i in range(4):
        hawkbit.add_target(f"cam-{i}", f"t{i}")
    hawkbit.add_target("lab-1", "x")
    result = publish_hawkbit([read_bundle(make_bundle(out, "0.2.0"))], api(hawkbit), targets=[],
                             rollout=Rollout("r1", "controllerId==cam-*", groups=2, threshold=100))
    rollout = hawkbit.rollouts[result["rollout"]]
    assert rollout.status == "running"
    assert [g["targets"] for g in rollout.groups] == [["cam-0", "cam-1"], ["cam-2", "cam-3"]]
    running = {a.target: a for a in hawkbit.actions.values()}
    assert set(running) == {"cam-0", "cam-1"}
    for action in running.values():  # the first group's devices report success over DDI
        hawkbit.actions[action.id].status = "finished"
    with hawkbit._lock:
        hawkbit._advance_rollouts()
    assert {a.target for a in hawkbit.actions.values()} == {"cam-0", "cam-1", "cam-2", "cam-3"}


def test_rollout_with_named_groups(hawkbit: HawkbitFixture, out: Path) -> None:
    for i in range(10):
        hawkbit.add_target(f"cam-{i:02d}", "t")
    result = publish_hawkbit([read_bundle(make_bundle(out, "0.2.0"))], api(hawkbit), targets=[],
                             rollout=Rollout("canary", "controllerId==cam-*", group_specs=("canary:20", "rest:100")))
    groups = hawkbit.rollouts[result["rollout"]].groups
    assert [(g["name"], len(g["targets"])) for g in groups] == [("canary", 2), ("rest", 8)]


def test_bad_credentials_and_duplicates_are_clear_errors(hawkbit: HawkbitFixture, out: Path) -> None:
    bundle = read_bundle(make_bundle(out, "0.2.0"))
    with pytest.raises(PycamError) as err:
        publish_hawkbit([bundle], api(hawkbit, password="wrong"), targets=[], rollout=None)
    assert "HTTP 401" in str(err.value) and "credentials" in err.value.hint
    publish_hawkbit([bundle], api(hawkbit), targets=[], rollout=None)
    with pytest.raises(PycamError) as err:
        publish_hawkbit([bundle], api(hawkbit), targets=[], rollout=None)
    assert "HTTP 409" in str(err.value) and "new version" in err.value.hint
    with pytest.raises(PycamError, match="no target nobody"):
        publish_hawkbit([read_bundle(make_bundle(out, "0.4.0"))], api(hawkbit), targets=["nobody"], rollout=None)


def test_unreachable_server(out: Path) -> None:
    server = Hawkbit("http://127.0.0.1:9", user="a", password="b", token=None, timeout=5)
    with pytest.raises(PycamError, match="reachable"):
        publish_hawkbit([read_bundle(make_bundle(out, "0.2.0"))], server, targets=[], rollout=None)


def test_directory_index(tmp_path: Path, out: Path) -> None:
    www = tmp_path / "www"
    publish_dir([read_bundle(make_bundle(out, "0.2.0"))], www)
    index = publish_dir([read_bundle(make_bundle(out, "0.10.0")), read_bundle(make_bundle(out, "0.10.0", "0.2.0"))],
                        www, poll_seconds=60)
    doc = json.loads(index.read_text())
    assert doc["latest"] == "0.10.0" and doc["poll_seconds"] == 60 and doc["compatible"] == COMPATIBLE
    assert [b.get("base") for b in doc["releases"]["0.10.0"]["bundles"]] == [None, "0.2.0"]
    for entry in doc["releases"]["0.10.0"]["bundles"]:
        assert (www / COMPATIBLE / entry["file"]).stat().st_size == entry["size"]
        assert (www / COMPATIBLE / (entry["file"] + ".json")).exists()
    publish_dir([read_bundle(make_bundle(out, "0.3.0"))], www)
    assert json.loads(index.read_text())["latest"] == "0.10.0"  # an older release does not become latest
    publish_dir([read_bundle(make_bundle(out, "0.3.0"))], www, allow_downgrade=True)
    assert json.loads(index.read_text())["latest"] == "0.3.0"
    with pytest.raises(PycamError, match=r"no full bundle of 0\.5\.0"):
        publish_dir([read_bundle(make_bundle(out, "0.5.0", "0.3.0"))], www)


def test_cli(tmp_path: Path, out: Path, hawkbit: HawkbitFixture) -> None:
    bundle = make_bundle(out, "0.2.0")
    run = subprocess.run([sys.executable, "-m", "pycam", "publish", str(bundle)], capture_output=True, text=True)
    assert run.returncode == 1 and "--to DIR or --hawkbit URL" in run.stderr
    run = subprocess.run([sys.executable, "-m", "pycam", "publish", str(bundle), "--to", str(tmp_path / "www")],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    hawkbit.add_target("cam-9", "t")
    env = {"PYCAM_HAWKBIT_URL": hawkbit.url, "PYCAM_HAWKBIT_USER": "admin", "PYCAM_HAWKBIT_PASSWORD": "admin",
           "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-m", "pycam", "publish", str(bundle), "--target", "cam-9"],
                         capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["actions"]
