"""The API keeps to its own OpenAPI schema: schemathesis (the chosen tool) generates requests from the schema,
valid and invalid, at the real server (uvicorn, the test database) with a real token, and follows the schema's
links from a new run to its pages (stateful). No answer may be a 5xx, or an answer the schema does not
describe (status, content type, headers, body). Bounded: a fixed seed and a few examples per operation."""

from __future__ import annotations

import subprocess
import sys

import pytest

from agents.services import run_start
from console.services import api_token_create
from tests.factories import RENEWAL_GOAL, advance

CHECKS = ["not_a_server_error", "status_code_conformance", "content_type_conformance", "response_headers_conformance",
          "response_schema_conformance", "negative_data_rejection", "missing_required_header", "ignored_auth",
          "unsupported_method", "use_after_free", "ensure_resource_availability"]


@pytest.mark.timeout(300)
def test_the_api_answers_as_its_schema_says(transactional_db, cast, renewals, console_server, tmp_path):
    token = api_token_create(tenant=cast.acme, name="schemathesis", actor=cast.admin).secret  # an admin: approvals too
    for _ in range(2):  # something to read, decide and assign
        advance(run_start(tenant=cast.acme, agent=renewals, goal=RENEWAL_GOAL, requested_by=cast.member))
    command = [sys.executable, "-m", "schemathesis.cli", "run", f"{console_server}/api/v1/openapi.json",
               "--header", f"Authorization: Bearer {token}", "--checks", ",".join(CHECKS),
               "--phases", "examples,coverage,fuzzing,stateful", "--max-examples", "40", "--seed", "20260101",
               "--workers", "1", "--request-timeout", "20", "--no-shrink", "--warnings", "off",
               "--generation-database", "none"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=280, cwd=tmp_path,
                            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "NO_COLOR": "1", "COLUMNS": "160"})
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "No issues found" in output, output[-30_000:]
    assert "Stateful" in output and "Coverage" in output and "Fuzzing" in output
