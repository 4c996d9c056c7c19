"""API token authentication that loads the caller's contributor profile with the token and the user."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication


class ContributorTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, with the contributor joined in the same query: every contributor endpoint
    starts from ``contributor_for_user``, and on the validation path (a vote, ``validation/next``) that second
    lookup was one of a dozen statements."""

    def authenticate_credentials(self, key):
        model = self.get_model()
        try:
            token = model.objects.select_related("user", "user__contributor").get(key=key)
        except model.DoesNotExist as exc:
            raise exceptions.AuthenticationFailed("Invalid token.") from exc
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return (token.user, token)
