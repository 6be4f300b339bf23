"""Fuzz the HTTP API from its own OpenAPI description with hypothesis.

For every operation: schema-valid and arbitrary JSON bodies, path and query values, with and without
credentials. The service must never answer 5xx, never serve a protected operation without credentials,
and keep producing frames.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import Server, small_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycam_app.web import openapi

SKIP = {"/api/login", "/api/password", "/api/logout"}  # would lock the fuzzer out / end its session
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A strategy for values matching a (small) JSON schema."""
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    t = schema.get("type")
    if t == "boolean":
        return st.booleans()
    if t == "integer":
        return st.integers(int(schema.get("minimum", -(2**31))), int(schema.get("maximum", 2**31)))
    if t == "number":
        return st.floats(schema.get("minimum"), schema.get("maximum"), allow_nan=False, allow_infinity=False)
    if t == "string":
        return st.text(min_size=schema.get("minLength", 0), max_size=20)
    if t == "array":
        return st.lists(from_schema(schema.get("items", {})), max_size=min(3, schema.get("maxItems", 3)))
    if t == "object":
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {k: from_schema(v) for k, v in props.items() if k in required},
            optional={k: from_schema(v) for k, v in props.items() if k not in required},
        )
    return JSON_VALUES


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    ops = []
    for path, item in openapi.document()["paths"].items():
        if path in SKIP or item.get("get", {}).get("x-streaming"):
            continue
        for method, op in item.items():
            if method in ("get", "put", "post", "delete") and not op.get("x-streaming"):
                ops.append((method.upper(), path, op))
    return ops


OPS = operations()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(small_config(tmp_path_factory.mktemp("fuzz")))
    yield s
    s.close()


@st.composite
def requests(draw: st.DrawFn, op: tuple[str, str, dict[str, Any]]) -> tuple[str, str, Any, bytes | None]:
    method, path, spec = op
    query = {}
    for p in spec.get("parameters", []):
        value = draw(
            st.one_of(from_schema(p["schema"]), st.text(max_size=10))
            if p["in"] != "path"
            else st.one_of(st.integers(0, 10**20).map(str), st.text(min_size=1, max_size=10))
        )
        if p["in"] == "path":
            path = path.replace("{" + p["name"] + "}", urllib.parse.quote(str(value), safe=""))
        elif draw(st.booleans()):
            query[p["name"]] = value if isinstance(value, str) else json.dumps(value)
    if query:
        path += "?" + urllib.parse.urlencode(query)
    body: Any = None
    raw: bytes | None = None
    if "requestBody" in spec:
        schema = spec["requestBody"]["content"]["application/json"]["schema"]
        choice = draw(st.integers(0, 2))
        if choice == 0:
            body = draw(from_schema(schema))
        elif choice == 1:
            body = draw(JSON_VALUES)
        else:
            raw = draw(st.binary(max_size=40))
    return method, path, body, raw


@pytest.mark.parametrize("op", OPS, ids=[f"{m} {p}" for m, p, _ in OPS])
def test_operation_never_fails_or_leaks(server: Server, op: tuple[str, str, dict[str, Any]]) -> None:
    public = op[2].get("security") == []

    @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(req=requests(op))
    def run(req: tuple[str, str, Any, bytes | None]) -> None:
        method, path, body, raw = req
        status, content = server.request(method, path, body, raw=raw)
        assert status < 500, (method, path, body, content[:200])
        status, content = server.request(method, path, body, auth=False, raw=raw)
        assert status < 500
        if not public:
            assert status == 401, (method, path, status)

    run()


def test_service_survived_the_fuzzing(server: Server) -> None:
    before = server.svc.pipeline.frames
    time.sleep(0.5)
    status, body = server.request("GET", "/api/health", auth=False)
    assert status == 200 and json.loads(body)["status"] == "ok"
    assert server.svc.pipeline.frames > before
