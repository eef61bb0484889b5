"""Property-based conformance: ByteNite Local against its own OpenAPI document.

Every operation (the streaming ``/events`` excepted) gets generated requests, valid and not;
the server must never answer 5xx, and every answer must be a documented status with a body
matching the documented schema.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from bytenite_nb.server.config import ServerConfig
from bytenite_nb.server.http.app import create_app

KEY = "schemathesis-key"
_DATA = tempfile.TemporaryDirectory(prefix="bytenite-schemathesis-")
APP = create_app(ServerConfig(data_dir=Path(_DATA.name), api_keys=(KEY,), workers=1))
TOKEN, _ = APP.state.ctx.auth.issue(KEY)

schema = (
    schemathesis.openapi.from_asgi("/openapi.json", APP)
    .exclude(path_regex=r".*/events$")
    # /v1/computing serves the very same routes: testing them once is enough.
    .exclude(path_regex=r"^/v1/computing/")
)

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture(scope="module", autouse=True)
def _close_server() -> Iterator[None]:
    yield
    APP.state.ctx.close()
    _DATA.cleanup()


def test_openapi_marks_every_extension() -> None:
    doc = APP.openapi()
    extension_paths = {path for path, item in doc["paths"].items()
                       for op in item.values() if op.get("x-bytenite-local-extension")}
    assert {"/v1/customer/jobs/{jobId}/tasks", "/local/results/{token}/{filename}",
            "/local/uploads/{token}", "/v1/computing/jobs/{jobId}/tasks",
            "/local/cache/{token}", "/v1/dev/cache", "/v1/dev/cache/{path}"} <= extension_paths
    assert all("extension" in op.get("tags", []) for path in extension_paths
               for op in doc["paths"][path].values())
    for item in doc["paths"].values():
        for op in item.values():
            assert "422" not in op["responses"]
            assert all(code.isdigit() for code in op["responses"])


@schema.parametrize()
@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_document(case: schemathesis.Case) -> None:
    case.call_and_validate(headers={"Authorization": TOKEN}, checks=CHECKS)
