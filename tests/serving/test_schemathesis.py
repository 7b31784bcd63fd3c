"""Property-based run over the OpenAPI schema: whatever the input, never a 5xx, always the schema.

Schemathesis generates requests for every documented operation (a bounded number each) and
sends them to the app in-process with its lifespan running; every answer must be below 500 and
match the documented status codes, content types and response schemas.
"""

from __future__ import annotations

from typing import Any

import hypothesis
import schemathesis
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from serving.main import create_app
from tests.serving.world import publish

EXAMPLES_PER_OPERATION = 12
CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]


def test_api_never_answers_5xx_and_matches_its_schema(
    settings: Any, published: str, keys: dict[str, str], redis_client: Any
) -> None:
    publish(redis_client, "customer")  # both targets live: "nothing published" cannot occur
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(settings))
    headers = {"X-API-Key": keys["admin"]}
    seen = []

    try:
        for result in schema.get_all_operations():
            operation = result.ok()
            seen.append(f"{operation.method.upper()} {operation.path}")

            @hypothesis.given(case=operation.as_strategy())
            @hypothesis.settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(hypothesis.HealthCheck),
            )
            def run(case: Any) -> None:
                response = case.call(headers=headers)
                assert response.status_code < 500, (case.method, case.formatted_path, response.text)
                case.validate_response(response, checks=CHECKS, headers=headers)

            run()
    finally:
        asgi.shutdown_lifespans()
    assert "GET /v1/agents/{agent_id}/picks" in seen and len(seen) >= 12
