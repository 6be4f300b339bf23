"""The service as its own process (`pycam-app`), as systemd runs it: plain HTTP without OpenSSL (neither
its TLS layer nor libcrypto) loaded at all, HTTPS with the device certificate when it exists."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import small_config
from pycam_app import config

EXE = Path(sys.executable).with_name("pycam-app")


def _start(tmp_path: Path, early_hup: bool = False, **sections: dict[str, Any]) -> tuple[subprocess.Popen[bytes], str]:
    cfg = small_config(tmp_path, **sections)
    path = tmp_path / "app.toml"
    path.write_text(config.to_toml(cfg))
    proc = subprocess.Popen([str(EXE), "--config", str(path)], stderr=(tmp_path / "stderr").open("wb"))
    if early_hup:
        _hup_when_caught(proc)
    endpoint = Path(cfg.runtime_dir) / "endpoint.json"
    deadline = time.monotonic() + 60
    while not endpoint.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("pycam-app did not start: " + (tmp_path / "stderr").read_text())
        time.sleep(0.1)
    return proc, json.loads(endpoint.read_text())["url"]


def _hup_when_caught(proc: subprocess.Popen[bytes]) -> None:
    """SIGHUP as soon as the process handles it (SigCgt bit 1), i.e. while it is still importing."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = Path(f"/proc/{proc.pid}/status").read_text()
        caught = int(next(x for x in status.splitlines() if x.startswith("SigCgt:")).split()[1], 16)
        if caught & (1 << (signal.SIGHUP - 1)):
            proc.send_signal(signal.SIGHUP)
            return
        time.sleep(0.005)
    pytest.fail("pycam-app never installed its SIGHUP handler")


def _openssl_pair(cert: Path, key: Path, cn: str) -> None:
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"),
            *("-days", "2", "-subj", f"/CN={cn}", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )


def _health(url: str) -> dict[str, Any]:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the device certificate is self-signed here
    deadline = time.monotonic() + 30
    while True:
        with urllib.request.urlopen(url + "/api/health", timeout=5, context=ctx) as r:
            doc: dict[str, Any] = json.load(r)
        if doc["frames"] > 0 or time.monotonic() > deadline:
            return doc
        time.sleep(0.2)


@pytest.fixture
def stop() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        p.terminate()
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()


def test_plain_http_service_never_loads_tls(tmp_path: Path, stop: list[subprocess.Popen[bytes]]) -> None:
    proc, url = _start(tmp_path)
    stop.append(proc)
    assert url.startswith("http://")
    assert _health(url)["frames"] > 0
    # a login runs PBKDF2 without OpenSSL (auth.pbkdf2_sha256)
    password = (Path(small_config(tmp_path).data_dir) / "initial-password").read_text().split("password: ")[1]
    token = base64.b64encode(f"admin:{password.strip()}".encode()).decode()
    req = urllib.request.Request(url + "/api/properties", headers={"Authorization": "Basic " + token})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 200
    maps = Path(f"/proc/{proc.pid}/maps").read_text()
    assert "libssl" not in maps and "/_ssl." not in maps, "ssl was imported by the plain-HTTP service"
    assert "libcrypto" not in maps and "/_hashlib." not in maps, "OpenSSL was loaded by the plain-HTTP service"


def test_https_with_the_device_certificate(tmp_path: Path, stop: list[subprocess.Popen[bytes]]) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl command not installed (needed to make a test certificate)")
    factory = tmp_path / "factory"
    factory.mkdir()
    cert, key = factory / "device.crt", factory / "device.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"),
            *("-days", "2", "-subj", "/CN=pycam-test", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    proc, url = _start(tmp_path, web={"tls": "auto", "cert": str(cert), "key": str(key)})
    stop.append(proc)
    assert url.startswith("https://")
    assert _health(url)["frames"] > 0
    assert "libssl" in Path(f"/proc/{proc.pid}/maps").read_text()


def test_tls_wanted(tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    web = config.WebConfig(tls="auto", cert=str(cert), key=str(key))
    assert not web.tls_wanted()
    cert.write_text("x")
    key.write_text("x")
    assert web.tls_wanted()
    assert not config.WebConfig(tls="off", cert=str(cert), key=str(key)).tls_wanted()
    assert config.WebConfig(tls="on", cert=str(tmp_path / "none"), key=str(key)).tls_wanted()


RELOAD = Path(__file__).resolve().parents[2] / "rootfs" / "overlay" / "usr" / "lib" / "pycam" / "app-reload"


def test_reload_brings_https_to_a_plain_http_process(tmp_path: Path, stop: list[subprocess.Popen[bytes]]) -> None:
    """The unit's ExecReload= helper against the real process: started plain (ssl and libcrypto kept
    out), provisioned, reloaded -> HTTPS on the same port; then a bad pair is refused (exit 1) and
    HTTPS keeps serving. A SIGHUP during the start-up imports is remembered, not fatal."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl command not installed (needed to make a test certificate)")
    factory = tmp_path / "factory"
    cert, key = factory / "device.crt", factory / "device.key"
    proc, url = _start(tmp_path, early_hup=True, web={"tls": "auto", "cert": str(cert), "key": str(key)})
    stop.append(proc)
    run = Path(small_config(tmp_path).runtime_dir)
    assert url.startswith("http://") and _health(url)["frames"] > 0
    deadline = time.monotonic() + 30
    while not (run / "reload-status").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (run / "reload-status").read_text().startswith(f"{proc.pid}.1 ok nothing changed")
    assert "libssl" not in Path(f"/proc/{proc.pid}/maps").read_text()

    factory.mkdir()
    _openssl_pair(cert, key, "PCAM-01-00000001-6")
    (factory / "identity.json").write_text(json.dumps({"serial": "PCAM-01-00000001-6"}))
    env = dict(os.environ, PYCAM_APP_RUNTIME=str(run))
    r = subprocess.run(["sh", str(RELOAD), str(proc.pid), "60"], env=env, capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, r.stderr
    https = json.loads((run / "endpoint.json").read_text())["url"]
    assert https == "https://" + url.removeprefix("http://") and https in r.stdout
    assert _health(https)["frames"] > 0
    assert "libssl" in Path(f"/proc/{proc.pid}/maps").read_text()
    served = ssl.get_server_certificate(("127.0.0.1", int(https.rsplit(":", 1)[1])))

    other = tmp_path / "other"
    other.mkdir()
    _openssl_pair(other / "c.pem", other / "k.pem", "PCAM-01-00000002-4")
    cert.write_bytes((other / "c.pem").read_bytes())  # a certificate for another key
    r = subprocess.run(["sh", str(RELOAD), str(proc.pid), "60"], env=env, capture_output=True, text=True, timeout=90)
    assert r.returncode == 1 and "refused" in r.stderr and "KEY_VALUES_MISMATCH" in r.stderr, r.stderr
    assert proc.poll() is None and _health(https)["frames"] > 0
    assert ssl.get_server_certificate(("127.0.0.1", int(https.rsplit(":", 1)[1]))) == served
