"""The licences a corpus may carry into a release, by SPDX id.

Plain Python, no Django. A release may be used, adapted and redistributed by anyone for any purpose (it is
resampled, re-encoded and re-transcribed on the way in), so only licences that allow all of that are known
here: public-domain dedications and attribution (or share-alike) licences. Non-commercial and no-derivatives
licences are refused with their reason rather than published under terms the release would break.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Licence:
    spdx: str
    name: str
    url: str
    hf: str  # the Hugging Face Hub's licence identifier, for a dataset card's `license:`
    attribution: bool  # the source must be credited wherever its clips are published
    share_alike: bool = False


def _cc(version: str, kind: str, share_alike: bool = False) -> Licence:
    return Licence(
        spdx=f"CC-{kind.upper()}-{version}",
        name=f"Creative Commons Attribution{' ShareAlike' if share_alike else ''} {version}"
        + (" International" if version == "4.0" else ""),
        url=f"https://creativecommons.org/licenses/{kind}/{version}/legalcode",
        hf=f"cc-{kind}-{version}",
        attribution=True,
        share_alike=share_alike,
    )


CC0 = Licence(
    spdx="CC0-1.0",
    name="Creative Commons CC0 1.0 Universal (public domain dedication)",
    url="https://creativecommons.org/publicdomain/zero/1.0/legalcode",
    hf="cc0-1.0",
    attribution=False,
)
_KNOWN = [
    CC0,
    Licence("PDDL-1.0", "Open Data Commons Public Domain Dedication and License 1.0",
            "https://opendatacommons.org/licenses/pddl/1-0/", "pddl", attribution=False),
    *(_cc(v, "by") for v in ("1.0", "2.0", "2.5", "3.0", "4.0")),
    *(_cc(v, "by-sa", share_alike=True) for v in ("1.0", "2.0", "2.5", "3.0", "4.0")),
    Licence("ODC-By-1.0", "Open Data Commons Attribution License 1.0",
            "https://opendatacommons.org/licenses/by/1-0/", "odc-by", attribution=True),
    Licence("ODbL-1.0", "Open Data Commons Open Database License 1.0",
            "https://opendatacommons.org/licenses/odbl/1-0/", "odbl", attribution=True, share_alike=True),
    Licence("CDLA-Permissive-2.0", "Community Data License Agreement Permissive 2.0",
            "https://cdla.dev/permissive-2-0/", "cdla-permissive-2.0", attribution=True),
    Licence("CDLA-Sharing-1.0", "Community Data License Agreement Sharing 1.0",
            "https://cdla.dev/sharing-1-0/", "cdla-sharing-1.0", attribution=True, share_alike=True),
    Licence("Apache-2.0", "Apache License 2.0", "https://www.apache.org/licenses/LICENSE-2.0", "apache-2.0",
            attribution=True),
    Licence("MIT", "MIT License", "https://opensource.org/license/mit", "mit", attribution=True),
]  # fmt: skip
LICENCES: dict[str, Licence] = {lic.spdx.lower(): lic for lic in _KNOWN}
# Real SPDX ids whose terms a release cannot keep: named so the refusal says why.
_REFUSED_MARKERS = {"-nc": "forbids commercial use", "-nd": "forbids derivatives (the import re-encodes the audio)"}


class UnknownLicence(ValueError):
    """A sentence for the operator: the id is not one a release can carry."""


def licence_get(spdx: str) -> Licence:
    """The licence of an SPDX id (any case); UnknownLicence with the reason and the accepted ids otherwise."""
    key = (spdx or "").strip().lower()
    if key in LICENCES:
        return LICENCES[key]
    accepted = ", ".join(sorted(lic.spdx for lic in _KNOWN))
    for marker, reason in _REFUSED_MARKERS.items():
        if key.startswith("cc-") and marker in key:
            raise UnknownLicence(
                f"The licence {spdx!r} {reason}, which a release (free to reuse and adapt for any purpose) cannot "
                f"honour; accepted SPDX ids: {accepted}."
            )
    raise UnknownLicence(f"Unknown licence {spdx!r}: give an SPDX id, one of {accepted}.")
