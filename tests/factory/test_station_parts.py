"""Station parts on the host: factory CA checks and signing, the OTA config and hawkBit registration
(against a test double of the Management API), the self-test verdicts, reports, label and summary."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pycam.errors import PycamError
from pycam.factory import hawkbit, report, selftest
from pycam.factory.ca import FactoryCA, init_ca
from pycam.factory.config import Limits, LineConfig
from pycam.factory.db import StationDB
from pycam.factory.station import Outcome, hash_password
from tests.factory.hawkbit_double import HawkbitDouble


def csr_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pycam-unprovisioned")])).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM)


def test_sign_names_the_did_and_verifies_with_openssl(factory_ca: FactoryCA, ca_dir: Path, tmp_path: Path) -> None:
    cert = factory_ca.sign(csr_pem(), "PCAM-01-00000001-6", "pcam-01-00000001-6", "02:50:43:00:00:00", 365)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "PCAM-01-00000001-6"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "pcam-01-00000001-6" in san.get_values_for_type(x509.DNSName)
    (tmp_path / "d.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    subprocess.run(["openssl", "verify", "-CAfile", str(ca_dir / "ca.crt"), str(tmp_path / "d.crt")], check=True,
                   capture_output=True)


def test_bad_ca_refused(tmp_path: Path, factory_ca: FactoryCA) -> None:
    with pytest.raises(PycamError, match="factory CA missing"):
        FactoryCA.load(tmp_path / "nothing")
    other = init_ca(tmp_path / "other")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "ca.crt").write_bytes((other / "ca.crt").read_bytes())
    (mixed / "ca.key").write_bytes(factory_ca.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with pytest.raises(PycamError, match="key does not match"):
        FactoryCA.load(mixed)
    leaf = factory_ca.sign(csr_pem(), "PCAM-01-00000001-6", "h", "02:00:00:00:00:00", 30)
    not_ca = dataclasses.replace(factory_ca, cert=leaf)
    with pytest.raises(PycamError, match="not a CA certificate"):
        not_ca.check()
    with pytest.raises(PycamError, match="not valid now"):
        factory_ca.check(at=dt.datetime.now(dt.UTC) + dt.timedelta(days=4000))
    with pytest.raises(PycamError, match="unreadable CSR"):
        factory_ca.sign(b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
                        "X", "x", "02:00:00:00:00:00", 1)


def test_password_hash_is_the_apps_format() -> None:
    auth = pytest.importorskip("pycam_app.auth")
    assert auth.verify_password("s3cret-pass", hash_password("s3cret-pass"))
    assert not auth.verify_password("wrong", hash_password("s3cret-pass"))


def test_hawkbit_conf_is_rauc_hawkbit_updater_format(line: LineConfig) -> None:
    import configparser

    text = hawkbit.config_text(line.ota, "PCAM-01-00000001-6", "tok123", "02:50:43:00:00:00", "M", "1")
    cp = configparser.ConfigParser()
    cp.read_string(text)
    assert cp["client"]["target_name"] == "PCAM-01-00000001-6" and cp["client"]["auth_token"] == "tok123"
    assert cp["client"]["ssl"] == "true" and cp["device"]["mac_address"] == "02:50:43:00:00:00"
    for key in ("hawkbit_server", "tenant_id", "bundle_download_location"):
        assert cp["client"][key]


@pytest.fixture
def hawkbit_double(monkeypatch: pytest.MonkeyPatch) -> Iterator[HawkbitDouble]:
    d = HawkbitDouble("factory", "pw")
    monkeypatch.setenv("HAWKBIT_USER", "factory")
    monkeypatch.setenv("HAWKBIT_PASSWORD", "pw")
    yield d
    d.close()


def test_hawkbit_registration(line: LineConfig, hawkbit_double: HawkbitDouble, monkeypatch) -> None:
    """Against the labelled test double of hawkBit's Management API."""
    ota = dataclasses.replace(line.ota, register=True, management_url=hawkbit_double.url)
    got = hawkbit.register(ota, "PCAM-01-00000001-6", "tok", "from test")
    assert got["controllerId"] == "PCAM-01-00000001-6"
    assert hawkbit_double.targets["PCAM-01-00000001-6"]["securityToken"] == "tok"
    with pytest.raises(PycamError, match="already has a target"):
        hawkbit.register(ota, "PCAM-01-00000001-6", "tok2", "again")
    monkeypatch.setenv("HAWKBIT_PASSWORD", "wrong")
    with pytest.raises(PycamError, match="HTTP 401"):
        hawkbit.register(ota, "PCAM-01-00000002-4", "tok", "x")
    monkeypatch.delenv("HAWKBIT_USER")
    with pytest.raises(PycamError, match="not configured"):
        hawkbit.register(ota, "PCAM-01-00000002-4", "tok", "x")


def test_not_applicable_hardware_is_never_passed() -> None:
    run, na = selftest.applicable({"camera": "v4l2", "audio": False, "button": False, "ir": False, "ptz": False,
                                   "network": "ethernet"})
    assert set(na) == {"audio", "button", "ir", "ptz"} and "video" in run
    results = selftest.evaluate({}, na, Limits(), {}, None)
    by = {r.test: r for r in results}
    assert {by[t].verdict for t in na} == {"n/a"}
    assert by["video"].verdict == "fail"  # not measured is a failure, not a pass
    assert "clock" not in by


def test_verdicts_against_limits() -> None:
    lim = Limits()
    measured = {
        "video": {"value": {"mean_luma": 120.0, "stddev_luma": 50.0, "changed_pixels_pct": 0.5,
                            "frames_advanced": 15, "fps": 10}, "unit": ""},
        "network": {"value": {"upload_mbit_s": 80.0, "download_mbit_s": 9.0}, "unit": "Mbit/s"},
        "storage": {"value": {"write_mb_s": 50.0, "read_mb_s": 200.0, "verified": True}, "unit": "MB/s"},
        "watchdog": {"value": {"device": True, "runtime_watchdog": "20s", "identity": "i6300ESB timer"}},
        "firmware": {"value": {"version": "0.1.0", "booted": "A", "compatible": "x"}},
        "tls": {"value": "ab" * 32},
    }
    by = {r.test: r for r in selftest.evaluate(measured, {}, lim, {"version": "0.1.0", "cert_sha256": "ab" * 32},
                                               0.4)}
    assert by["video"].verdict == "pass" and by["storage"].verdict == "pass" and by["tls"].verdict == "pass"
    assert by["network"].verdict == "fail" and "down 9.0" in by["network"].value and ">= 10" in by["network"].limit
    assert by["clock"].verdict == "pass" and by["clock"].value == "+0.40"
    black = dict(measured, video={"value": {"mean_luma": 2.0, "stddev_luma": 0.5, "changed_pixels_pct": 0.0,
                                            "frames_advanced": 15, "fps": 10}})
    frozen = dict(measured, video={"value": {"mean_luma": 120.0, "stddev_luma": 50.0, "changed_pixels_pct": 0.0,
                                             "frames_advanced": 0, "fps": 0}})
    for case in (black, frozen):
        assert {r.test: r for r in selftest.evaluate(case, {}, lim, {}, None)}["video"].verdict == "fail"
    wrong_fw = dict(measured, firmware={"value": {"version": "0.0.9", "booted": "A"}})
    assert {r.test: r for r in selftest.evaluate(wrong_fw, {}, lim, {"version": "0.1.0"}, None)}[
        "firmware"].verdict == "fail"


def test_reports_label_and_summary(line: LineConfig) -> None:
    db = StationDB(line.database)
    a = db.allocate(line.did, line.mac, line.station, "hw-1")
    db.set_status(a.did, "provisioned")
    b = db.allocate(line.did, line.mac, line.station, "hw-2")
    db.set_status(b.did, "void", "write: device lost")
    res = selftest.evaluate({}, {"ptz": "board has no ptz"}, Limits(), {}, None)
    out = Outcome("dut1", "fail", a.did, a.mac, "hw-1", "selftest", "", 42.0, {"write": 1.2}, res,
                  admin_password="pw-123")
    out.report_dir = report.device_report(line, out)
    run = db.start_run(line.station)
    db.finish_run(run, did=a.did, hw_id="hw-1", outcome="fail", failed_step="selftest", error="", seconds=42.0,
                  steps={}, report=str(out.report_dir), results=res)
    run2 = db.start_run(line.station)
    db.finish_run(run2, did="", hw_id="hw-3", outcome="refused", failed_step="connect", error="already provisioned",
                  seconds=1.0, steps={}, report="", results=[])
    label = (out.report_dir / "label.svg").read_text()
    assert a.did in label and a.mac in label and "<svg" in label
    assert report.qr_payload(a.did, a.mac, line.model) == f"PYCAM;DID:{a.did};MAC:{a.mac};MODEL:{line.model};"
    page = (out.report_dir / "report.html").read_text()
    assert "n/a" in page and "FAIL" in page
    csv_path, html_path = report.summary(line, db)
    rows = list(csv.DictReader(csv_path.open()))
    assert [r["outcome"] for r in rows] == ["fail", "refused"] and rows[0]["ptz"] == "n/a"
    text = html_path.read_text()
    assert "first-pass yield" in text and b.did in text and "write: device lost" in text and "video" in text


def _jpeg(pixels) -> bytes:  # type: ignore[no-untyped-def]
    import io

    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="mjpeg") as out:
        stream = out.add_stream("mjpeg")
        stream.width, stream.height, stream.pix_fmt = pixels.shape[1], pixels.shape[0], "yuvj420p"
        frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def test_snapshot_analysis_black_flat_frozen_and_moving() -> None:
    """The station's video measurement on JPEGs: the numbers the limits then judge."""
    np = pytest.importorskip("numpy")
    from pycam.factory import frames

    bars = np.zeros((180, 320, 3), np.uint8)
    for i, colour in enumerate([(255, 255, 255), (255, 255, 0), (0, 255, 255), (0, 255, 0), (255, 0, 255)]):
        bars[:, i * 64:(i + 1) * 64] = colour
    moved = bars.copy()
    moved[10:40, 10:120] = 0  # a changing overlay (timestamp) in the second snapshot
    black = np.zeros_like(bars)
    m = frames.measure(_jpeg(bars), _jpeg(moved))
    assert m["mean_luma"] > 100 and m["stddev_luma"] > 30 and m["changed_pixels_pct"] > 1
    assert frames.measure(_jpeg(bars), _jpeg(bars))["changed_pixels_pct"] == 0
    dark = frames.measure(_jpeg(black), _jpeg(black))
    assert dark["mean_luma"] < 5 and dark["stddev_luma"] < 2
    lim = Limits()
    for value, verdict in ((m, "pass"), (dark, "fail"), ({**m, "changed_pixels_pct": 0.0}, "fail")):
        res = selftest.evaluate({"video": {"value": {**value, "frames_advanced": 10}}}, {}, lim, {}, None)
        assert {r.test: r.verdict for r in res}["video"] == verdict


def test_netserver_keeps_posted_frames() -> None:
    import urllib.request

    from pycam.factory.netserver import NetServer

    net = NetServer("127.0.0.1")
    try:
        req = urllib.request.Request(f"http://127.0.0.1:{net.port}/frames/k-1", data=b"jpegbytes", method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.read() == b"9"
        with urllib.request.urlopen(f"http://127.0.0.1:{net.port}/download?bytes=100000", timeout=10) as r:
            assert len(r.read()) == 100000
        assert net.take_frame("k-1") == b"jpegbytes" and net.take_frame("k-1") is None
    finally:
        net.close()
