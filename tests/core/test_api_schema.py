"""The generated schema tells the truth about errors and lists: every operation documents its 4xx answers with the
shared ``Error`` component, and a view that paginates documents the page object it returns, not an array."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from drf_spectacular.generators import EndpointEnumerator, SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from rest_framework.authtoken.models import Token

from tests.factories import ContributorFactory

ERROR_REF = "#/components/schemas/Error"
PAGE_KEYS = {"count", "next", "previous", "results"}


@pytest.fixture(scope="module")
def api_schema() -> dict:
    return json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))


def _operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method != "parameters":
                yield method.upper(), path, operation


def _resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def test_the_error_component_is_code_and_message_and_allows_more(api_schema):
    error = api_schema["components"]["schemas"]["Error"]
    assert error["required"] == ["code", "message"]
    assert error["additionalProperties"] is True


def test_every_operation_documents_its_errors_with_the_error_component(api_schema):
    undocumented = []
    for method, path, operation in _operations(api_schema):
        errors = {code: r for code, r in operation["responses"].items() if code.startswith("4")}
        refs = {r["content"]["application/json"]["schema"].get("$ref") for r in errors.values()}
        if not errors or refs != {ERROR_REF}:
            undocumented.append(f"{method} {path}: {sorted(errors)}")
    assert not undocumented


def test_a_view_that_paginates_documents_the_page_object(api_schema):
    paginating = {
        (path, method)
        for path, _, method, view in EndpointEnumerator().get_api_endpoints()
        if method == "GET" and getattr(view.cls, "pagination_class", None)
    }
    assert ("/api/v1/releases/", "GET") in paginating and ("/api/v1/submissions/mine", "GET") in paginating
    for method, path, operation in _operations(api_schema):
        content = operation["responses"]["200"].get("content", {}) if method == "GET" else {}
        if "application/json" not in content:
            continue  # files (audio, zip, ONNX, CSV) are not lists
        ok = _resolve(api_schema, content["application/json"]["schema"])
        if (path, method) in paginating:
            assert ok["type"] == "object" and set(ok["properties"]) >= PAGE_KEYS, path
            assert ok["properties"]["results"]["type"] == "array", path
        else:
            assert not set(ok.get("properties", {})) >= PAGE_KEYS, path


def test_the_submissions_page_documents_the_quota_beside_the_page(api_schema):
    operation = api_schema["paths"]["/api/v1/submissions/mine"]["get"]
    page = _resolve(api_schema, operation["responses"]["200"]["content"]["application/json"]["schema"])
    assert "quota_left" in page["required"]


# Refusals the schemathesis run (tests/core/test_api_schema_fuzz.py) found undocumented: each is answered for real,
# and the schema lists it.
@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path", "request_path", "status"),
    [
        ("GET", "/api/v1/leaderboard/", "/api/v1/leaderboard/?release=9.9.9", 404),
        ("GET", "/api/v1/leaderboard.csv", "/api/v1/leaderboard.csv?release=9.9.9", 404),
        ("GET", "/api/v1/validation/next", "/api/v1/validation/next", 403),
        ("GET", "/api/v1/sentences/review", "/api/v1/sentences/review", 403),
    ],
)
def test_a_refusal_the_fuzzer_found_is_documented(api_schema, method, path, request_path, status):
    token, _ = Token.objects.get_or_create(user=ContributorFactory().user)  # not a trustee
    response = Client().generic(method, request_path, HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == status
    assert set(response.json()) >= {"code", "message"}
    assert str(status) in api_schema["paths"][path][method.lower()]["responses"]


@pytest.mark.django_db
def test_an_unknown_api_path_answers_an_unsafe_method_with_the_json_404():
    """Django's CSRF check used to answer POST to an unknown API path (an id that is not a number) with its HTML
    403 page; the catch-all changes nothing, so it is exempt and says 404 in the API's shape."""
    response = Client(enforce_csrf_checks=True).post("/api/v1/clips/not-a-number/withdraw")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.django_db
def test_an_api_path_no_route_can_match_answers_the_json_404():
    """A newline in a file's path matches no ``<path:>`` route, not even the API's catch-all: Django's handler used
    to answer with its HTML page, which the schema does not document."""
    response = Client().get("/api/v1/releases/1.0/files/a%0Ab.flac")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "not_found"


@pytest.mark.django_db
def test_the_site_keeps_its_html_404():
    response = Client().get("/no-such-page%0A/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    ("method", "path", "listed", "not_listed"),
    [
        # Public and JSON-only: no credentials read, no Accept negotiated.
        ("GET", "/api/v1/releases/", {"400", "404", "429"}, {"401", "403", "406", "413"}),
        ("GET", "/api/v1/me", {"401", "406"}, {"400", "403", "404", "413"}),
        ("POST", "/api/v1/clips/", {"400", "401", "403", "409", "413", "415"}, {"404"}),
        ("POST", "/api/v1/training/runs/{run_id}/cancel", {"401", "403", "404", "409"}, {"400", "413", "415"}),
        ("GET", "/api/v1/releases/{version}/files/{path}", {"304", "404", "412", "416", "429"}, {"401"}),
    ],
)
def test_an_operation_lists_what_its_view_can_answer_and_no_more(api_schema, method, path, listed, not_listed):
    responses = set(api_schema["paths"][path][method.lower()]["responses"])
    assert listed <= responses
    assert not responses & not_listed


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("get", "/api/v1/me", {"HTTP_ACCEPT": "text/html"}, 406),
        ("post", "/api/v1/sentences/", {"content_type": "text/plain", "data": "a sentence"}, 415),
        ("get", "/api/v1/me", {"HTTP_AUTHORIZATION": "Token not-a-token"}, 401),
    ],
)
def test_a_refusal_of_the_machinery_is_documented_and_the_error_shape(api_schema, method, path, headers, status):
    token, _ = Token.objects.get_or_create(user=ContributorFactory().user)
    response = getattr(Client(), method)(path, **{"HTTP_AUTHORIZATION": f"Token {token.key}", **headers})
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert set(response.json()) >= {"code", "message"}
    assert str(status) in api_schema["paths"][path][method]["responses"]


# Inputs the schema allowed and the API refused (schemathesis' positive_data_acceptance check, run once by hand).
def test_the_inputs_documented_are_the_inputs_accepted(api_schema):
    from benchmark.leaderboard.board import SORTS

    for method, path, operation in _operations(api_schema):
        for parameter in operation.get("parameters", []):
            if parameter["name"] in ("page", "page_size"):
                assert parameter["schema"]["minimum"] == 1, f"{method} {path}"  # 0 is refused
    sort = next(p for p in api_schema["paths"]["/api/v1/leaderboard/"]["get"]["parameters"] if p["name"] == "sort")
    assert set(sort["schema"]["enum"]) == {*SORTS, *(f"-{field}" for field in SORTS)}
    review = api_schema["paths"]["/api/v1/sentences/{proposal_id}/review"]["post"]
    assert list(review["requestBody"]["content"]) == ["application/json"]  # approve is a JSON boolean
    vote = api_schema["components"]["schemas"]["VoteInputRequest"]["properties"]
    assert set(_resolve(api_schema, vote["verdict"])["enum"]) == {"valid", "invalid"}


@pytest.mark.django_db
def test_a_review_sent_as_a_form_is_refused_as_a_media_type():
    token, _ = Token.objects.get_or_create(user=ContributorFactory().user)
    response = Client().post("/api/v1/sentences/1/review", {"approve": "true"}, HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"
