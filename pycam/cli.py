"""The `pycam` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pycam import __version__, publish
from pycam.errors import PycamError
from pycam.keys import cli as keys_cli
from pycam.log import log, setup

DEFAULT_BOARD = "qemuarm64"


def _product(args: argparse.Namespace):
    from pycam.definition import load_product

    return load_product(args.board)


def cmd_build(args: argparse.Namespace) -> int:
    """`pycam build` (image, bundle, manifest) and `pycam bundle` (the bundle alone)."""
    from pycam.engine.build import BuildOptions, build
    from pycam.keys import KeySet, keys_dir

    opts = BuildOptions(version=args.version, release=args.release, refresh_base=args.refresh, image=args.image,
                        delta_from=Path(args.delta_from).resolve() if args.delta_from else None)
    out = build(_product(args), KeySet(keys_dir()), opts)
    print(out.directory if args.image else out.bundle)
    return 0


def cmd_keys_init(args: argparse.Namespace) -> int:
    from pycam import keys

    directory = Path(args.dir) if args.dir else keys.keys_dir()
    if args.if_missing and keys.KeySet(directory).ca_key.exists():
        if keys.upgrade(keys.KeySet(directory)):
            log.info("added an empty CRL to the keyring in %s (devices check CRLs)", directory)
        log.info("keys already present in %s", directory)
        return 0
    made = keys.init(directory, force=args.force)
    log.info("development PKI written to %s (private keys 0600, git-ignored)", made.directory)
    return 0


def cmd_qemu(args: argparse.Namespace) -> int:
    from pycam.qemu import run_interactive

    return run_interactive(_product(args), fresh=args.fresh, disk=Path(args.disk) if args.disk else None)


def cmd_flash(args: argparse.Namespace) -> int:
    from pycam.flash import flash

    flash(Path(args.image), Path(args.device), force=args.force, bmap=Path(args.bmap) if args.bmap else None)
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from pycam.engine import hosttools

    problems = hosttools.missing_tools({**hosttools.TOOLS, **hosttools.QEMU_TOOLS})
    problems += [f"Debian package {p}" for p in hosttools.missing_packages()]
    try:
        hosttools.require_binfmt("arm64")
    except PycamError as exc:
        problems.append(exc.problem)
    for problem in problems:
        print(f"missing: {problem}", file=sys.stderr)
    if problems:
        print(f"-> run: {hosttools.SETUP}", file=sys.stderr)
        return 1
    print("host ready")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pycam", description="Build, sign, boot and flash pycam camera firmware.")
    p.add_argument("--version", action="version", version=f"pycam {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log every command")
    sub = p.add_subparsers(dest="command", required=True)

    def with_board(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sp.add_argument("--board", default=DEFAULT_BOARD, help=f"board/<name>/ (default {DEFAULT_BOARD})")
        return sp

    for name, image, text in (("build", True, "build the disk image, bundle and manifest (default engine)"),
                              ("bundle", False, "build only the signed RAUC bundle")):
        b = with_board(sub.add_parser(name, help=text))
        b.add_argument("--version", dest="version", help="firmware version (default: ota/ota.yml)")
        b.add_argument("--release", action="store_true", help="release build: console login locked")
        b.add_argument("--refresh", action="store_true", help="rebuild the cached Debian base from the archive")
        b.add_argument("--delta-from", metavar="BUNDLE",
                       help="also make a delta bundle against this full bundle of an older release")
        b.set_defaults(func=cmd_build, image=image)

    k = sub.add_parser("keys", help="signing keys")
    ksub = k.add_subparsers(dest="keys_command", required=True)
    ki = ksub.add_parser("init", help="create a development PKI (CA + bundle signing certificate)")
    ki.add_argument("--dir", help="key directory (default keys/dev or $PYCAM_KEYS_DIR)")
    ki.add_argument("--force", action="store_true", help="replace existing keys")
    ki.add_argument("--if-missing", action="store_true", help="do nothing if keys exist")
    ki.set_defaults(func=cmd_keys_init)
    keys_cli.register(ksub)

    q = with_board(sub.add_parser("qemu", help="boot the image in QEMU on a persistent working copy"))
    q.add_argument("--fresh", action="store_true", help="start over from the built image (resets env and /data)")
    q.add_argument("--disk", help="working copy to boot (default build/<board>/qemu/disk.img)")
    q.set_defaults(func=cmd_qemu)

    f = sub.add_parser("flash", help="write an image to an SD card / USB stick with bmaptool")
    f.add_argument("image")
    f.add_argument("device")
    f.add_argument("--bmap", help="block map (default IMAGE.bmap)")
    f.add_argument("--force", action="store_true", help="write even if DEVICE is not a removable block device")
    f.set_defaults(func=cmd_flash)

    publish.register(sub)

    d = sub.add_parser("doctor", help="check the host for the tools the engine needs")
    d.set_defaults(func=cmd_doctor)
    __import__("pycam.factory.cli").factory.cli.register(sub)  # pycam factory ... (factory/README.md)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    setup(args.verbose)
    try:
        return int(args.func(args))
    except PycamError as exc:
        print(f"pycam: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("pycam: interrupted", file=sys.stderr)
        return 130
