"""The crowd grows, live: a newcomer signs up, records eight clips (real speech through the upload API),
the demo's founders validate them through the assignment API, and the newcomer becomes a trustee who
validates someone else's clip. This is the path issue #11 found blocked (founders with no votes left)."""

from __future__ import annotations

import io
import subprocess

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from contributors.models import Clip, ClipStatus, Contributor
from contributors.services.trust import trust_check
from demo import seed as demo
from tests.demo.conftest import needs_espeak

pytestmark = pytest.mark.usefixtures("demo_isolated")


@pytest.fixture(autouse=True)
def _no_throttles(settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_CLASSES": []}


def token_client(username: str, password: str) -> APIClient:
    response = APIClient().post("/api/v1/auth/token", {"username": username, "password": password}, format="json")
    assert response.status_code == 200, response.json()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    return client


def spoken(text: str) -> bytes:
    """espeak-ng reading ``text``: a 22.05 kHz WAV, as a browser without resampling would send it."""
    result = subprocess.run(
        ["espeak-ng", "-v", "en-us+f2", "-s", "150", "--stdout", text], check=True, capture_output=True, timeout=60
    )
    return result.stdout


@needs_espeak
@pytest.mark.django_db
def test_a_newcomer_records_eight_clips_is_validated_by_the_demo_founders_and_validates_in_turn():
    call_command(
        "demo", "--if-empty", "--contributors", "2", "--corpus-speakers", "0", "--no-release", stdout=io.StringIO()
    )
    signup = APIClient()
    response = signup.post(
        "/api/v1/auth/signup",
        {"username": "newcomer", "password": "a-long-newcomer-password", "cc0_consent": True},
        format="json",
    )
    assert response.status_code == 201, response.json()
    newcomer = token_client("newcomer", "a-long-newcomer-password")

    prompts = newcomer.get("/api/v1/prompts/next?count=8").json()
    assert len(prompts) == 8
    for prompt in prompts:
        upload = io.BytesIO(spoken(prompt["text"]))
        upload.name = "take.wav"
        response = newcomer.post("/api/v1/clips/", {"prompt": prompt["id"], "audio": upload}, format="multipart")
        assert response.status_code == 201, response.json()
    mine = {clip["id"] for clip in newcomer.get("/api/v1/clips/mine").json()["results"]}
    assert len(mine) == 8

    # The founders validate what the queue hands them (the newcomer's clips and the demo's leftovers) until
    # the newcomer's eight are decided. Every founder can vote: that is the point.
    founders = [token_client(f.username, demo.DEMO_PASSWORD) for f in demo.FOUNDERS]
    assert all(client.get("/api/v1/me").json()["quota_left"] > 0 for client in founders)
    for _ in range(400):
        if not Clip.objects.filter(pk__in=mine, status=ClipStatus.PENDING).exists():
            break
        progressed = False
        for client in founders:
            offered = client.get("/api/v1/validation/next").json()
            if offered["clip"] is None:
                continue
            vote = client.post(f"/api/v1/clips/{offered['clip']['id']}/votes", {"verdict": "valid"}, format="json")
            assert vote.status_code == 201, vote.json()
            progressed = True
        assert progressed, "the founders were served nothing while the newcomer's clips were pending"
    statuses = [clip["status"] for clip in newcomer.get("/api/v1/clips/mine").json()["results"]]
    assert statuses == ["valid"] * 8

    me = newcomer.get("/api/v1/me").json()
    assert me["is_trustee"] and me["trust"] == pytest.approx(0.6756, abs=1e-4)  # 8 valid of 8 decided
    assert me["quota_left"] == 104  # thirteen votes per clip recorded

    # A demo contributor records a clip; the new trustee is handed it and validates it.
    other = Contributor.objects.get(user__username=demo.SIMULATED[0].username)
    other_client = token_client(other.user.username, demo.DEMO_PASSWORD)
    prompt = other_client.get("/api/v1/prompts/next?count=1").json()[0]
    upload = io.BytesIO(spoken(prompt["text"]))
    upload.name = "take.wav"
    assert (
        other_client.post("/api/v1/clips/", {"prompt": prompt["id"], "audio": upload}, format="multipart").status_code
        == 201
    )
    offered = newcomer.get("/api/v1/validation/next").json()
    assert offered["clip"] is not None and offered["clip"]["id"] not in mine
    assert newcomer.get(offered["clip"]["audio_url"]).status_code == 200
    vote = newcomer.post(f"/api/v1/clips/{offered['clip']['id']}/votes", {"verdict": "valid"}, format="json")
    assert vote.status_code == 201, vote.json()
    assert vote.json()["quota_left"] == 103
    assert trust_check().passed
