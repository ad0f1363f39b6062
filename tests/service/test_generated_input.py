"""Generated requests over the whole API, from its own OpenAPI document (schemathesis).

Every operation gets generated cases, valid and invalid (schema-violating); each case is
sent with
each role's key and with none. No answer may be a 5xx, every error must be
``application/problem+json`` with a stable ``code``, and every answer must match
the documented status codes, content types and schemas. The number of cases
per operation is written to bench/results/schemathesis.json.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import update

from service.store.models import ApiKey
from tests.factories import Api

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results" / "schemathesis.json"
CODE = re.compile(r"^[a-z][a-z0-9_]*$")
CASES: Counter[str] = Counter()
ROLES = ("admin", "trainer", "pipeline", None)
# Cases per operation, valid and invalid, each sent four times (three roles, no key);
# CLAIMSIEVE_FUZZ_EXAMPLES for a longer run.
EXAMPLES = int(os.environ.get("CLAIMSIEVE_FUZZ_EXAMPLES", "25"))

pytestmark = pytest.mark.slow

# NDJSON uploads are documented as a string body: sent as its text.
schemathesis.serializer.alias("application/x-ndjson", "text/plain")


@pytest.fixture(scope="module", autouse=True)
def _write_counts() -> Iterator[None]:
    yield
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {"cases_per_operation": dict(sorted(CASES.items())), "total": sum(CASES.values())},
            indent=2,
        )
        + "\n"
    )


def problem_json(response: Any) -> None:
    """Every error is application/problem+json with a stable code."""
    if response.status_code < 400:
        return
    content_type = response.headers.get("content-type", [""])
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    assert content_type.startswith("application/problem+json"), (
        f"{response.status_code} answered as {content_type!r}: {response.text[:300]}"
    )
    body = json.loads(response.text)
    assert CODE.match(str(body.get("code"))), body
    assert body["status"] == response.status_code, body


def test_generated_requests_get_documented_answers(api: Api) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.client.app)
    failures: list[str] = []
    for found in schema.get_all_operations():
        operation = found.ok()

        @given(
            case=st.one_of(
                operation.as_strategy(GenerationMode.POSITIVE),
                operation.as_strategy(GenerationMode.NEGATIVE),
            )
        )
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case: Any) -> None:
            CASES[case.operation.label] += 1
            for role in ROLES:
                headers = api.headers(role) if role else {}
                response = case.call(headers=headers)
                case.validate_response(
                    response,
                    checks=[
                        not_a_server_error,
                        status_code_conformance,
                        content_type_conformance,
                        response_schema_conformance,
                    ],
                )
                problem_json(response)
                if role == "admin":  # a generated DELETE /v1/keys/{id} may revoke a test key
                    with api.client.app.state.sessions() as db:  # type: ignore[attr-defined]
                        db.execute(update(ApiKey).values(revoked_at=None, expires_at=None))
                        db.commit()

        try:
            run()
        except (Exception, ExceptionGroup) as exc:  # every operation runs; failures listed together
            failures.append(f"{operation.label}: {exc}"[:3000])
    assert not failures, "\n\n".join(failures)
