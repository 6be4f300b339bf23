"""The live view in a real headless Chromium (Debian's /usr/bin/chromium driven by playwright).

A frame is actually decoded and displayed: video time advances, and a canvas read of the picture shows
the synthetic test pattern (colour bars) and its frame counter stamp, which keeps increasing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import CHROMIUM, CHROMIUM_FLAGS, Server, password_of, small_config

# Reads the picture from the <video> element: colour of each bar at 60% height, and the stamp.
READ_PICTURE = """() => {
  const v = document.getElementById('video');
  const c = document.createElement('canvas');
  c.width = v.videoWidth; c.height = v.videoHeight;
  const ctx = c.getContext('2d');
  ctx.drawImage(v, 0, 0);
  const bars = [];
  for (let i = 0; i < 8; i++) {
    const x = Math.floor((i + 0.5) * c.width / 8), y = Math.floor(c.height * 0.6);
    bars.push(Array.from(ctx.getImageData(x, y, 1, 1).data.slice(0, 3)));
  }
  const stamp = PycamStamp.fromCanvas(ctx, c.width, c.height);
  return {w: c.width, h: c.height, time: v.currentTime, bars, stamp};
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    cfg = small_config(
        tmp_path_factory.mktemp("browser"),
        main={"width": 640, "height": 360, "fps": 15, "bitrate": 800_000, "keyframe_interval": 1.0},
        sub={"width": 320, "height": 180, "fps": 10, "bitrate": 200_000, "keyframe_interval": 1.0},
    )
    s = Server(cfg)
    yield s
    s.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt install chromium; listed in app/host-packages.txt)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip: app[dev])")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield b
        b.close()


def login(browser: Any, server: Server) -> Any:
    page = browser.new_page()
    page.goto(f"http://{server.host}:{server.port}/?stats=1&stream=main")
    assert "/login" in page.url  # not logged in: sent to the login page
    page.fill("#password", password_of(server.svc))
    page.click("button[type=submit]")
    page.wait_for_url(f"http://{server.host}:{server.port}/?stats=1&stream=main")
    return page


def test_live_view_decodes_and_displays_h264(browser: Any, server: Server) -> None:
    page = login(browser, server)
    assert page.evaluate("MediaSource.isTypeSupported('video/mp4; codecs=\"avc1.42c01e\"')"), (
        "this Chromium cannot play H.264 in MSE"
    )
    page.wait_for_function("window.pycam.stats.decoded >= 10", timeout=30_000)
    first = page.evaluate(READ_PICTURE)
    page.wait_for_timeout(1000)
    second = page.evaluate(READ_PICTURE)
    assert (first["w"], first["h"]) == (640, 360)
    assert second["time"] > first["time"], "video time must advance"
    assert first["stamp"] and second["stamp"], "stamp unreadable in the displayed picture"
    assert second["stamp"]["counter"] >= first["stamp"]["counter"] + 5
    white, yellow, cyan, green, magenta, red, blue, black = second["bars"]
    assert min(white) > 150 and max(black) < 60
    assert yellow[0] > 120 and yellow[1] > 120 and yellow[2] < 80
    assert cyan[1] > 120 and cyan[2] > 120 and cyan[0] < 80
    assert red[0] > 120 and red[1] < 80 and blue[2] > 120 and blue[0] < 80
    assert green[1] > 100 and magenta[0] > 120 and magenta[2] > 120
    stats = page.evaluate("window.pycam.stats")
    latencies = sorted(stats["latencies"])
    assert latencies and latencies[len(latencies) // 2] < 2000  # sanity only; the benchmark measures it
    page.close()


def test_mjpeg_fallback_shows_pictures(browser: Any, server: Server) -> None:
    page = login(browser, server)
    page.select_option("#mode", "mjpeg")
    page.wait_for_function("document.getElementById('mjpeg').naturalWidth === 320", timeout=20_000)
    page.close()


def test_controls_and_recording_playback(browser: Any, server: Server) -> None:
    page = login(browser, server)
    page.wait_for_selector("#prop-camera-control-night-shot")
    page.select_option("#prop-camera-control-night-shot", "on")
    page.wait_for_function("document.getElementById('events').textContent.includes('night-shot')")
    assert server.svc.model.values["camera-control.night-shot"] == "on"
    page.click("button:text('start-recording')")
    page.wait_for_timeout(1500)
    page.click("button:text('stop-recording')")
    page.wait_for_selector("#recordings li:has-text('closed')", timeout=10_000)
    page.click("#recordings li:has-text('closed')")
    page.wait_for_function(
        "document.getElementById('playback').readyState >= 2 && document.getElementById('playback').videoWidth === 640",
        timeout=15_000,
    )
    page.close()
