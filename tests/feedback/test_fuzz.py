"""Schemathesis fuzzing from /openapi.json: whatever it sends, the API never answers 5xx.

Runs in-process (ASGI) against SQLite and PostgreSQL with an admin key (so requests get
past authentication into the handlers), a bounded, derandomized number of examples per
operation, and the response-schema check on top of the no-5xx check.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from .helpers import make_keys

MAX_EXAMPLES = 25


def test_no_server_errors(db_url):
    from llmops.feedback.api import create_app

    headers = make_keys(db_url).headers("admin")  # creates the schema; the app only checks it
    app = create_app(db_url, allowed_hosts=None)  # schemathesis sends its own Host
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def fuzz(case):
            case.call_and_validate(headers=headers, checks=[not_a_server_error, response_schema_conformance])

        fuzz()
