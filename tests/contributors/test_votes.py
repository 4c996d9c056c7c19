"""Votes through the API: assignments, the rules, every refusal, quotas and concurrency."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from contributors.models import (
    AssignmentOutcome,
    Clip,
    ClipReport,
    ClipStatus,
    Contributor,
    ValidationAssignment,
    Vote,
)
from contributors.services.clips import clip_submit
from contributors.services.trust import trust_check
from contributors.services.votes import vote_cast
from core.errors import ServiceError
from tests.factories import ContributorFactory, FounderFactory, PromptFactory, assign, speechlike, wav_bytes

pytestmark = pytest.mark.django_db

_seed = iter(range(10_000, 1_000_000))


def record(contributor, n: int = 1) -> list[Clip]:
    return [
        clip_submit(
            contributor=contributor, prompt_id=PromptFactory().pk, data=wav_bytes(speechlike(seed=next(_seed)))
        ).clip
        for _ in range(n)
    ]


def client_for(contributor) -> APIClient:
    client = APIClient()
    client.force_authenticate(contributor.user)
    return client


@pytest.fixture
def founder():
    founder = FounderFactory()
    record(founder, 3)  # quota 3 x 13 = 39 votes
    return founder


@pytest.fixture
def clip() -> Clip:
    return record(ContributorFactory())[0]


def vote(client: APIClient, clip_id, verdict="valid", reason=None):
    body = {"verdict": verdict}
    if reason is not None or verdict == "invalid":
        body["reason"] = "noise" if reason is None else reason
    return client.post(f"/api/v1/clips/{clip_id}/votes", body, format="json")


def next_clip(client: APIClient) -> dict:
    response = client.get("/api/v1/validation/next")
    assert response.status_code == 200, response.json()
    return response.json()


def assigned_vote(trustee, clip: Clip, verdict="valid"):
    """Vote through the API on ``clip``, assigned as the queue would have (tests pick the clip)."""
    assign(trustee, clip)
    return vote(client_for(trustee), clip.pk, verdict)


# --- voting on the assigned clip ------------------------------------------------------------------


def test_a_trustee_votes_on_the_assigned_clip_and_the_quota_goes_down(founder, clip):
    client = client_for(founder)
    offered = next_clip(client)
    response = vote(client, offered["clip"]["id"])

    assert offered["quota_left"] == 39 and offered["reason"] == ""
    assert offered["assignment"]["id"] == ValidationAssignment.objects.get().pk
    assert response.status_code == 201, response.json()
    assert response.json() == {
        "clip": clip.pk,
        "verdict": "valid",
        "reason": "",
        "clip_status": "pending",
        "quota_left": 38,
        "next": {"clip": None, "assignment": None, "quota_left": 38, "reason": "queue_empty"},
    }
    clip.refresh_from_db()
    assert (clip.votes_counted, clip.votes_valid_counted, clip.score) == (1, 1, pytest.approx(0.2065, abs=1e-4))
    assert ValidationAssignment.objects.get().outcome == AssignmentOutcome.VOTED


def test_a_vote_answers_with_the_next_assignment_which_takes_the_next_vote(founder):
    clips = [record(ContributorFactory())[0] for _ in range(3)]
    client = client_for(founder)
    judged = []
    offer = next_clip(client)
    while offer["clip"] is not None:
        answer = vote(client, offer["clip"]["id"])
        assert answer.status_code == 201, answer.json()
        judged.append(answer.json()["clip"])
        offer = answer.json()["next"]
        if offer["clip"] is not None:
            # The offer is a real assignment: the one validation/next now returns, and the only one open.
            assert offer["assignment"]["id"] == ValidationAssignment.objects.get(outcome=AssignmentOutcome.OPEN).pk
            assert next_clip(client)["assignment"]["id"] == offer["assignment"]["id"]

    assert sorted(judged) == sorted(c.pk for c in clips)
    assert offer == {"clip": None, "assignment": None, "quota_left": 36, "reason": "queue_empty"}


def test_the_vote_that_spends_the_quota_answers_quota_exhausted(founder, clip, settings):
    settings.TRUST = {**settings.TRUST, "QUOTA_VOTES_PER_CLIP": 1}  # founder: 3 clips, 3 votes
    Vote.objects.bulk_create(Vote(clip=c, voter=founder, verdict="valid") for c in record(ContributorFactory(), 2))
    client = client_for(founder)
    record(ContributorFactory())

    answer = vote(client, next_clip(client)["clip"]["id"])

    assert answer.status_code == 201, answer.json()
    assert answer.json()["quota_left"] == 0
    assert answer.json()["next"] == {"clip": None, "assignment": None, "quota_left": 0, "reason": "quota_exhausted"}


def test_six_unanimous_trustee_votes_make_a_clip_valid(clip):
    founders = [FounderFactory() for _ in range(6)]
    for f in founders:
        record(f)
    statuses = [assigned_vote(f, clip).json()["clip_status"] for f in founders]

    assert statuses == ["pending"] * 5 + ["valid"]
    clip.refresh_from_db()
    assert clip.score == pytest.approx(0.6097, abs=1e-4)
    author = Contributor.objects.get(pk=clip.contributor_id)
    # One valid clip among one decided: a Wilson bound of 0.21, not yet a trustee (six are needed).
    assert author.trust == pytest.approx(0.2065, abs=1e-4) and not author.is_trustee
    assert trust_check().passed


def test_a_clip_never_assigned_is_unknown_to_the_trustee_whatever_its_status(founder, clip):
    # Walking ids must not tell a trustee which clips exist, nor which are pending or decided.
    other = record(ContributorFactory())[0]
    decided = record(ContributorFactory())[0]
    Clip.objects.filter(pk=decided.pk).update(status=ClipStatus.VALID)
    client = client_for(founder)
    offered = next_clip(client)["clip"]["id"]
    not_offered = other.pk if offered == clip.pk else clip.pk

    for pk in (not_offered, decided.pk, decided.pk + 1000):
        response = vote(client, pk)
        assert (response.status_code, response.json()["code"]) == (404, "clip_unknown"), pk
        assert response.json()["message"] == f"There is no clip with id {str(pk)!r}."
    assert not Vote.objects.exists()


def test_a_vote_on_an_expired_assignment_is_a_409_and_next_serves_again(founder, clip):
    client = client_for(founder)
    next_clip(client)
    ValidationAssignment.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    response = vote(client, clip.pk)
    again = next_clip(client)

    assert response.status_code == 409
    assert response.json()["code"] == "clip_not_assigned" and response.json()["expired"] is True
    assert not Vote.objects.exists()
    assert again["clip"]["id"] == clip.pk  # a fresh assignment on the same (only) clip
    assert ValidationAssignment.objects.filter(outcome=AssignmentOutcome.EXPIRED).count() == 1
    assert vote(client, clip.pk).status_code == 201


def test_a_vote_on_someone_elses_assignment_is_a_404(founder, clip):
    holder = FounderFactory(vote_allowance=5)
    assign(holder, clip)

    # The only clip is held by another trustee: nothing is served, and voting on it is refused.
    assert next_clip(client_for(founder)) == {
        "clip": None,
        "assignment": None,
        "quota_left": 39,
        "reason": "queue_empty",
    }
    response = vote(client_for(founder), clip.pk)

    assert response.status_code == 404 and response.json()["code"] == "clip_unknown"


def test_two_tabs_get_the_same_assignment_and_only_one_vote_counts(founder, clip):
    record(ContributorFactory())  # a second pending clip, which the second tab must not be handed
    tab1, tab2 = client_for(founder), client_for(founder)
    first, second = next_clip(tab1), next_clip(tab2)

    votes = [vote(tab1, first["clip"]["id"]), vote(tab2, second["clip"]["id"], "invalid")]

    assert first["assignment"] == second["assignment"]
    assert [v.status_code for v in votes] == [201, 409]
    assert votes[1].json()["code"] == "vote_duplicate"
    assert Vote.objects.get().verdict == "valid"


def test_a_founder_removed_mid_assignment_cannot_vote(founder, clip):
    client = client_for(founder)
    next_clip(client)
    call_command("founders", "remove", founder.user.username)

    response = vote(client, clip.pk)

    assert response.status_code == 403 and response.json()["code"] == "not_trustee"
    assert not Vote.objects.exists()


def test_a_trustee_demoted_between_next_and_the_vote_cannot_vote(founder, clip):
    client = client_for(founder)
    next_clip(client)
    Contributor.objects.filter(pk=founder.pk).update(is_trustee=False)

    response = vote(client, clip.pk)

    assert response.status_code == 403 and response.json()["code"] == "not_trustee"


def test_quota_reached_between_next_and_the_vote_is_a_429(founder, clip, settings):
    client = client_for(founder)
    assert next_clip(client)["quota_left"] == 39
    settings.TRUST = {**settings.TRUST, "QUOTA_VOTES_PER_CLIP": 0}  # an operator lowered the quota

    response = vote(client, clip.pk)

    assert response.status_code == 429
    assert response.json()["code"] == "quota_exhausted" and response.json()["quota_left"] == 0
    assert not Vote.objects.exists()


def test_at_quota_zero_no_clip_is_served(clip, settings):
    settings.TRUST = {**settings.TRUST, "QUOTA_VOTES_PER_CLIP": 1}
    founder = FounderFactory()
    record(founder)  # one clip: one vote
    client = client_for(founder)

    assert vote(client, next_clip(client)["clip"]["id"]).status_code == 201
    record(ContributorFactory())
    after = next_clip(client)

    assert after == {"clip": None, "assignment": None, "quota_left": 0, "reason": "quota_exhausted"}
    founder.vote_allowance = 2  # an operator's allowance lets them validate again
    founder.save()
    assert next_clip(client)["quota_left"] == 2


# --- refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize("verdict", ["maybe", "", "VALID", None])
def test_a_malformed_verdict_is_a_400(founder, clip, verdict):
    assign(founder, clip)
    response = vote(client_for(founder), clip.pk, verdict)

    assert response.status_code == 400
    assert response.json()["code"] == "verdict_invalid"
    assert not Vote.objects.exists()


@pytest.mark.parametrize("reason", ["noise", "wrong_sentence", "cut_off", "not_speech"])
def test_an_invalid_vote_stores_its_reason(founder, clip, reason):
    assign(founder, clip)
    response = vote(client_for(founder), clip.pk, "invalid", reason)

    assert response.status_code == 201, response.json()
    assert response.json()["reason"] == reason
    assert Vote.objects.get().reason == reason


@pytest.mark.parametrize(
    ("verdict", "reason"),
    [
        ("invalid", ""),  # an invalid verdict needs its reason
        ("invalid", "NOISE"),
        ("invalid", "loud"),  # unknown
        ("invalid", "x" * 40),  # longer than any reason
        ("valid", "noise"),  # a valid verdict takes none
        ("valid", "loud"),
    ],
)
def test_a_missing_or_misplaced_reason_is_a_400(founder, clip, verdict, reason):
    assign(founder, clip)
    response = vote(client_for(founder), clip.pk, verdict, reason)

    assert response.status_code == 400
    assert response.json()["code"] == "reason_invalid" and response.json()["message"]
    assert not Vote.objects.exists()
    assert ValidationAssignment.objects.get().outcome == AssignmentOutcome.OPEN  # the clip is still theirs


def test_an_invalid_vote_without_any_reason_field_is_a_400(founder, clip):
    assign(founder, clip)
    response = client_for(founder).post(f"/api/v1/clips/{clip.pk}/votes", {"verdict": "invalid"}, format="json")

    assert response.status_code == 400 and response.json()["code"] == "reason_invalid"
    assert not Vote.objects.exists()


def test_the_database_refuses_a_reason_on_a_valid_vote(founder, clip):
    with pytest.raises(IntegrityError), transaction.atomic():
        Vote.objects.create(clip=clip, voter=founder, verdict="valid", reason="noise")


def test_voting_on_ones_own_clip_is_a_403(founder):
    own = Clip.objects.filter(contributor=founder).first()
    response = vote(client_for(founder), own.pk)

    assert response.status_code == 403
    assert response.json()["code"] == "vote_own_clip"


def test_a_non_trustee_cannot_vote_or_be_served(clip):
    voter = ContributorFactory()
    record(voter, 2)

    assert vote(client_for(voter), clip.pk).json()["code"] == "not_trustee"
    response = client_for(voter).get("/api/v1/validation/next")
    assert response.status_code == 403 and response.json()["code"] == "not_trustee"


@pytest.mark.parametrize("status", [ClipStatus.VALID, ClipStatus.DISCARDED, ClipStatus.INVALID])
def test_voting_on_a_decided_clip_is_a_409(founder, clip, status):
    assign(founder, clip)
    Clip.objects.filter(pk=clip.pk).update(status=status)
    response = vote(client_for(founder), clip.pk)

    assert response.status_code == 409
    assert response.json()["code"] == "clip_not_pending"


@pytest.mark.parametrize("clip_id", ["999999", "abc"])
def test_an_unknown_clip_is_a_404(founder, clip_id):
    response = vote(client_for(founder), clip_id)

    assert response.status_code == 404
    assert response.json()["code"] == "clip_unknown"


def test_anonymous_voting_is_a_401(clip):
    assert vote(APIClient(), clip.pk).status_code == 401


def test_the_database_refuses_a_second_vote_or_open_assignment_past_the_service(founder, clip):
    Vote.objects.create(clip=clip, voter=founder, verdict="valid")
    assign(founder, clip)

    with pytest.raises(IntegrityError), transaction.atomic():
        Vote.objects.create(clip=clip, voter=founder, verdict="valid")
    with pytest.raises(IntegrityError), transaction.atomic():
        ValidationAssignment.objects.create(trustee=founder, clip=clip, expires_at=timezone.now())
    # One holder per clip: a second trustee's open assignment on it is refused too.
    other = FounderFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        ValidationAssignment.objects.create(trustee=other, clip=clip, expires_at=timezone.now())


# --- the queue and who sees what ------------------------------------------------------------------


def test_validation_next_assigns_a_pending_clip_the_trustee_may_judge(founder, clip):
    record(founder)  # their own: never offered
    decided = record(ContributorFactory())[0]
    Clip.objects.filter(pk=decided.pk).update(status=ClipStatus.VALID)
    client = client_for(founder)

    first = next_clip(client)
    audio = client.get(first["clip"]["audio_url"])
    vote(client, clip.pk)
    second = next_clip(client)

    assert first["clip"]["id"] == clip.pk
    assert first["clip"]["prompt_text"] == clip.prompt.text
    assert audio.status_code == 200
    assert second == {"clip": None, "assignment": None, "quota_left": 51, "reason": "queue_empty"}


def test_a_pending_clip_is_seen_only_by_its_author_staff_and_its_assignee(founder, clip):
    other_trustee = FounderFactory()
    record(other_trustee)
    staff = ContributorFactory(user__is_staff=True)
    assign(founder, clip)

    def seen(person) -> list[int]:
        client = client_for(person)
        return [
            client.get(f"/api/v1/clips/{clip.pk}").status_code,
            client.get(f"/api/v1/clips/{clip.pk}/audio").status_code,
        ]

    assert seen(founder) == [200, 200]
    assert seen(clip.contributor) == [200, 200]
    assert seen(staff) == [200, 200]
    assert seen(other_trustee) == [404, 404]  # walking ids reveals nothing
    assert seen(ContributorFactory()) == [404, 404]
    vote(client_for(founder), clip.pk)
    assert seen(founder) == [404, 404]  # the assignment is closed once judged


def test_skipped_and_reported_clips_are_not_offered_again(founder, clip):
    other = record(ContributorFactory())[0]
    client = client_for(founder)

    first = next_clip(client)["clip"]["id"]
    assert client.post(f"/api/v1/clips/{first}/skip").status_code == 204
    second = next_clip(client)["clip"]["id"]
    refused = {
        "reason_invalid": {"reason": "boring", "note": "x"},
        "note_invalid": {"reason": "offensive", "note": "fine\u202eenif"},  # reads reversed in the admin
        "note_too_long": {"reason": "offensive", "note": "x" * 1001},
    }
    for code, body in refused.items():
        answer = client.post(f"/api/v1/clips/{second}/report", body, format="json")
        assert (answer.status_code, answer.json()["code"]) == (400, code)
    answer = client.post(f"/api/v1/clips/{second}/report", {"reason": "offensive", "note": ["x"]}, format="json")
    assert (answer.status_code, answer.json()["code"]) == (400, "note_invalid")
    report = client.post(
        f"/api/v1/clips/{second}/report", {"reason": "offensive", "note": "shouting,\n\tthen  silence"}, format="json"
    )

    assert {first, second} == {clip.pk, other.pk}
    assert report.status_code == 201
    assert ClipReport.objects.get().note == "shouting, then silence"
    assert next_clip(client)["clip"] is None


def test_skipping_or_reporting_a_clip_never_assigned_is_a_404_and_a_closed_assignment_a_409(founder, clip):
    client = client_for(founder)

    skip = client.post(f"/api/v1/clips/{clip.pk}/skip")
    report = client.post(f"/api/v1/clips/{clip.pk}/report", {"reason": "noise"}, format="json")

    assert (skip.status_code, skip.json()["code"]) == (404, "clip_unknown")
    assert (report.status_code, report.json()["code"]) == (404, "clip_unknown")
    next_clip(client)
    ValidationAssignment.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    skip = client.post(f"/api/v1/clips/{clip.pk}/skip")
    assert (skip.status_code, skip.json()["code"]) == (409, "clip_not_assigned")


def test_me_shows_trust_trustee_status_and_quota(founder):
    body = client_for(founder).get("/api/v1/me").json()

    assert (body["trust"], body["is_trustee"], body["quota_left"], body["votes_cast"]) == (1.0, True, 39, 0)


def test_my_clips_show_their_counted_votes_and_score(clip, founder):
    assigned_vote(founder, clip)
    (mine,) = client_for(clip.contributor).get("/api/v1/clips/mine").json()["results"]

    assert (mine["votes_counted"], mine["votes_valid_counted"]) == (1, 1)
    assert mine["score"] == pytest.approx(0.2065, abs=1e-4)


def test_validation_next_finishes_started_clips_first(founder):
    _fresh, started = record(ContributorFactory(), 2)
    helper = FounderFactory()
    record(helper)
    assign(helper, started)
    vote(client_for(helper), started.pk)

    assert next_clip(client_for(founder))["clip"]["id"] == started.pk


def test_validation_next_picks_at_random_among_the_most_voted(founder):
    clips = record(ContributorFactory(), 6)
    offered = set()
    for _ in range(40):
        offered.add(next_clip(client_for(founder))["clip"]["id"])
        ValidationAssignment.objects.update(outcome=AssignmentOutcome.WITHDRAWN)

    assert offered == {c.pk for c in clips}  # (1 - 1/6)^40 < 0.1 % per clip of a false failure


@pytest.mark.django_db(transaction=True)
def test_parallel_votes_never_double_count_and_the_state_stays_a_full_recompute():
    """Nine threads vote at once, each on its own connection: one founder three times on their assigned
    clip (two tabs and a retry); the sixth founder's vote that makes a clip valid and its author a trustee
    (the exclusive path), racing five founders voting on other clips (the shared path). PostgreSQL is where
    this matters."""
    if connection.vendor != "postgresql":
        pytest.skip("concurrency is shown against PostgreSQL (CI); SQLite serialises all writers")
    founders = [FounderFactory() for _ in range(7)]
    for f in founders:
        record(f)
    author = ContributorFactory()
    earlier = record(author, 5)
    Vote.objects.bulk_create(Vote(clip=c, voter=f, verdict="valid") for c in earlier for f in founders[:6])
    call_command("trust_recompute")  # five valid clips: 0.57, one short of a trustee
    deciding, other = record(author)[0], record(ContributorFactory())[0]
    for f in founders[:5]:
        assign(f, deciding)
        vote_cast(voter=f, clip_id=deciding.pk, verdict="valid")
    elsewhere = record(ContributorFactory(), 5)
    for f, c in zip(founders[:5], elsewhere, strict=True):
        assign(f, c)
    assign(founders[5], deciding)
    assign(founders[6], other)
    attempts = [(founders[6], other.pk)] * 3 + [(founders[5], deciding.pk)]
    attempts += list(zip(founders[:5], (c.pk for c in elsewhere), strict=True))
    barrier = threading.Barrier(len(attempts))
    outcomes: list[str] = []

    def attempt(voter, clip_id: int) -> None:
        barrier.wait()
        try:
            vote_cast(voter=voter, clip_id=clip_id, verdict="valid")
            outcomes.append("ok")
        except ServiceError as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=pair) for pair in attempts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert outcomes.count("ok") == 7, outcomes
    assert set(outcomes) <= {"ok", "vote_duplicate", "clip_not_assigned"}
    assert Vote.objects.filter(clip=other).count() == 1
    deciding.refresh_from_db()
    author.refresh_from_db()
    assert (deciding.status, deciding.votes_counted) == (ClipStatus.VALID, 6)
    assert author.is_trustee
    assert trust_check().passed


@pytest.mark.django_db(transaction=True)
def test_two_votes_racing_for_the_last_vote_left_spend_it_once():
    """One vote left, two votes by the same trustee at once, each on its own connection: the first on the clip
    assigned to them, the second on the clip that a ``validation/next`` from another tab opens when the first has
    closed its assignment. All three wait behind the trustee's row lock (held here until they all wait), so each of
    the later statements starts before the first vote commits, and must still count it once the lock is theirs.
    Read in the locking statement, the counts were as old as its snapshot: the tab was served a clip with no vote
    left and the second vote was accepted, one past the quota."""
    if connection.vendor != "postgresql":
        pytest.skip("READ COMMITTED snapshots are PostgreSQL's; SQLite serialises all writers")
    from contributors.services.assignments import validation_assign

    trustee = FounderFactory(vote_allowance=1)  # no clips: one vote in all
    first, second = record(ContributorFactory(), 2)
    call_command("trust_recompute")  # a fixed point: the votes take the shared lock, as on a live database
    assign(trustee, first)
    held, release = threading.Event(), threading.Event()
    results: dict[str, object] = {}

    def hold_the_trustees_row() -> None:
        try:
            with transaction.atomic():
                Contributor.objects.select_for_update().get(pk=trustee.pk)
                held.set()
                release.wait(30)
        finally:
            connection.close()

    def vote(name: str, clip: Clip) -> None:
        try:
            results[name] = vote_cast(voter=trustee, clip_id=clip.pk, verdict="valid").clip.status
        except ServiceError as exc:
            results[name] = exc.code
        finally:
            connection.close()

    def next_clip() -> None:
        try:
            offer = validation_assign(trustee=trustee)
            results["next"] = offer.clip.pk if offer.clip is not None else offer.reason
        finally:
            connection.close()

    def waiting_for_locks(n: int) -> None:
        for _ in range(400):
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock'"
                )
                if cursor.fetchone()[0] >= n:
                    return
            threading.Event().wait(0.05)
        raise AssertionError(f"{n} sessions never waited for the trustee's row")

    holder = threading.Thread(target=hold_the_trustees_row)
    holder.start()
    assert held.wait(30)
    threads = [
        threading.Thread(target=vote, args=("first", first)),
        threading.Thread(target=next_clip),
        threading.Thread(target=vote, args=("second", second)),
    ]
    for n, thread in enumerate(threads, start=1):  # in this order behind the lock
        thread.start()
        waiting_for_locks(n)
    release.set()
    for thread in [holder, *threads]:
        thread.join(30)

    assert results["first"] == ClipStatus.PENDING  # accepted
    assert results["next"] == "quota_exhausted"
    # The tab was served nothing, so the second clip was never this trustee's: unknown to them, if not past quota.
    assert results["second"] in {"clip_unknown", "quota_exhausted"}
    assert Vote.objects.filter(voter=trustee).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_vote_that_waited_for_a_recompute_reads_the_state_it_left():
    """A vote waiting for the shared trust lock while a recompute holds the exclusive one must read the ``exact``
    flag the recompute commits: when it is false (a cycle, or the cap), no shortcut is exact and the vote runs under
    the exclusive lock, which settles the state with a full recompute. Read in the locking statement, the flag was
    as old as its snapshot, taken before the wait, and the vote took the shortcut on a state not a fixed point."""
    if connection.vendor != "postgresql":
        pytest.skip("READ COMMITTED snapshots are PostgreSQL's; SQLite serialises all writers")
    from contributors.models import TrustRecompute, TrustState
    from contributors.services.trust import trust_lock

    founder = FounderFactory()
    record(founder)
    clip = record(ContributorFactory())[0]
    call_command("trust_recompute")
    assign(founder, clip)
    settled = TrustRecompute.objects.filter(trigger="settle").count()  # the uploads' before the first recompute
    held, release = threading.Event(), threading.Event()
    results: list[object] = []

    def recompute_leaving_it_inexact() -> None:
        try:
            with transaction.atomic():
                trust_lock(exclusive=True)
                TrustState.objects.filter(pk=1).update(exact=False)
                held.set()
                release.wait(30)
        finally:
            connection.close()

    def vote() -> None:
        try:
            results.append(vote_cast(voter=founder, clip_id=clip.pk, verdict="valid").clip.status)
        finally:
            connection.close()

    holder = threading.Thread(target=recompute_leaving_it_inexact)
    holder.start()
    assert held.wait(30)
    voter = threading.Thread(target=vote)
    voter.start()
    for _ in range(400):  # until the vote waits for the trust lock
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'advisory'"
            )
            if cursor.fetchone()[0]:
                break
        threading.Event().wait(0.05)
    else:
        raise AssertionError("the vote never waited for the trust lock")
    release.set()
    holder.join(30)
    voter.join(30)

    assert results == [ClipStatus.PENDING]
    assert TrustRecompute.objects.filter(trigger="settle").count() == settled + 1  # under the exclusive lock
    assert TrustState.objects.get(pk=1).exact
