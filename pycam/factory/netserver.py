"""The station's HTTP endpoint for its devices: the network self-test uploads to /upload and downloads
from /download?bytes=N; the video self-test posts its snapshots to /frames/<key> (analysed on the
station, not on the device's small CPU). One server per station, shared by its devices."""

from __future__ import annotations

import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BLOCK = bytes(range(256)) * 256  # 64 KiB


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    frames: dict[str, bytes]

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        left = int(self.headers.get("Content-Length", "0"))
        got = 0
        keep = self.path.startswith("/frames/") and left <= 8 << 20
        parts = []
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                break
            got += len(chunk)
            left -= len(chunk)
            if keep:
                parts.append(chunk)
        if keep:
            self.frames[self.path.removeprefix("/frames/")] = b"".join(parts)
        body = str(got).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        size = min(int(query.get("bytes", ["0"])[0]), 1 << 30)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        while size > 0:
            n = min(size, len(BLOCK))
            self.wfile.write(BLOCK[:n])
            size -= n


class NetServer:
    def __init__(self, bind: str = "0.0.0.0", port: int = 0) -> None:
        self.frames: dict[str, bytes] = {}
        handler = type("Handler", (_Handler,), {"frames": self.frames})
        self.httpd = ThreadingHTTPServer((bind, port), handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="factory-netserver", daemon=True)
        self._thread.start()

    def take_frame(self, key: str) -> bytes | None:
        return self.frames.pop(key, None)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
