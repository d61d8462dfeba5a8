"""schemathesis against the live service's OpenAPI: every route, >= 1,000 generated requests,
no 5xx and no answer outside the documented statuses, content types, headers and schemas.

Generating the cases (not the requests) takes most of the time, so each operation gets the share
of ``MIN_CASES`` it needs and no more; the bodies over the size limit, which only long runs
generated, have their own test (``tests/app/edge/test_body_guard.py``)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.main import create_app
from tests.app.live_service import make_settings
from tests.live_server import live_server

API_KEY = "schemathesis-key"
MIN_CASES = 1000
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def base_url(tiny_model_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real uvicorn server in a thread (its lifespan loads the model), on a free port."""
    app_settings = make_settings(
        tmp_path_factory.mktemp("schemathesis"),
        tiny_model_repo,
        api_keys=f"fuzzer:{API_KEY}",
        metrics_api_key=API_KEY,
        max_batch_wait_ms=0,
    )
    with live_server(create_app(app_settings)) as url:
        yield url


def fuzz(operation: object, mode: GenerationMode, max_examples: int) -> int:
    """Run ``max_examples`` generated requests against one operation; the number sent."""
    sent = 0

    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=True,  # the same cases every run: a CI failure reproduces
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))  # type: ignore[attr-defined]
    def run(case: schemathesis.Case) -> None:
        nonlocal sent
        sent += 1
        case.call_and_validate(headers={"X-API-Key": API_KEY}, checks=CHECKS)

    run()
    return sent


@pytest.mark.slow
def test_every_route_conforms_to_its_openapi_document(base_url: str) -> None:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9
    # A fifth over MIN_CASES: operations with a small input space (GET /healthz) stop early.
    max_examples = math.ceil(1.2 * MIN_CASES / (len(operations) * len(MODES)))
    cases: dict[str, int] = {}
    failures: list[str] = []
    for operation in operations:
        for mode in MODES:
            label = f"{operation.label} [{mode.value}]"
            try:
                cases[label] = fuzz(operation, mode, max_examples)
            except (AssertionError, BaseExceptionGroup) as exc:  # check failures: report all
                cases[label] = -1
                failures.append(f"{label}: {exc}")
    total = sum(n for n in cases.values() if n > 0)
    report = "\n".join(f"  {n:4d} {label}" for label, n in sorted(cases.items()))
    print(f"\nschemathesis: {total} generated requests\n{report}")
    assert not failures, "\n\n".join(failures)
    assert total >= MIN_CASES, report
    assert all(n > 0 for n in cases.values()), report


STATEFUL_SCENARIOS = 30  # bounded: 1-3 minutes on a loaded 2-core machine


@pytest.mark.slow
def test_linked_calls_stay_within_the_document(base_url: str) -> None:
    """Stateful: sequences of calls chained through the links schemathesis infers from the
    document (a model's name and version from /models into /models/{name} and TF Serving's
    predict), seeded like the rest, with the same checks."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    machine = schema.as_state_machine()
    steps: list[str] = []

    class Linked(machine):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, object]:
            return {"headers": {"X-API-Key": API_KEY}}

        def validate_response(
            self, response: object, case: schemathesis.Case, **kwargs: object
        ) -> None:
            steps.append(case.operation.label)
            case.validate_response(response, checks=CHECKS, headers={"X-API-Key": API_KEY})  # type: ignore[arg-type]

    Linked.run(
        settings=settings(
            max_examples=STATEFUL_SCENARIOS,
            stateful_step_count=6,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
    )
    calls = Counter(steps)
    print(f"\nschemathesis stateful: {len(steps)} calls: {dict(calls)}")
    assert len(calls) >= 3 and len(steps) >= STATEFUL_SCENARIOS, calls
