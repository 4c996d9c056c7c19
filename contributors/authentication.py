"""API token authentication that loads the caller's contributor profile with the token and the user."""

from __future__ import annotations

import functools

from django.contrib.auth import get_user_model
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from contributors.models import Contributor
from core import sql
from core.sql import prepared_cursor


class ContributorTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, with the user and the contributor joined in the same query: every contributor
    endpoint starts from ``contributor_for_user``, and on the validation path (a vote, ``validation/next``) that
    second lookup was one of a dozen statements. The statement is written out once (core.sql): the ORM's
    ``select_related`` over three tables cost more to compile than to run, on every API request."""

    def authenticate_credentials(self, key):
        model = self.get_model()
        user_model = get_user_model()
        with prepared_cursor() as cursor:
            cursor.execute(_token_sql(model), [key])
            row = cursor.fetchone()
        if row is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        token_end = sql.width(model)
        user_end = token_end + sql.width(user_model)
        token = sql.from_row(model, row[:token_end])
        token.user = user = sql.from_row(user_model, row[token_end:user_end])
        if row[user_end] is None:  # no profile yet (staff made in the admin): contributor_for_user makes one
            user_model.contributor.related.set_cached_value(user, None)
        else:
            user.contributor = sql.from_row(Contributor, row[user_end:])
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return (user, token)


@functools.cache
def _token_sql(token_model: type) -> str:
    users, contributors = get_user_model()._meta.db_table, Contributor._meta.db_table
    quote = sql.quote
    return (
        f"SELECT {sql.columns(token_model, 't')}, {sql.columns(get_user_model(), 'u')},"  # noqa: S608 (names only)
        f" {sql.columns(Contributor, 'c')} FROM {quote(token_model._meta.db_table)} t"
        f" JOIN {quote(users)} u ON u.id = t.user_id LEFT JOIN {quote(contributors)} c ON c.user_id = u.id"
        " WHERE t.key = %s"
    )
