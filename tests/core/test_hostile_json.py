"""Every operation that reads a JSON body answers a hostile one with a 4xx, never a 500: here, a document nested
past the interpreter's recursion limit (``[[[[...]]]]``, 40 kB), which Python's json module refuses with
RecursionError, not the ValueError DRF's parser catches."""

from __future__ import annotations

import re

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import FounderFactory

NESTED = "[" * 20_000 + "]" * 20_000


def _json_operations() -> list[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    found = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if "application/json" in operation.get("requestBody", {}).get("content", {}):
                found.append((method.upper(), re.sub(r"\{[^}]+\}", "1", path)))
    return found


OPERATIONS = _json_operations()


def test_the_api_has_json_operations_to_try():
    assert len(OPERATIONS) >= 10, OPERATIONS


@pytest.mark.django_db
@pytest.mark.parametrize("auth", ["token", "session"])
def test_a_json_body_nested_too_deeply_is_a_400_parse_error_everywhere(auth):
    caller = FounderFactory()
    client = APIClient()
    if auth == "token":  # token requests take the lean path first (core.lean), which reads JSON itself
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=caller.user).key}")
    else:
        client.force_login(caller.user)
    parse_errors = []
    for method, path in OPERATIONS:
        response = client.generic(method, path, NESTED, content_type="application/json")
        assert 400 <= response.status_code < 500, (method, path, response.status_code)
        assert response["Content-Type"].startswith("application/json"), (method, path)
        if response.json()["code"] == "parse_error":
            assert response.status_code == 400
            parse_errors.append(path)
    # Operations refused before their body is read (a 404 for an object that does not exist, a 403) are not counted.
    assert len(parse_errors) >= len(OPERATIONS) // 2, (parse_errors, OPERATIONS)
