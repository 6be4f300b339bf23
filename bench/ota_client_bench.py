"""The OTA client on the device (QEMU, TCG): its memory and how long an update takes end to end.

Runs the hawkBit end-to-end test (tests/target/test_ota_hawkbit.py, test 1: publish -> poll ->
download -> RAUC install -> reboot -> health gate -> success reported) with PYCAM_OTA_BENCH set,
which makes the test record: the client's RSS on the device after the update (VmRSS of
pycam-ota.service's main process), publish -> "installed, rebooting" feedback, publish -> reboot into
the new slot, publish -> success reported. The device polls every 5 s (the fixture's polling sleep).

Run as root after `pycam build`: .venv/bin/python bench/ota_client_bench.py
Writes bench/results/ota_client.json.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "ota_client.json"
TEST = "tests/target/test_ota_hawkbit.py::test_published_update_is_installed_booted_and_reported_after_the_health_gate"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ota.json"
        load_before = os.getloadavg()[0]
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TEST], cwd=ROOT,
                       env={**os.environ, "PYCAM_OTA_BENCH": str(out)}, check=True)
        figures = json.loads(out.read_text())
    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": "QEMU -M virt -cpu cortex-a57 (TCG) on a shared 2-core host",
        "load_avg_before": round(load_before, 2),
        "load_avg_after": round(os.getloadavg()[0], 2),
        **figures,
    }
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
