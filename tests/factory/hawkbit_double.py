"""TEST DOUBLE of hawkBit's Management API (no hawkBit server can run here): the one call the factory
line makes, POST /rest/v1/targets, as the published API defines it (MgmtTargetRestApi /
MgmtTargetRequestBody in eclipse-hawkbit): HTTP Basic authentication, a JSON list of
{controllerId, name, description, securityToken, ...}, 201 with the created targets (hal+json),
409 with errorCode hawkbit.server.error.repo.entitiyAlreadyExists for a controllerId that exists,
401 without valid credentials, 400 for a body that is not a list of targets with controllerId and name.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class HawkbitDouble:
    def __init__(self, user: str = "admin", password: str = "admin") -> None:
        self.credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.targets: dict[str, dict[str, Any]] = {}
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def reply(self, code: int, doc: object) -> None:
                body = json.dumps(doc).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/hal+json;charset=UTF-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                if self.path != "/rest/v1/targets":
                    return self.reply(404, {"errorCode": "hawkbit.server.error.notFound"})
                if self.headers.get("Authorization") != f"Basic {double.credentials}":
                    return self.reply(401, {"error": "Unauthorized"})
                try:
                    items = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                    assert isinstance(items, list) and all("controllerId" in t and "name" in t for t in items)
                except (ValueError, AssertionError):
                    return self.reply(400, {"errorCode": "hawkbit.server.error.rest.body.notReadable"})
                for t in items:
                    if t["controllerId"] in double.targets:
                        return self.reply(409, {"exceptionClass": "EntityAlreadyExistsException",
                                                "errorCode": "hawkbit.server.error.repo.entitiyAlreadyExists",
                                                "message": "The given entity already exists in database"})
                created = []
                for t in items:
                    now = int(time.time() * 1000)
                    target = {"controllerId": t["controllerId"], "name": t["name"],
                              "description": t.get("description", ""), "securityToken": t.get("securityToken", ""),
                              "createdAt": now, "lastModifiedAt": now, "updateStatus": "unknown",
                              "_links": {"self": {"href": f"http://localhost/rest/v1/targets/{t['controllerId']}"}}}
                    double.targets[t["controllerId"]] = target
                    created.append(target)
                return self.reply(201, created)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
