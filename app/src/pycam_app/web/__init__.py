"""HTTP/WebSocket front end (aiohttp)."""
