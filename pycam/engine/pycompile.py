"""`python -m pycam.engine.pycompile ROOT`: byte-compile the Debian Python stdlib of a root tree.

Run by mmdebstrap as a customize hook, on the host (the same Python minor version as the
target), instead of under qemu-user.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pycam.engine.wheels import TARGET_PYTHON, compile_tree


def main(root: Path) -> None:
    for pyc in root.glob("usr/lib/python3*/**/__pycache__/*.pyc"):
        pyc.unlink()
    for tree in (root / f"usr/lib/python{TARGET_PYTHON}", root / "usr/lib/python3/dist-packages"):
        compile_tree(root, tree)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
