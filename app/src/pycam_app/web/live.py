"""Live view: H.264 as fragmented MP4 over WebSocket (for Media Source Extensions), MJPEG fallback, snapshots.

WebSocket protocol (/api/live/{stream}): one text message {"type": "init", "codec", "width", "height",
"fps"}, then binary messages: the MP4 init segment, then one moof+mdat fragment per frame, starting at the
latest keyframe. A viewer that falls behind skips to the next keyframe instead of buffering.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

import av
from aiohttp import WSMsgType, web

from .. import fmp4
from ..jpeg import JpegEncoder
from ..streams import Packet

if TYPE_CHECKING:
    from ..service import CameraService

log = logging.getLogger(__name__)

BACKLOG_S = 2.0  # a viewer more than this behind drops to the next keyframe


class MjpegHub:
    """JPEG frames of the sub stream, encoded only while someone watches (at most max_fps)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, jpeg: JpegEncoder, max_fps: float = 10.0) -> None:
        self._loop = loop
        self._jpeg = jpeg
        self._period = 1.0 / max_fps
        self._next = 0.0
        self.clients = 0
        self.latest: bytes = b""
        self.version = 0
        self._cond = asyncio.Condition()

    def offer(self, frame: av.VideoFrame) -> None:
        """Pipeline thread: encode if anyone watches and the rate allows."""
        now = time.monotonic()
        if self.clients <= 0 or now < self._next:
            return
        self._next = now + self._period * 0.7
        data = self._jpeg.encode(frame)
        self._loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self._publish(data)))

    async def _publish(self, data: bytes) -> None:
        async with self._cond:
            self.latest = data
            self.version += 1
            self._cond.notify_all()

    async def next(self, seen: int) -> tuple[int, bytes]:
        async with self._cond:
            await self._cond.wait_for(lambda: self.version != seen)
            return self.version, self.latest


class LiveHandlers:
    def __init__(self, svc: CameraService) -> None:
        self.svc = svc
        self.hub: MjpegHub | None = None
        self._sockets: set[web.WebSocketResponse] = set()

    def register(self, r: web.UrlDispatcher) -> None:
        r.add_get("/api/live/{stream}", self.live)
        r.add_get("/api/mjpeg", self.mjpeg)
        r.add_get("/snapshot.jpg", self.snapshot)

    def _stream(self, request: web.Request) -> Any:
        name = request.match_info.get("stream", "main")
        stream = self.svc.pipeline.streams.get(name)
        if stream is None:
            raise KeyError(f"no stream {name!r}; streams: main, sub")
        return stream

    async def live(self, request: web.Request) -> web.StreamResponse:
        stream = self._stream(request)
        ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=4096)
        await ws.prepare(request)
        loop = asyncio.get_running_loop()
        q: asyncio.Queue[Packet] = asyncio.Queue(max(4, int(stream.fps * BACKLOG_S)))
        state = {"skip": False}

        def put(p: Packet) -> None:  # event loop
            if q.full():
                while not q.empty():
                    q.get_nowait()
                state["skip"] = True
            q.put_nowait(p)

        def on_packet(p: Packet) -> None:  # pipeline thread
            loop.call_soon_threadsafe(put, p)

        self._sockets.add(ws)
        self.svc.clients += 1
        unsubscribe = None
        reader = asyncio.ensure_future(self._drain(ws))
        try:
            while stream.sps is None:  # wait for the first keyframe's parameter sets
                if reader.done():
                    return ws
                await asyncio.sleep(0.05)
            unsubscribe = stream.subscribe_from_keyframe(on_packet)
            await ws.send_json(
                {
                    "type": "init",
                    "codec": stream.codec_string(),
                    "width": stream.width,
                    "height": stream.height,
                    "fps": stream.fps,
                }
            )
            await ws.send_bytes(fmp4.init_segment(stream.width, stream.height, stream.sps, stream.pps))
            mux = fmp4.LiveMuxer(stream.fps)
            waiting_key = True
            while not reader.done():
                get = asyncio.ensure_future(q.get())
                done, _ = await asyncio.wait({get, reader}, return_when=asyncio.FIRST_COMPLETED)
                if get not in done:
                    get.cancel()
                    break
                p = get.result()
                if state["skip"]:
                    state["skip"], waiting_key = False, True
                if waiting_key:
                    if not p.key:
                        continue
                    waiting_key = False
                await ws.send_bytes(mux.fragment(p.data, p.pts, p.key))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            if unsubscribe:
                unsubscribe()
            reader.cancel()
            self._sockets.discard(ws)
            self.svc.clients -= 1
            await ws.close()
        return ws

    async def _drain(self, ws: web.WebSocketResponse) -> None:
        # Reading is what notices a closed socket; clients send nothing we need.
        async for msg in ws:
            if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                break

    async def mjpeg(self, request: web.Request) -> web.StreamResponse:
        """multipart/x-mixed-replace JPEG stream of the sub stream (for browsers without MSE/H.264)."""
        if self.hub is None:
            self.hub = MjpegHub(asyncio.get_running_loop(), self.svc.jpeg)
            self.svc.mjpeg = self.hub
        hub = self.hub
        resp = web.StreamResponse(
            headers={"Content-Type": "multipart/x-mixed-replace; boundary=pycamframe", "Cache-Control": "no-store"}
        )
        await resp.prepare(request)
        hub.clients += 1
        self.svc.clients += 1
        try:
            seen = 0  # version 0 = nothing encoded yet
            while True:
                seen, data = await hub.next(seen)
                await resp.write(
                    b"--pycamframe\r\nContent-Type: image/jpeg\r\nContent-Length: "
                    + str(len(data)).encode()
                    + b"\r\n\r\n"
                    + data
                    + b"\r\n"
                )
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            hub.clients -= 1
            self.svc.clients -= 1
        return resp

    async def snapshot(self, request: web.Request) -> web.StreamResponse:
        name = request.query.get("stream", "main")
        if name not in ("main", "sub"):
            raise KeyError(f"no stream {name!r}; streams: main, sub")
        data = await self.svc.snapshot(name)
        if data is None:
            return web.json_response({"error": "no frame captured yet"}, status=503, headers={"Retry-After": "1"})
        return web.Response(body=data, content_type="image/jpeg", headers={"Cache-Control": "no-store"})

    async def close_all(self) -> None:
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.close()
