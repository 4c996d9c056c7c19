"""One-time notices to a contributor: becoming a trustee is told once, on the next page they open."""

from __future__ import annotations

from django.utils import timezone

from contributors.models import Contributor


def contributor_take_trustee_notice(*, contributor: Contributor) -> bool:
    """True once per contributor: the first time this is asked while they are a trustee (founders included).

    One conditional UPDATE marks the notice as shown and says whether this call did it, so that two pages
    opened at once cannot both show it, and a page that is not shown it costs one statement and no row lock
    beyond it. A trustee who loses the status and earns it back is not told again."""
    if not contributor.is_trustee or contributor.trustee_notice_at is not None:
        return False
    now = timezone.now()
    taken = Contributor.objects.filter(pk=contributor.pk, is_trustee=True, trustee_notice_at__isnull=True).update(
        trustee_notice_at=now
    )
    if taken:
        contributor.trustee_notice_at = now
    return bool(taken)
