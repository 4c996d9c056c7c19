"""A release's life: created, built (build.py writes it into a staging folder), published, withdrawn.

A release is built in a staging folder and published in one step: on local storage the folder is renamed into
place (atomic), on object storage each file is uploaded. Public files go under ``releases/<version>/`` and get a
``ReleaseFile`` row each (only those can be downloaded); the hidden split goes under
``private/releases/<version>/hidden/`` and gets no row, so no view can serve it. Once ready, ``signals.release_ready``
is sent (the leaderboard re-scores its submissions on the new release).

A build is claimed and fenced as training runs and evaluations are (:mod:`core.fencing`): the claim raises the row's
``claims`` (the fencing token) and ``attempts``, a background thread beats ``heartbeat_at`` through the build, and
the final writes (publishing, the ready or failed status) are made under the row lock while the claim still holds
it, so a builder that was taken for dead and replaced changes nothing. ``releases_reap`` (periodic) re-queues a
build whose heartbeat went stale, up to ``RELEASE_MAX_ATTEMPTS`` attempts, then fails it with the reason; each
attempt builds in its own staging folder, and a new claim removes the folders of the attempts before it.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from benchmark.conf import release_settings
from benchmark.models import Release, ReleaseFile, ReleaseStatus
from benchmark.releases import exports
from benchmark.releases.build import Built, local_path, write_release
from benchmark.releases.packaging import (
    parse_sha256sums,
)
from benchmark.releases.selectors import release_clips_valid
from benchmark.releases.signals import release_ready
from core.errors import ServiceError
from core.fencing import Fence, Heartbeat, Superseded, reap_silent

logger = logging.getLogger(__name__)


# --- creating and enqueueing --------------------------------------------------------------------------------------
def release_create(*, version: str, limit: int | None = None, alignments: str = "", audio_format: str = "") -> Release:
    """A release row in status building, to be built by ``release_build``. A failed release of the same version
    is reset and built again; any other existing version is refused (409). ``audio_format``: the TIMIT tree's
    audio, ``wav`` or ``flac`` (``RELEASE_AUDIO_FORMAT`` when empty)."""
    version = (version or "").strip()
    if limit is not None and limit < 1:
        raise ServiceError("limit_invalid", "The clip limit must be at least 1.")
    if not release_clips_valid().exists():
        raise ServiceError("release_empty", "There are no valid clips to release.")
    if alignments and not Path(alignments).is_file():
        raise ServiceError("alignments_missing", f"{alignments} does not exist.")
    audio_format = (audio_format or release_settings().audio_format).lower()
    if audio_format not in exports.AUDIO_FORMATS:
        raise ServiceError("audio_format_invalid", f"The audio format is one of {', '.join(exports.AUDIO_FORMATS)}.")
    options = {"alignments": alignments} if alignments else {}
    options["audio_format"] = audio_format
    with transaction.atomic():
        existing = Release.objects.select_for_update().filter(version=version).first()
        if existing is not None:
            if existing.status != ReleaseStatus.FAILED:
                raise ServiceError(
                    "release_exists", f"Release {version} already exists ({existing.status}).", status_code=409
                )
            existing.status = ReleaseStatus.BUILDING
            existing.started_at = existing.heartbeat_at = existing.finished_at = None
            existing.attempts = 0  # a new build, with attempts of its own; ``claims`` goes on counting
            existing.error = ""
            existing.limit = limit
            existing.facts = {"options": options}
            existing.save()
            return existing
        release = Release(version=version, limit=limit, facts={"options": options})
        try:
            release.full_clean()
        except ValidationError as exc:
            if "version" in exc.message_dict and Release.objects.filter(version=version).exists():
                raise ServiceError("release_exists", f"Release {version} already exists.", status_code=409) from exc
            raise ServiceError("version_invalid", f"Version {version!r}: {exc.messages[0]}") from exc
        try:
            with transaction.atomic():
                release.save()
        except IntegrityError as exc:
            raise ServiceError("release_exists", f"Release {version} already exists.", status_code=409) from exc
    return release


def release_build_enqueue(*, release: Release) -> None:
    """Build in the worker once the row is committed."""
    from benchmark.tasks import release_build as task

    transaction.on_commit(lambda: task.delay(release.pk))


# --- building -----------------------------------------------------------------------------------------------------
def _stale_after() -> timedelta:
    return release_settings().heartbeat_stale


def _max_attempts() -> int:
    return max(1, release_settings().max_attempts)


def _is_live(release: Release, now) -> bool:
    """Claimed by a worker that beat recently (a claim that has not beaten yet counts from its start)."""
    last = release.heartbeat_at or release.started_at
    return last is not None and now - last < _stale_after()


def release_fence(release: Release) -> Fence[Release]:
    """The fence of ``release``'s current claim: its claim number, while the release is building."""
    return Fence(Release, release.pk, release.claims, counter="claims", holds=Q(status=ReleaseStatus.BUILDING))


def _claim(release_id: int) -> Release | None:
    """Claim the build under the row lock: one no worker holds (new, or re-queued by the reaper), or one whose
    worker went silent (a redelivered message after its worker died) while attempts remain; the reaper fails a
    silent one that has none left. None when there is nothing to build: gone, ready, failed, or held by a live
    worker. What earlier attempts left (published files, staging folders) goes before the new one starts."""
    with transaction.atomic():
        release = Release.objects.select_for_update().filter(pk=release_id, status=ReleaseStatus.BUILDING).first()
        if release is None:
            return None
        now = timezone.now()
        if release.started_at is not None and (_is_live(release, now) or release.attempts >= _max_attempts()):
            return None
        release.attempts += 1
        release.claims += 1
        release.started_at = release.heartbeat_at = now
        release.save(update_fields=["attempts", "claims", "started_at", "heartbeat_at"])
        # Under the lock: no other claim can start building in between.
        _remove_stored(release)
        for folder in _staging_root().glob(f"{_staging_prefix(release)}*"):
            shutil.rmtree(folder, ignore_errors=True)
    return release


def release_build(*, release_id: int, progress: Callable[[str], None] | None = None) -> Release | None:
    """Build a claimed release to the end: ready, or failed with the reason. Returns the row as it stands and does
    nothing else when the row is gone, already built or being built by someone else, so a redelivered task is
    harmless. A worker whose claim was taken over on the way (it was silent past the stale time) stops at its next
    fenced write and leaves the row to the claim that holds it."""
    release = _claim(release_id)
    if release is None:
        return Release.objects.filter(pk=release_id).first()
    fence = release_fence(release)
    say = progress or (lambda message: logger.info("release %s: %s", release.version, message))
    staging = _staging_dir(release)
    started = time.monotonic()
    try:
        with Heartbeat(fence, every=release_settings().heartbeat_s) as heartbeat:
            built = write_release(release, staging=staging, say=say)
            heartbeat.check()
        built.facts["build_seconds"] = round(time.monotonic() - started, 2)
        _commit_ready(release, built, fence=fence, staging=staging)
    except Superseded as exc:
        logger.warning("release %s: attempt %s stops: %s", release.version, release.attempts, exc)
    except Exception as exc:
        message = exc.message if isinstance(exc, ServiceError) else f"{type(exc).__name__}: {exc}"
        logger.exception("release %s failed", release.version)
        try:
            _fail(release, fence, message)
        except Superseded:
            logger.warning("release %s: attempt %s was taken over; its failure is not recorded", release.version,
                           release.attempts)  # fmt: skip
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    release.refresh_from_db()
    return release


def _fail(release: Release, fence: Fence[Release], message: str) -> None:
    """Failed with ``message``, and whatever this attempt published removed, while the claim still holds the row
    (:class:`Superseded` otherwise: a later claim's files are not this worker's to remove)."""
    with transaction.atomic():
        fence.lock()
        _remove_stored(release)
        fence.update(status=ReleaseStatus.FAILED, error=message, finished_at=timezone.now())


def releases_reap() -> dict[str, int]:
    """Periodic: a build whose worker went silent (no heartbeat for ``RELEASE_HEARTBEAT_STALE_SECONDS``) is
    re-queued while it has attempts left, else failed with the reason. Without this a killed builder's release
    stayed building: Redis hands its message out again only after the visibility timeout (hours), and the embedded
    broker's prompt redelivery finds the claim still fresh and leaves it. Re-queueing raises the fencing token, so
    a silent worker that comes back changes nothing; a row locked by a worker in its final step is skipped."""
    building = Release.objects.filter(status=ReleaseStatus.BUILDING)
    return reap_silent(
        building, stale_after=_stale_after(), max_attempts=_max_attempts(), requeue=_requeue_silent, fail=_fail_silent
    )


def _requeue_silent(release: Release) -> None:
    # Waiting for a worker again: no start, no heartbeat (so it is not reaped twice), a new token.
    release.started_at = release.heartbeat_at = None
    release.claims += 1
    release.save(update_fields=["started_at", "heartbeat_at", "claims"])
    release_build_enqueue(release=release)
    logger.warning("release %s: its worker went silent; build re-queued", release.version)


def _fail_silent(release: Release, now) -> None:
    _remove_stored(release)
    release.status = ReleaseStatus.FAILED
    release.error = (
        f"The build's worker was lost on each of its {release.attempts} attempts "
        f"(the last heartbeat at {release.heartbeat_at or release.started_at})."
    )
    release.finished_at = now
    release.claims += 1
    release.save(update_fields=["status", "error", "finished_at", "claims"])


def release_withdraw(*, release_id: int) -> Release:
    """Take a published release down. Releases are never deleted (the admin grants no delete): a withdrawn one
    leaves the public list, its pages, API and files answer 404 ``release_withdrawn``, its leaderboard closes
    and no new submission or training run is made on it. Its rows and stored files stay, unchanged, as the
    record of what was published and so that its speakers keep their splits in later releases. One way: a
    release published again gets a new version.

    Refused: an unknown release (404), one that is not ready (409: a build in progress or a failed one was never
    published)."""
    with transaction.atomic():
        release = Release.objects.select_for_update().filter(pk=release_id).first()
        if release is None:
            raise ServiceError("release_unknown", f"There is no release {release_id}.", status_code=404)
        if release.status != ReleaseStatus.READY:
            raise ServiceError(
                "release_not_ready",
                f"Release {release.version} is {release.status}; only a published (ready) release is withdrawn.",
                status_code=409,
            )
        release.status, release.withdrawn_at = ReleaseStatus.WITHDRAWN, timezone.now()
        release.save(update_fields=["status", "withdrawn_at"])
    logger.info("release %s withdrawn", release.version)
    return release


def _staging_root() -> Path:
    """Beside the media root on local storage, so that publishing is a rename; the temporary directory otherwise."""
    local = local_path("tmp")
    if local is None:
        return Path(tempfile.gettempdir())
    local.mkdir(parents=True, exist_ok=True)
    return local


def _staging_prefix(release: Release) -> str:
    return f"release-{release.pk}-"


def _staging_dir(release: Release) -> Path:
    """This attempt's own folder, named after the release so that the next claim finds and removes it if the
    worker dies (a SIGKILL runs no clean-up)."""
    return Path(tempfile.mkdtemp(prefix=f"{_staging_prefix(release)}a{release.attempts}-", dir=_staging_root()))


def _publish(folder: Path, prefix: str) -> None:
    local = local_path(prefix)
    if local is not None:
        local.parent.mkdir(parents=True, exist_ok=True)
        folder.rename(local)  # same filesystem: atomic, no copy
        return
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        with path.open("rb") as handle:
            default_storage.save(f"{prefix}/{path.relative_to(folder).as_posix()}", File(handle))


def _remove_stored(release: Release) -> None:
    for prefix in (release.storage_prefix, release.private_prefix):
        local = local_path(prefix)
        if local is not None:
            shutil.rmtree(local, ignore_errors=True)
        else:
            _delete_tree(prefix)


def _delete_tree(prefix: str) -> None:
    try:
        folders, files = default_storage.listdir(prefix)
    except (FileNotFoundError, OSError):
        return
    for name in files:
        default_storage.delete(f"{prefix}/{name}")
    for folder in folders:
        _delete_tree(f"{prefix}/{folder}")


def _commit_ready(release: Release, built: Built, *, fence: Fence[Release], staging: Path) -> None:
    """Publish the staged files and record the release ready, under the row lock while the claim holds it: no
    other claim can start (and remove the files) between the two, and a superseded worker publishes nothing. On
    local storage publishing is two renames; on object storage the lock is held through the uploads."""
    splits = Counter(e.split for e in built.entries)
    with transaction.atomic():
        fence.lock()
        _publish(staging / "public", release.storage_prefix)
        _publish(staging / "private", release.private_prefix)
        ReleaseFile.objects.filter(release=release).delete()
        _files_insert(
            (release.pk, rel, f"{release.storage_prefix}/{rel}", split, fmt, built.sizes[rel], built.sums[rel])
            for rel, (fmt, split) in sorted(built.files.items())
        )
        release.status = ReleaseStatus.READY
        release.finished_at = timezone.now()
        release.clip_count = sum(splits.values())
        release.speaker_count = len(built.assignment)
        release.hours = built.facts["hours"]
        release.facts = built.facts
        release.manifest_path = f"{release.storage_prefix}/manifest.jsonl"
        release.hidden_manifest_path = f"{release.private_prefix}/hidden/manifest.jsonl"
        release.build_seconds = built.facts.get("build_seconds")
        release.hmm = f"{release.private_prefix}/{built.hmm}" if built.hmm else ""
        release.error = ""
        release.save()
    release_ready.send(sender=Release, release=release)  # the leaderboard re-scores its submissions on it


FILE_COLUMNS = ("release", "path", "storage_name", "split", "format", "size", "sha256")


def _files_insert(rows: Iterable[tuple]) -> None:
    """One ``ReleaseFile`` row per tuple of :data:`FILE_COLUMNS` values, as plain values: a release has some 17,500
    files, and the ORM's ``bulk_create`` spent more on making model instances and compiling each batch's values
    than the database spent storing them (1.8 s of a build). PostgreSQL: one COPY; elsewhere executemany."""
    meta = ReleaseFile._meta
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    column = {field.name: field.column for field in meta.concrete_fields}
    names = ", ".join(quote(column[name]) for name in FILE_COLUMNS)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(FILE_COLUMNS))
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", list(rows))  # noqa: S608


# --- reading a built release on the server -------------------------------------------------------------------------
def release_checksums(*, release: Release) -> dict[str, str]:
    with default_storage.open(f"{release.storage_prefix}/SHA256SUMS", "rb") as handle:
        return parse_sha256sums(handle.read().decode())
