"""Sign-up, profile and consent."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from contributors.models import Contributor
from core.errors import ServiceError
from core.inputs import refuse_control_characters

PROFILE_FIELDS = ("age_band", "gender", "accent", "first_language")
FREE_TEXT_FIELDS = ("accent", "first_language")  # published in release metadata: printable, one line
GUARDIAN_REQUIRED = (
    "Contributors under 18 need a parent's or legal guardian's agreement before their recordings are published: "
    "tick the guardian box together with them (for 12 or under, the parent or guardian runs the account)."
)
GUARDIAN_EMAIL_REQUIRED = (
    "A parent's or legal guardian's agreement comes with their e-mail address, so that the project can reach "
    "them about the recordings (to withdraw them, for one)."
)


EMAIL_MAX = 254  # User.email's max_length (RFC 5321's limit on a forward path)


def signup_problems(*, username: str, password: str, email: str = "") -> dict[str, str]:
    """Every reason a sign-up would be refused, by field (empty when none), so that a form can show them all
    at once instead of one per attempt; ``contributor_signup`` refuses with the same sentences."""
    User = get_user_model()
    problems: dict[str, str] = {}
    if email:
        try:
            validate_email(email)
        except ValidationError:
            problems["email"] = f"{email[:80]!r} is not an e-mail address."
        if len(email) > EMAIL_MAX:  # the column's length: longer, PostgreSQL refuses the row (a 500)
            problems["email"] = f"An e-mail address has at most {EMAIL_MAX} characters."
    try:
        validate_password(password, user=User(username=username, email=email))
    except ValidationError as exc:
        problems["password"] = " ".join(exc.messages)
    if User.objects.filter(username__iexact=username).exists():
        problems["username"] = f"The username {username!r} is taken."
    return problems


@transaction.atomic
def contributor_signup(
    *,
    username: str,
    password: str,
    email: str = "",
    cc0_consent: bool = False,
    guardian_consent: bool = False,
    guardian_email: str = "",
    **profile: Any,
) -> Contributor:
    """Create a login and its contributor profile. Consent may be given now or later."""
    User = get_user_model()
    user = User(username=username, email=email)
    problems = signup_problems(username=username, password=password, email=email)
    if "email" in problems:
        raise ServiceError("email_invalid", problems["email"])
    if "password" in problems:
        raise ServiceError("password_invalid", problems["password"])
    if "username" in problems:
        raise ServiceError("username_taken", problems["username"], status_code=409)
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:  # a concurrent sign-up took the name between the check and the insert
        raise ServiceError("username_taken", f"The username {username!r} is taken.", status_code=409) from exc
    contributor = Contributor(user=user)
    contributor_update_profile(
        contributor=contributor,
        cc0_consent=cc0_consent,
        guardian_consent=guardian_consent,
        guardian_email=guardian_email,
        **profile,
    )
    return contributor


def contributor_update_profile(
    *,
    contributor: Contributor,
    cc0_consent: bool | None = None,
    guardian_consent: bool | None = None,
    guardian_email: str | None = None,
    **profile: Any,
) -> Contributor:
    """Set optional demographics; ``cc0_consent=True`` records the consent time once. Consent is not
    withdrawn here: clips already dedicated to CC0 stay so; deleting the account removes them from
    every later release.

    A contributor under 18 (age band "12 or under" or "13 to 17") dedicates recordings to CC0 only with a
    parent's or legal guardian's agreement (``guardian_consent``, recorded once, with the guardian's e-mail,
    ``guardian_email``, stored): refused with 400 ``guardian_consent_required`` otherwise, also when a consenting
    contributor changes to such a band, and with ``guardian_email_required`` / ``guardian_email_invalid`` when the
    agreement comes without a usable address."""
    unknown = set(profile) - set(PROFILE_FIELDS)
    if unknown:
        raise ServiceError("invalid", f"Unknown profile fields: {', '.join(sorted(unknown))}.")
    for field, value in profile.items():
        if field in FREE_TEXT_FIELDS:
            refuse_control_characters(value or "", field=field)
        setattr(contributor, field, value or "")
    now = timezone.now()
    if guardian_email:
        guardian_email = guardian_email.strip()
        try:
            validate_email(guardian_email)
        except ValidationError as exc:
            raise ServiceError("guardian_email_invalid", f"{guardian_email!r} is not an e-mail address.") from exc
        contributor.guardian_email = guardian_email
    if guardian_consent and contributor.guardian_consent_at is None:
        if not contributor.guardian_email:
            raise ServiceError("guardian_email_required", GUARDIAN_EMAIL_REQUIRED)
        contributor.guardian_consent_at = now
    if cc0_consent and contributor.cc0_consent_at is None:
        contributor.cc0_consent_at = now
    if contributor.is_minor and contributor.has_consented and contributor.guardian_consent_at is None:
        raise ServiceError("guardian_consent_required", GUARDIAN_REQUIRED)
    contributor.full_clean(exclude=["user"])
    contributor.save()
    return contributor


def contributor_for_user(user: Any) -> Contributor:
    """The user's contributor profile, made on first use (staff created in the admin have none yet). Token
    authentication has usually loaded it with the user already."""
    try:
        return user.contributor
    except Contributor.DoesNotExist:
        contributor, _ = Contributor.objects.get_or_create(user=user)
        return contributor
