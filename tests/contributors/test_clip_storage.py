"""Clip files and rows stay together: analysis, replacement, failures and the orphan sweep."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import DatabaseError, IntegrityError, connection, transaction

from contributors.audio import estimate_speech
from contributors.models import Clip, Contributor
from contributors.services import clips as clip_services
from contributors.services.trust import trust_recompute_all
from core.errors import ServiceError
from tests.factories import ContributorFactory, speechlike, wav_bytes

pytestmark = pytest.mark.django_db


def files(settings) -> list[str]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.flac")) if root.exists() else []


def test_analysis_fills_speech_ratio_and_snr_once(contributor, prompt):
    clip = clip_services.clip_submit(contributor=contributor, prompt_id=prompt.pk, data=wav_bytes(speechlike())).clip

    analysed = clip_services.clip_analyse(clip_id=clip.pk)
    first_time = analysed.analysed_at
    again = clip_services.clip_analyse(clip_id=clip.pk)

    assert 0.2 < analysed.speech_ratio < 1.0
    assert analysed.snr_db > 20
    assert again.analysed_at == first_time


def test_analysis_of_a_deleted_clip_is_a_no_op():
    assert clip_services.clip_analyse(clip_id=123456) is None


def test_the_analysis_task_is_enqueued_after_commit(contributor, prompt, django_capture_on_commit_callbacks):
    with mock.patch("contributors.tasks.clip_analyse.delay") as delay, django_capture_on_commit_callbacks(execute=True):
        clip = clip_services.clip_submit(
            contributor=contributor, prompt_id=prompt.pk, data=wav_bytes(speechlike())
        ).clip

    delay.assert_called_once_with(clip.pk)


def test_a_broker_outage_does_not_fail_a_committed_upload(contributor, prompt, django_capture_on_commit_callbacks):
    with (
        mock.patch("contributors.tasks.clip_analyse.delay", side_effect=ConnectionError("broker down")),
        django_capture_on_commit_callbacks(execute=True),
    ):
        submission = clip_services.clip_submit(
            contributor=contributor, prompt_id=prompt.pk, data=wav_bytes(speechlike())
        )

    assert submission.created
    assert Clip.objects.filter(pk=submission.clip.pk, analysed_at__isnull=True).exists()


def test_a_database_failure_leaves_no_file_behind(contributor, prompt, settings):
    with (
        mock.patch.object(Clip.objects, "create", side_effect=DatabaseError("disk full")),
        pytest.raises(DatabaseError),
    ):
        clip_services.clip_submit(contributor=contributor, prompt_id=prompt.pk, data=wav_bytes(speechlike()))

    assert files(settings) == []
    assert not Clip.objects.exists()


def upload_racing(contributor, *, winner: Contributor, prompt, data: bytes) -> tuple[Clip, object]:
    """``winner`` uploads ``data`` in a transaction held open until ``contributor``'s upload of the same ``data``,
    started meanwhile, has found no clip (the winner's is not committed) and waits on the database: on PostgreSQL
    for the winner's row under a unique index, so that the loser meets it only as an IntegrityError; on SQLite,
    whose writers queue whole, behind the winner's transaction. Returns the winner's clip and what the loser's
    upload gave (its ClipSubmission, or the ServiceError it raised)."""
    trust_recompute_all()  # an exact stored state: uploads take the shared trust lock, and wait on nothing else
    inserted = threading.Event()
    won: list[Clip] = []

    def win() -> None:
        try:
            with transaction.atomic():
                won.append(clip_services.clip_submit(contributor=winner, prompt_id=prompt.pk, data=data).clip)
                inserted.set()
                _until_another_writer_waits()
        finally:
            connection.close()

    thread = threading.Thread(target=win)
    thread.start()
    try:
        assert inserted.wait(30)
        try:
            lost: object = clip_services.clip_submit(contributor=contributor, prompt_id=prompt.pk, data=data)
        except ServiceError as exc:
            lost = exc
    finally:
        thread.join(30)
    return won[0], lost


def _until_another_writer_waits(timeout_s: float = 30) -> None:
    if connection.vendor != "postgresql":
        time.sleep(1)  # SQLite says nothing of a waiting writer; the loser needs milliseconds to queue
        return
    deadline = time.monotonic() + timeout_s
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
            if cursor.fetchone()[0]:
                return
            time.sleep(0.02)
    pytest.fail("the second upload never waited on the first")


@pytest.mark.django_db(transaction=True)  # two connections: each upload sees only what the other committed
def test_losing_a_race_for_the_same_reading_answers_with_the_winner(contributor, prompt, settings):
    winner, loser = upload_racing(contributor, winner=contributor, prompt=prompt, data=wav_bytes(speechlike(seed=7)))

    assert loser.clip.pk == winner.pk and not loser.created
    assert files(settings) == [winner.audio.name]


@pytest.mark.django_db(transaction=True)
def test_losing_a_race_for_the_same_audio_by_someone_else_is_a_409_and_keeps_the_file(contributor, prompt, settings):
    winner, refused = upload_racing(
        ContributorFactory(), winner=contributor, prompt=prompt, data=wav_bytes(speechlike(seed=8))
    )

    assert isinstance(refused, ServiceError) and refused.code == "audio_duplicate"  # the sha256 constraint, in the DB
    assert files(settings) == [winner.audio.name]
    assert Clip.objects.count() == 1


def test_the_sweep_removes_only_old_unreferenced_files(contributor, prompt, settings):
    kept = clip_services.clip_submit(contributor=contributor, prompt_id=prompt.pk, data=wav_bytes(speechlike())).clip
    orphan = "clips/ff/" + "f" * 64 + ".flac"
    default_storage.save(orphan, ContentFile(b"x"))
    fresh_orphan = "clips/ee/" + "e" * 64 + ".flac"

    assert clip_services.storage_sweep_orphans(grace=timedelta(hours=1)) == []
    deleted = clip_services.storage_sweep_orphans(grace=timedelta(seconds=-1))
    default_storage.save(fresh_orphan, ContentFile(b"x"))

    assert deleted == [orphan]
    assert kept.audio.name in files(settings)
    assert fresh_orphan in files(settings)


def test_deleting_a_contributor_deletes_their_clips_and_the_sweep_their_files(contributor, prompt, settings):
    clip = clip_services.clip_submit(contributor=contributor, prompt_id=prompt.pk, data=wav_bytes(speechlike())).clip
    contributor.user.delete()

    clip_services.storage_sweep_orphans(grace=timedelta(seconds=-1))

    assert not Clip.objects.filter(pk=clip.pk).exists()
    assert files(settings) == []


def test_speech_estimate_on_silence_and_noise():
    import numpy as np

    assert estimate_speech(np.zeros(16000, dtype=np.float32)).speech_ratio == 0.0
    noise = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.01
    assert estimate_speech(noise).speech_ratio < 0.2


def test_no_two_clips_per_contributor_and_prompt_in_the_database(contributor, prompt):
    clip = clip_services.clip_submit(contributor=contributor, prompt_id=prompt.pk, data=wav_bytes(speechlike())).clip
    clone = {f.name: getattr(clip, f.name) for f in Clip._meta.concrete_fields if f.name not in {"id", "sha256"}}

    with pytest.raises(IntegrityError), transaction.atomic():
        Clip.objects.create(**{**clone, "sha256": "0" * 64})
