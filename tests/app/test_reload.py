"""`systemctl reload pycam-app`: a new identity from /factory without a restart (CameraService.reload).

The factory line provisions a running service: plain HTTP -> HTTPS on the same port with the new
certificate, the factory login instead of the generated one, endpoint.json rewritten, capture and
the watchdog untouched. A bad certificate/key pair or a malformed identity is refused and the
previous identity keeps serving. The end state equals a service started on the same files.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import socket
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import basic, password_of, small_config
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pycam_app import auth, config
from pycam_app.service import CameraService

pytestmark = pytest.mark.asyncio


def make_pair(cn: str) -> tuple[bytes, bytes]:
    """A self-signed certificate and its key (PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), pem_key


def provision(factory: Path, serial: str, password: str, pair: tuple[bytes, bytes] | None = None) -> bytes:
    """Write an identity as the factory line does (identity.json, device.crt, device.key); the certificate."""
    factory.mkdir(exist_ok=True)
    cert, key = pair or make_pair(serial)
    (factory / "device.crt").write_bytes(cert)
    (factory / "device.key").write_bytes(key)
    ident = {
        "serial": serial,
        "model": "pycam-test",
        "admin_user": "admin",
        "admin_password_hash": auth.hash_password(password, 1000),
    }
    (factory / "identity.json").write_text(json.dumps(ident))
    return cert


def tls_cfg(tmp_path: Path) -> config.Config:
    factory = tmp_path / "factory"
    return small_config(
        tmp_path, web={"tls": "auto", "cert": str(factory / "device.crt"), "key": str(factory / "device.key")}
    )


def served_certificate(url: str) -> bytes:
    host, port = url.removeprefix("https://").split(":")
    return ssl.get_server_certificate((host, int(port))).encode()


def same_cert(a: bytes, b: bytes) -> bool:
    return x509.load_pem_x509_certificate(a) == x509.load_pem_x509_certificate(b)


async def get(url: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    conn = aiohttp.TCPConnector(ssl=False)  # self-signed here; the factory tests verify against the CA
    async with aiohttp.ClientSession(url, connector=conn, headers=headers) as s, s.get(path) as r:
        return r.status, await r.json()


async def test_plain_http_becomes_https_with_the_factory_login(tmp_path: Path) -> None:
    cfg = tls_cfg(tmp_path)
    svc = CameraService(cfg)
    await svc.start()
    try:
        plain, port = svc.url, svc.web.port if svc.web else 0
        assert plain.startswith("http://")
        generated = password_of(svc)
        frames_before = svc.pipeline.frames
        pipeline = svc.pipeline

        cert = provision(Path(cfg.factory_dir), "PCAM-01-00000001-6", "factory-pw")
        assert await svc.reload()

        assert svc.url == f"https://127.0.0.1:{port}"  # same port, now HTTPS
        endpoint = json.loads((Path(cfg.runtime_dir) / "endpoint.json").read_text())
        assert endpoint == {"url": svc.url, "pid": os.getpid()}
        status = (Path(cfg.runtime_dir) / "reload-status").read_text()
        assert status.startswith(f"{os.getpid()}.1 ok ") and "https://" in status
        assert same_cert(await asyncio.to_thread(served_certificate, svc.url), cert)
        with pytest.raises(aiohttp.ClientError):  # plain HTTP is no longer served
            await get(plain, "/api/health")

        # the factory login replaces the generated one (and its files), as after a restart
        code, props = await get(svc.url, "/api/properties", basic("admin", "factory-pw"))
        assert code == 200 and props["device-information"]["serial-number"] == "PCAM-01-00000001-6"
        assert (await get(svc.url, "/api/properties", basic("admin", generated)))[0] == 401
        assert not (svc.data_dir / "credentials.json").exists()
        assert not (svc.data_dir / "initial-password").exists()

        # capture and encoding were not touched
        assert svc.pipeline is pipeline
        code, health = await get(svc.url, "/api/health")
        assert code == 200 and health["frames"] >= frames_before
        await asyncio.sleep(0.5)
        assert (await get(svc.url, "/api/health"))[1]["frames"] > health["frames"]
    finally:
        await svc.stop()


async def test_bad_pair_is_refused_and_the_old_identity_kept(tmp_path: Path) -> None:
    cfg = tls_cfg(tmp_path)
    factory = Path(cfg.factory_dir)
    first = provision(factory, "PCAM-01-00000001-6", "first-pw")
    svc = CameraService(cfg)
    await svc.start()
    try:
        url = svc.url
        assert url.startswith("https://")
        # a certificate whose key is not the one next to it
        other_cert, _ = make_pair("PCAM-01-00000002-4")
        (factory / "device.crt").write_bytes(other_cert)
        (factory / "identity.json").write_text(
            json.dumps({"serial": "PCAM-01-00000002-4", "admin_password_hash": auth.hash_password("x", 1000)})
        )
        assert not await svc.reload()
        status = (Path(cfg.runtime_dir) / "reload-status").read_text()
        assert status.startswith(f"{os.getpid()}.1 failed ") and "not usable" in status
        assert svc.url == url
        assert same_cert(await asyncio.to_thread(served_certificate, url), first)
        code, props = await get(url, "/api/properties", basic("admin", "first-pw"))
        assert code == 200 and props["device-information"]["serial-number"] == "PCAM-01-00000001-6"

        # an identity.json that is not JSON: refused as well (not read as "unprovisioned")
        provision(factory, "PCAM-01-00000001-6", "first-pw", (first, (factory / "device.key").read_bytes()))
        (factory / "identity.json").write_text("{half")
        assert not await svc.reload()
        assert "identity.json unreadable" in (Path(cfg.runtime_dir) / "reload-status").read_text()
        assert (await get(url, "/api/properties", basic("admin", "first-pw")))[0] == 200

        # a key file that is not a key, and no key at all: HTTPS is not dropped either
        (factory / "identity.json").write_text(json.dumps({"serial": "PCAM-01-00000001-6"}))
        (factory / "device.key").write_text("not a key\n")
        assert not await svc.reload()
        (factory / "device.key").unlink()
        assert not await svc.reload()
        assert "missing" in (Path(cfg.runtime_dir) / "reload-status").read_text()
        assert svc.url == url and svc.identity.serial == "PCAM-01-00000001-6"
        assert (await get(url, "/api/properties", basic("admin", "first-pw")))[0] == 200
        assert same_cert(await asyncio.to_thread(served_certificate, url), first)
    finally:
        await svc.stop()


async def test_reprovisioning_updates_certificate_and_credentials(tmp_path: Path) -> None:
    cfg = tls_cfg(tmp_path)
    factory = Path(cfg.factory_dir)
    provision(factory, "PCAM-01-00000001-6", "first-pw")
    svc = CameraService(cfg)
    await svc.start()
    try:
        token = svc.auth.new_session()
        second = provision(factory, "PCAM-01-00000003-2", "second-pw")
        assert await svc.reload()
        assert same_cert(await asyncio.to_thread(served_certificate, svc.url), second)
        assert not svc.auth.session_valid(token)  # sessions of the old login end
        assert (await get(svc.url, "/api/properties", basic("admin", "first-pw")))[0] == 401
        code, props = await get(svc.url, "/api/properties", basic("admin", "second-pw"))
        assert code == 200 and props["device-information"]["serial-number"] == "PCAM-01-00000003-2"
        # nothing changed since: the listener and sessions stay
        token = svc.auth.new_session()
        assert await svc.reload()
        assert svc.auth.session_valid(token)
        assert "nothing changed" in (Path(cfg.runtime_dir) / "reload-status").read_text()
    finally:
        await svc.stop()


async def test_a_password_the_user_set_survives_provisioning(tmp_path: Path) -> None:
    cfg = tls_cfg(tmp_path)
    svc = CameraService(cfg)
    await svc.start()
    try:
        svc.auth.change_password("users-own-pw")
        provision(Path(cfg.factory_dir), "PCAM-01-00000001-6", "factory-pw")
        assert await svc.reload()
        assert (await get(svc.url, "/api/properties", basic("admin", "users-own-pw")))[0] == 200
    finally:
        await svc.stop()


async def test_reload_ends_where_a_restart_starts(tmp_path: Path) -> None:
    cfg = tls_cfg(tmp_path)
    svc = CameraService(cfg)
    await svc.start()
    cert = provision(Path(cfg.factory_dir), "PCAM-01-00000001-6", "factory-pw")
    try:
        assert await svc.reload()
        reloaded = (
            svc.url.split(":")[0],
            svc.identity,
            svc.auth.creds.username,
            svc.auth.creds.source,
            svc.auth.creds.password_hash,
        )
    finally:
        await svc.stop()
    restarted = CameraService(cfg)
    await restarted.start()
    try:
        assert (
            restarted.url.split(":")[0],
            restarted.identity,
            restarted.auth.creds.username,
            restarted.auth.creds.source,
            restarted.auth.creds.password_hash,
        ) == reloaded
        assert same_cert(await asyncio.to_thread(served_certificate, restarted.url), cert)
    finally:
        await restarted.stop()


async def test_systemd_reload_protocol_and_watchdog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """RELOADING=1 (with MONOTONIC_USEC) ... READY=1 around the reload; WATCHDOG=1 before and after."""
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.setblocking(False)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        monkeypatch.setenv("WATCHDOG_USEC", "600000")  # a ping every 0.2 s
        monkeypatch.delenv("WATCHDOG_PID", raising=False)
        cfg = tls_cfg(tmp_path)
        svc = CameraService(cfg)
        await svc.start()
        try:
            await asyncio.sleep(1.0)
            provision(Path(cfg.factory_dir), "PCAM-01-00000001-6", "factory-pw")
            assert await svc.reload()
            await asyncio.sleep(1.0)
        finally:
            await svc.stop()
        messages = []
        while True:
            try:
                messages.append(sock.recv(4096).decode())
            except BlockingIOError:
                break
    reloading = next(i for i, m in enumerate(messages) if m.startswith("RELOADING=1"))
    assert "\nMONOTONIC_USEC=" in messages[reloading]
    assert messages[0].startswith("READY=1")
    ready_again = next(i for i, m in enumerate(messages) if i > reloading and m.startswith("READY=1"))
    assert f"serving {svc.url}" in messages[ready_again]
    assert "WATCHDOG=1" in messages[1:reloading] and "WATCHDOG=1" in messages[ready_again:]


async def test_new_listener_failing_restores_the_old_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The HTTPS listener cannot start (here: the bind fails once): plain HTTP is served again on the
    same port, the reload fails with the reason, and the identity stays the old one."""
    cfg = tls_cfg(tmp_path)
    svc = CameraService(cfg)
    await svc.start()
    try:
        assert svc.web is not None
        url, listen = svc.url, svc.web._listen
        failures = []

        async def bind_fails_once(ctx: Any, port: int) -> None:
            if ctx is not None and not failures:
                failures.append(port)
                raise OSError(98, "Address already in use")
            await listen(ctx, port)

        monkeypatch.setattr(svc.web, "_listen", bind_fails_once)
        provision(Path(cfg.factory_dir), "PCAM-01-00000001-6", "factory-pw")
        assert not await svc.reload()
        assert failures and svc.url == url and svc.web.listening and not svc.identity.provisioned
        status = (Path(cfg.runtime_dir) / "reload-status").read_text()
        assert "Address already in use" in status and f"kept {url}" in status
        assert (await get(url, "/api/properties", basic("admin", password_of(svc))))[0] == 200
        assert await svc.reload()  # the next try succeeds
        assert svc.url.startswith("https://")
    finally:
        await svc.stop()
