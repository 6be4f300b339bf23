"""Event bus: property changes, motion, recordings. Fan-out to SSE clients; thread-safe publish."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from typing import Any

QUEUE_MAX = 256  # per subscriber; a client that stops reading loses events, not memory


class EventBus:
    def __init__(self, loop: asyncio.AbstractEventLoop, history: int = 100) -> None:
        self._loop = loop
        self._subs: set[asyncio.Queue[dict[str, Any]]] = set()
        self.recent: deque[dict[str, Any]] = deque(maxlen=history)
        self._ids = itertools.count(1)

    def publish(self, service: str, name: str, data: dict[str, Any] | None = None) -> None:
        """Callable from any thread."""
        event = {"id": next(self._ids), "time": time.time(), "service": service, "event": name, "data": data or {}}
        if self._in_loop():
            self._deliver(event)
        else:
            self._loop.call_soon_threadsafe(self._deliver, event)

    def _in_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def _deliver(self, event: dict[str, Any]) -> None:
        self.recent.append(event)
        for q in list(self._subs):
            if q.full():
                q.get_nowait()  # drop the oldest for a slow client
            q.put_nowait(event)

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_MAX)
        self._subs.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[dict[str, Any]]) -> None:
        self._subs.discard(q)

    @property
    def subscriber_count(self) -> int:
        return len(self._subs)
