"""Migration 0007: clips from before sources existed get one: none for platform recordings, the corpus their
import named for imported ones (speechocean762 under CC BY 4.0; an unknown name NOASSERTION, to be stated)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("contributors", "0006_contributor_guardian_consent")]
AFTER = [("contributors", "0008_clip_source_iff_imported")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture(autouse=True)
def _back_to_the_latest():
    """The tests after this one need every migration applied, later ones (0009...) included."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_existing_clips_are_given_their_source():
    apps = migrate(BEFORE)
    User = apps.get_model("auth", "User")
    Contributor = apps.get_model("contributors", "Contributor")
    Prompt = apps.get_model("contributors", "Prompt")
    Clip = apps.get_model("contributors", "Clip")

    def clip(username: str, prompt_source: str, provenance: str, n: int) -> int:
        user = User.objects.create(username=username)
        contributor = Contributor.objects.create(user=user, speaker_id=f"spk-{n:08d}")
        prompt = Prompt.objects.create(text=f"t{n}", normalised_text=f"t{n}", source=prompt_source)
        return Clip.objects.create(
            contributor=contributor, prompt=prompt, audio=f"clips/{n}.flac", sha256=f"{n:064d}", duration_s=1.0,
            original_format="flac", original_sample_rate=16000, original_channels=1, original_bytes=1,
            rms_dbfs=-20, peak_dbfs=-3, clipping_ratio=0, provenance=provenance,
        ).pk  # fmt: skip

    recorded = clip("alice", "", "recorded", 1)
    so762 = clip("speechocean762-train-1001", "speechocean762-train", "imported", 2)
    demo = clip("demo-corpus-c01", "demo", "imported", 3)  # the demo's prompts were not the import's
    unknown = clip("toy-s1", "toy", "imported", 4)

    apps = migrate(AFTER)
    Clip = apps.get_model("contributors", "Clip")
    sources = {c.pk: c.source for c in Clip.objects.select_related("source")}
    assert sources[recorded] is None
    assert (sources[so762].name, sources[so762].licence) == ("speechocean762-train", "CC-BY-4.0")
    assert "Zhang, Junbo" in sources[so762].citation and sources[so762].url == "https://www.openslr.org/101/"
    assert (sources[demo].name, sources[demo].licence) == ("demo-corpus", "CC0-1.0")
    assert (sources[unknown].name, sources[unknown].licence) == ("toy", "NOASSERTION")
