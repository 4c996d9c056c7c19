"""Schemathesis over the API's own schema, in-process through WSGI, as anonymous, a contributor and a trustee."""

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
from tests.factories import ContributorFactory, FounderFactory

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 14,
        "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
        "generation": {"max-examples": 5, "deterministic": True},
    }
)


def _served_schema() -> dict:
    """The schema /api/schema/ serves, made by the same generator."""
    return json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))


schema = schemathesis.openapi.from_dict(_served_schema(), config=CONFIG)
schema.app = application


@pytest.fixture(params=["anonymous", "contributor", "trustee"])
def identity(request, db) -> dict[str, str]:
    if request.param == "anonymous":
        return {}
    factory = ContributorFactory if request.param == "contributor" else FounderFactory
    token, _ = Token.objects.get_or_create(user=factory().user)
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
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case, identity):
    case.call_and_validate(
        headers=identity,
        checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance],
    )
