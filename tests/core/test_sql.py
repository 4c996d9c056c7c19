"""core.sql: rows read by the written-out statements make the same instances as the ORM's, and on PostgreSQL the
statements sent through ``prepared_cursor`` are prepared on the server (and logged with their values)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from contributors.models import Clip, Contributor, Prompt, ValidationAssignment
from contributors.selectors import validation_next_for
from core import sql
from core.sql import prepared_cursor
from tests.contributors.test_votes import record
from tests.factories import ContributorFactory, FounderFactory, assign

pytestmark = pytest.mark.django_db


def _read(model, pk):
    with prepared_cursor() as cursor:
        cursor.execute(f"SELECT {sql.columns(model, 't')} FROM {model._meta.db_table} t WHERE t.id = %s", [pk])  # noqa: S608
        return sql.from_row(model, cursor.fetchone())


def _values(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in type(instance)._meta.concrete_fields}


def test_rows_make_the_same_instances_as_the_orm():
    """Datetimes (aware), booleans, floats, JSON and nullable columns, on either backend's converters."""
    founder = FounderFactory()
    clip = record(ContributorFactory())[0]
    assignment = assign(founder, clip)

    for model, pk in ((Clip, clip.pk), (Prompt, clip.prompt_id), (Contributor, founder.pk)):
        read = _read(model, pk)
        assert _values(read) == _values(model.objects.get(pk=pk))
        assert not read._state.adding  # saved instances, as the ORM's
    read = _read(ValidationAssignment, assignment.pk)
    assert _values(read) == _values(ValidationAssignment.objects.get(pk=assignment.pk))
    assert read.expires_at.tzinfo is not None


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
def test_the_queue_statements_are_prepared_once_with_a_generic_plan_and_logged_with_their_values():
    founder = FounderFactory()
    pending = {clip.pk for clip in record(ContributorFactory(), 3)}
    threshold = connection.settings_dict["OPTIONS"]["prepare_threshold"]

    with CaptureQueriesContext(connection) as captured:
        for _ in range(threshold + 1):
            clip = validation_next_for(contributor=founder, now=timezone.now())
            assert clip.pk in pending

    with connection.cursor() as cursor:
        cursor.execute("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements")
        prepared = {row[0]: row[1:] for row in cursor.fetchall()}
    queue = [plans for text, plans in prepared.items() if "FROM contributors_clip c WHERE c.status = 'pending'" in text]
    assert queue, list(prepared)
    # Planned once (generic): PostgreSQL's default planned it again on every execution, 8 times the run's cost.
    assert all(generic > 0 and custom == 0 for generic, custom in queue), queue
    assert not any("pg_prepared_statements" in text for text in prepared)  # Django's own cursors never prepare
    # Once prepared, psycopg keeps no text to read back: the log still names the statement and its values.
    assert captured.captured_queries[-1]["sql"].endswith(f"WHERE c.id = {clip.pk}")
    assert all(query["sql"] and "%s" not in query["sql"] for query in captured.captured_queries)
