"""pycam-bundle-delta makes the default engine's delta bundle: the same script (ota/delta/make-delta,
synced into the layer), the same hook, the same manifest keys and delta.json.

BitBake itself runs in tests/yocto/test_bitbake.py (parse and task graph, no build); here the
recipe's variables are read from its text, the layer's copy of make-delta is run on the host
exactly as do_delta runs it, its patches applied with `xdelta3 -d` and by the layer's copy of the hook,
and the recipe's own Python tasks (do_delta, do_configure:prepend) run with the host's rauc and
xdelta3 against a stand-in for BitBake's datastore (getVar/setVar of the values BitBake would expand)."""

from __future__ import annotations

import configparser
import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from pycam import ROOT, keys
from pycam.definition import Product, load_product
from pycam.engine.bundle import make_bundle
from pycam.engine.delta import HOOK, MAKE_DELTA
from pycam.generate.rauc import bundle_manifest
from pycam.yocto import COPIED_FILES
from tests.slotfiles import Device, changed, images
from tests.unit.conftest import need

from .conftest import LAYER

BUNDLES = LAYER / "recipes-core" / "bundles"
RECIPE = BUNDLES / "pycam-bundle-delta_1.0.bb"
SLOTS = ("rootfs", "kernel")
ASSIGNMENT = re.compile(r'^([A-Za-z_][\w:-]*(?:\[[\w-]+\])?)\s*(\?\?=|\?=|\+=|=)\s*"([^"]*)"\s*$', re.M)


def variables(*paths: Path) -> dict[str, str]:
    """The plain string assignments (with varflags) of recipe files, in order: enough for what
    these recipes set; no expansion, no overrides applied."""
    found: dict[str, str] = {}
    for path in paths:
        for name, op, value in ASSIGNMENT.findall(path.read_text().replace("\\\n", " ")):
            value = " ".join(value.split())
            if op == "+=":
                found[name] = f"{found.get(name, '')} {value}".strip()
            elif op in ("?=", "??="):
                found.setdefault(name, value)
            else:
                found[name] = value
    return found


@pytest.fixture(scope="module")
def product() -> Product:
    return load_product("qemuarm64")


@pytest.fixture(scope="module")
def delta_vars() -> dict[str, str]:
    assert "require pycam-bundle.inc" in RECIPE.read_text()
    return variables(BUNDLES / "pycam-bundle.inc", RECIPE)


def test_recipe_runs_the_shared_script_and_ships_the_shared_hook(delta_vars: dict[str, str]) -> None:
    fetched = {uri.removeprefix("file://") for uri in delta_vars["SRC_URI"].split()}
    assert fetched == {MAKE_DELTA.name, HOOK.name}
    # what the recipe fetches is the synced copy of the checkout's file, byte for byte
    copies = {Path(copy).name: ROOT / source for source, copy in COPIED_FILES.items()}
    for name in fetched:
        copy = BUNDLES / "files" / name
        assert copy.read_bytes() == copies[name].read_bytes(), f"run `python -m pycam.yocto sync` ({name})"
        assert copy.stat().st_mode & 0o111
    assert {ROOT / source for source in COPIED_FILES} == {MAKE_DELTA, HOOK}
    assert f"os.path.join(workdir, '{MAKE_DELTA.name}')" in RECIPE.read_text()  # do_delta runs the fetched copy
    assert "xdelta3-native" in delta_vars["DEPENDS"].split()
    assert delta_vars["RAUC_BUNDLE_HOOKS[file]"] == HOOK.name


def test_no_bundle_uses_rauc_adaptive_updates() -> None:
    for path in BUNDLES.glob("*.b*"):
        assert "adaptive" not in path.read_text(), path


def _sections(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    return parser


def test_manifest_keys_are_the_default_engines(product: Product, delta_vars: dict[str, str]) -> None:
    """What meta-rauc's bundle.bbclass writes for these variables: [hooks] from RAUC_BUNDLE_HOOKS,
    [image.<slot>] filename from [rename] (else [file]) and hooks from [hooks]."""
    assert delta_vars["RAUC_BUNDLE_SLOTS"].split() == list(SLOTS)
    layer = {"hooks": {"filename": delta_vars["RAUC_BUNDLE_HOOKS[file]"],
                       "hooks": delta_vars["RAUC_BUNDLE_HOOKS[hooks]"]}}
    for slot in SLOTS:
        assert delta_vars[f"RAUC_SLOT_{slot}[type]"] == "file"
        layer[f"image.{slot}"] = {"filename": delta_vars.get(f"RAUC_SLOT_{slot}[rename]",
                                                             delta_vars[f"RAUC_SLOT_{slot}[file]"]),
                                  "hooks": delta_vars[f"RAUC_SLOT_{slot}[hooks]"]}
    engine = _sections(bundle_manifest(product, "1.1.0", "b", {s: f"{s}.xdelta" for s in SLOTS},
                                       bundle_hook=HOOK.name, image_hook="install"))
    assert layer == {name: dict(engine[name]) for name in layer}
    assert delta_vars["RAUC_BUNDLE_FORMAT"] == "${PYCAM_BUNDLE_FORMAT}"
    assert delta_vars["RAUC_BUNDLE_COMPATIBLE"] == "${PYCAM_COMPATIBLE}"
    assert delta_vars["RAUC_BUNDLE_EXTRA_FILES"] == "delta.json"


def test_delta_base_is_required_at_build_time_not_parse_time(delta_vars: dict[str, str]) -> None:
    """Parsing (and `bitbake -g`) works without a base; do_delta stops with an error naming the variable."""
    assert delta_vars["PYCAM_DELTA_BASE"] == ""
    body = RECIPE.read_text().split("python do_delta()", 1)[1]
    assert body.count("bb.fatal(\"PYCAM_DELTA_BASE") == 2  # unset; no such file
    assert "addtask delta after do_unpack do_prepare_recipe_sysroot before do_configure" in RECIPE.read_text()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def release(product: Product, tmp_path: Path) -> dict[str, Path]:
    """A base release as `rauc extract` leaves it (manifest + images) and the new images."""
    base_dir = tmp_path / "delta-base"
    base = images(base_dir, seed=5)
    names = {cls: path.name for cls, path in base.items()}
    (base_dir / "manifest.raucm").write_text(bundle_manifest(product, "1.0.0", "1.0.0+base", names))
    new = images(tmp_path / "deploy", seed=6, root=changed(base["rootfs"].read_bytes()))
    return {"base-dir": base_dir, **{f"base-{k}": v for k, v in base.items()},
            **{f"new-{k}": v for k, v in new.items()}}


def layer_make_delta(release: dict[str, Path], out: Path, *, compatible: str = "pycam-qemuarm64",
                     version: str = "1.1.0") -> subprocess.CompletedProcess[str]:
    """The command line do_delta runs (python3, the layer's copy, the same arguments)."""
    need("python3", "xdelta3")
    out.mkdir(parents=True, exist_ok=True)
    cmd = ["python3", str(BUNDLES / "files" / MAKE_DELTA.name), "--base", str(release["base-dir"]),
           "--compatible", compatible, "--version", version, "--build", "20261121080000",
           "--image", f"rootfs={release['new-rootfs']}", "--image", f"kernel={release['new-kernel']}",
           "--out", str(out)]
    return subprocess.run(cmd, capture_output=True, text=True)


def test_layer_copy_makes_patches_that_xdelta3_applies(release: dict[str, Path], delta_vars: dict[str, str],
                                                        tmp_path: Path) -> None:
    workdir = tmp_path / "workdir"
    made = layer_make_delta(release, workdir)
    assert made.returncode == 0, made.stderr
    info = json.loads((workdir / delta_vars["RAUC_BUNDLE_EXTRA_FILES"]).read_text())
    assert info["method"] == "xdelta3"
    assert info["base"] == {"version": "1.0.0", "build": "1.0.0+base"}
    assert info["target"] == {"version": "1.1.0", "build": "20261121080000"}
    for cls in SLOTS:
        patch = workdir / delta_vars[f"RAUC_SLOT_{cls}[file]"]  # the file the bundle class picks up
        assert info["images"][cls]["patch"] == patch.name
        new, base = release[f"new-{cls}"], release[f"base-{cls}"]
        assert info["images"][cls]["target"] == {"size": new.stat().st_size, "sha256": _sha256(new)}
        assert info["images"][cls]["base"] == {"size": base.stat().st_size, "sha256": _sha256(base)}
        out = tmp_path / f"{cls}.out"
        subprocess.run(["xdelta3", "-d", "-f", "-B", str(info["source_window"]), "-s", str(base), str(patch),
                        str(out)], check=True, capture_output=True)
        assert out.read_bytes() == new.read_bytes()
    assert (workdir / "rootfs.xdelta").stat().st_size < release["new-rootfs"].stat().st_size / 10


def test_layer_hook_installs_what_the_layer_copy_made(release: dict[str, Path], tmp_path: Path) -> None:
    """The bundle content do_configure assembles (patches, delta.json, the hook), on slot files."""
    need("losetup")
    content = tmp_path / "bundle"
    assert layer_make_delta(release, content).returncode == 0
    shutil.copy2(BUNDLES / "files" / HOOK.name, content / HOOK.name)
    (tmp_path / "slots").mkdir()
    device = Device(tmp_path / "slots", content, {cls: release[f"base-{cls}"] for cls in SLOTS})
    check = device.hook("install-check")
    assert check.returncode == 0, check.stderr
    for cls in SLOTS:
        done = device.install(cls, f"{cls}.1")
        assert done.returncode == 0, done.stderr
        new = release[f"new-{cls}"].read_bytes()
        assert device.slots[f"{cls}.1"].read_bytes()[:len(new)] == new


@pytest.mark.parametrize(("change", "problem"), [
    ("compatible", "the base bundle is for 'pycam-qemuarm64', this build is 'pycam-raspberrypi4-64'"),
    ("version", "the base bundle has the same version 1.0.0 as this build"),
    ("delta-base", "the base bundle is itself a delta bundle"),
    ("no-kernel", "the base bundle has no image for slot class kernel"),
])
def test_layer_copy_refuses_a_wrong_base(release: dict[str, Path], tmp_path: Path, change: str,
                                         problem: str) -> None:
    manifest = release["base-dir"] / "manifest.raucm"
    kwargs = {}
    if change == "compatible":
        kwargs["compatible"] = "pycam-raspberrypi4-64"
    elif change == "version":
        kwargs["version"] = "1.0.0"
    elif change == "delta-base":
        manifest.write_text(manifest.read_text() + "[hooks]\nfilename=delta-install\nhooks=install-check\n")
    else:
        release["base-kernel"].unlink()
    made = layer_make_delta(release, tmp_path / "out", **kwargs)
    assert made.returncode == 2
    *_, error, hint = made.stderr.strip().splitlines()
    assert error == f"make-delta: error: {problem}"
    assert hint.startswith("make-delta: hint: ")
    assert not (tmp_path / "out" / "delta.json").exists()


class Fatal(Exception):
    """bb.fatal: BitBake logs the message and stops the task."""


class BitBake:
    """The two calls of BitBake's `bb` module the recipe's Python tasks make."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def fatal(self, message: str) -> None:
        raise Fatal(message)

    def note(self, message: str) -> None:
        self.notes.append(message)


class Datastore:
    """BitBake's datastore `d` as the recipe's tasks use it: getVar/setVar of expanded values.
    (BitBake runs no task here: nothing is built offline; tests/yocto/test_bitbake.py parses.)"""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = dict(values)

    def getVar(self, name: str) -> str | None:  # BitBake's method names
        return self.values.get(name)

    def setVar(self, name: str, value: str) -> None:
        self.values[name] = value


def recipe_task(name: str, bb: BitBake) -> Callable[[Datastore], None]:
    """A `python <name>() {...}` function of the recipe, compiled as BitBake does: def <name>(d) with bb."""
    text = RECIPE.read_text()
    body = text.split(f"python {name}() {{\n", 1)[1].split("\n}\n", 1)[0]
    function = name.replace(":", "_")
    namespace: dict[str, object] = {"bb": bb}
    exec(compile(f"def {function}(d):\n{body}\n", str(RECIPE), "exec"), namespace)
    task = namespace[function]
    assert callable(task)
    return task


@pytest.fixture(scope="module")
def signed_base(product: Product, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A full bundle of release 1.0.0, made and signed as `pycam build` makes it (real rauc)."""
    need("rauc", "mksquashfs", "xdelta3")
    tmp = tmp_path_factory.mktemp("signed-base")
    keyset = keys.init(tmp / "keys")
    base = images(tmp / "images", seed=7)
    bundle = make_bundle(product, keyset, rootfs=base["rootfs"], kernel_vfat=base["kernel"], version="1.0.0",
                         build="1.0.0+base", out=tmp / "base.raucb", work=tmp / "work")
    return {"bundle": bundle, "keyring": keyset.keyring, **base}


def task_env(tmp: Path, signed_base: dict[str, Path], delta_vars: dict[str, str], **values: str) -> Datastore:
    """do_delta's variables: WORKDIR as do_unpack leaves it, the new images under their deploy names."""
    workdir, deploy = tmp / "work", tmp / "deploy"
    workdir.mkdir()
    deploy.mkdir()
    shutil.copy2(BUNDLES / "files" / MAKE_DELTA.name, workdir / MAKE_DELTA.name)
    rootfs_name = "pycam-image-qemuarm64.rootfs.squashfs-xz"  # PYCAM_ROOTFS_IMAGE, expanded for qemuarm64
    assert delta_vars["PYCAM_ROOTFS_IMAGE"] == \
        "pycam-image${IMAGE_MACHINE_SUFFIX}${IMAGE_NAME_SUFFIX}.${PYCAM_ROOTFS_FSTYPE}"
    (deploy / rootfs_name).write_bytes(changed(signed_base["rootfs"].read_bytes()))
    (deploy / delta_vars["PYCAM_KERNEL_IMAGE"]).write_bytes(signed_base["kernel"].read_bytes() + b"new kernel")
    rauc = shutil.which("rauc")
    assert rauc
    return Datastore({
        "PYCAM_DELTA_BASE": str(signed_base["bundle"]), "RAUC_KEYRING_FILE": str(signed_base["keyring"]),
        "WORKDIR": str(workdir), "DEPLOY_DIR_IMAGE": str(deploy), "STAGING_BINDIR_NATIVE": str(Path(rauc).parent),
        "RAUC_BUNDLE_COMPATIBLE": "pycam-qemuarm64", "RAUC_BUNDLE_VERSION": "1.1.0",
        "RAUC_BUNDLE_BUILD": "20261121073000", "RAUC_BUNDLE_DESCRIPTION": "pycam firmware for qemuarm64",
        "PYCAM_ROOTFS_IMAGE": rootfs_name, "PYCAM_KERNEL_IMAGE": delta_vars["PYCAM_KERNEL_IMAGE"], **values,
    })


def test_do_delta_makes_the_bundle_content_from_a_signed_base(signed_base: dict[str, Path],
                                                             delta_vars: dict[str, str], tmp_path: Path) -> None:
    """The recipe's do_delta and do_configure:prepend, run with the host's rauc and xdelta3."""
    d = task_env(tmp_path, signed_base, delta_vars)
    bb = BitBake()
    recipe_task("do_delta", bb)(d)
    workdir = Path(d.values["WORKDIR"])
    assert sorted(p.name for p in workdir.iterdir()) == ["delta.json", "kernel.xdelta", MAKE_DELTA.name,
                                                          "rootfs.xdelta"]  # the extracted base is gone
    info = json.loads((workdir / "delta.json").read_text())
    assert info["base"] == {"version": "1.0.0", "build": "1.0.0+base"}
    assert info["target"] == {"version": "1.1.0", "build": "20261121073000"}
    assert any("rootfs.xdelta" in note for note in bb.notes)

    recipe_task("do_configure:prepend", bb)(d)
    assert d.values["RAUC_BUNDLE_BUILD"] == "20261121073000"
    assert d.values["RAUC_BUNDLE_DESCRIPTION"] == "pycam firmware for qemuarm64, delta from 1.0.0"


@pytest.mark.parametrize(("values", "message"), [
    ({"PYCAM_DELTA_BASE": ""}, "PYCAM_DELTA_BASE is not set"),
    ({"PYCAM_DELTA_BASE": "/nonexistent/pycam-bundle-qemuarm64-0.1.0.raucb"},
     'PYCAM_DELTA_BASE = "/nonexistent/pycam-bundle-qemuarm64-0.1.0.raucb": no such file'),
    ({"RAUC_KEYRING_FILE": ""}, "RAUC_KEYRING_FILE"),
    ({"RAUC_BUNDLE_VERSION": "1.0.0"}, "the base bundle has the same version 1.0.0"),
    ({"RAUC_BUNDLE_COMPATIBLE": "pycam-raspberrypi4-64"}, "the base bundle is for 'pycam-qemuarm64'"),
])
def test_do_delta_stops_with_an_error_naming_the_problem(signed_base: dict[str, Path], delta_vars: dict[str, str],
                                                          tmp_path: Path, values: dict[str, str],
                                                          message: str) -> None:
    d = task_env(tmp_path, signed_base, delta_vars, **values)
    with pytest.raises(Fatal, match=re.escape(message)) as failed:
        recipe_task("do_delta", BitBake())(d)
    if "the base bundle" in message:  # make-delta's refusal carries its hint
        assert "make-delta: hint: " in str(failed.value)
    assert not (Path(d.values["WORKDIR"]) / "delta.json").exists()


def test_do_delta_refuses_a_base_signed_by_another_pki(signed_base: dict[str, Path],
                                                       delta_vars: dict[str, str], tmp_path: Path) -> None:
    stranger = keys.init(tmp_path / "stranger")
    d = task_env(tmp_path, signed_base, delta_vars, RAUC_KEYRING_FILE=str(stranger.keyring))
    with pytest.raises(Fatal, match="rauc extract failed") as failed:
        recipe_task("do_delta", BitBake())(d)
    assert "a certificate RAUC_KEYRING_FILE trusts" in str(failed.value)
