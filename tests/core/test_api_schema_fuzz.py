"""Schemathesis over the API's own schema (issue #14, "the schema tells the truth"), as anonymous, a contributor and
a trustee: any 5xx fails, and so does a response whose status code, content type or body the schema does not
document.

In-process: schemathesis calls the WSGI application, which runs inside the test's database transaction. Each
(operation, identity) pair is its own test with its own transaction, so no operation is excluded: a destructive one
(``me/delete``, a withdrawal) cannot disturb another's run. Bounded and reproducible: a few derandomised examples per
operation, positive and negative, with no example database.
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application
from contributors.services.clips import clip_submit
from tests.factories import ContributorFactory, FounderFactory, PromptFactory, speechlike, wav_bytes

# The coverage phase (boundary values of every parameter) found nothing more here and tripled the time; the stateful
# phase needs links the schema does not declare.
CONFIG = schemathesis.Config.from_dict(
    {
        "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
        "generation": {"max-examples": 5, "deterministic": True, "database": "none"},
    }
)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

# The schema /api/schema/ serves, from the same generator (loaded at collection: the lazy pytest loader of
# schemathesis 4.32 does not run under pytest 9).
schema = schemathesis.openapi.from_dict(
    json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True))), config=CONFIG
)
schema.app = application


def _record(contributor, seed: int) -> None:
    audio = wav_bytes(speechlike(seconds=1.0, seed=seed))  # the seed keeps the recordings apart (no duplicates)
    clip_submit(contributor=contributor, prompt_id=PromptFactory().pk, data=audio)


@pytest.fixture(params=["anonymous", "contributor", "trustee"])
def identity(request, db) -> dict[str, str]:
    """The caller's headers. Someone else's clip waits for validation and every caller but the anonymous one has
    recorded a clip, so that lists, progress and the validation queue answer with objects, not only emptiness."""
    _record(ContributorFactory(), seed=1)
    if request.param == "anonymous":
        return {}
    caller = (ContributorFactory if request.param == "contributor" else FounderFactory)()
    _record(caller, seed=2)
    token, _ = Token.objects.get_or_create(user=caller.user)
    return {"Authorization": f"Token {token.key}"}


@pytest.fixture
def wsgi_in_test_transaction(db):
    """Django's WSGI handler closes "old" connections as each request starts and ends; inside the test's
    transaction that would close it. Django's test client disconnects the same receiver around its requests."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.mark.usefixtures("wsgi_in_test_transaction")
@schema.parametrize()
# The identity's data is shared by an operation's examples on purpose, as a server's state is by its requests.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_api_conforms_to_its_schema(case, identity):
    case.call_and_validate(headers=identity, checks=CHECKS)
