"""The embedded default engine: Debian arm64 packages -> squashfs root -> A/B disk image -> RAUC bundle.

One module per stage; `build.py` strings them together.
"""
