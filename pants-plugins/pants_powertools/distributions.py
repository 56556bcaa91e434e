"""Installed distributions and requirement strings, read one way everywhere (on `packaging`).

Names are PEP 503-normalized, so `Python_Dateutil` and `python-dateutil` are one distribution.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from email.parser import HeaderParser
from typing import Dict, FrozenSet, List, Mapping, Optional, Set, Tuple

with warnings.catch_warnings():
    # packaging 21.3 (Pants 2.17's) trips pyparsing's deprecation warnings on import.
    warnings.simplefilter("ignore")
    from packaging.markers import InvalidMarker, UndefinedEnvironmentName
    from packaging.requirements import InvalidRequirement, Requirement

POWERTOOLS_DISTRIBUTION = "aws-lambda-powertools"


def canonicalize_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Metadata:
    """The headers of a `*.dist-info/METADATA` file that packaging decisions need."""

    name: str  # PEP 503-normalized.
    version: str
    requires_dist: Tuple[str, ...]
    provides_extra: Tuple[str, ...]  # Normalized.
    headers: str  # The raw header block, without the long description.

    def provide_extra_all(self) -> Tuple[str, ...]:
        """Every extra, as AWS's public Powertools layer is built."""
        return self.provides_extra


def parse_metadata(text: str) -> Metadata:
    headers = text.replace("\r\n", "\n").split("\n\n", 1)[0]
    parsed = HeaderParser().parsestr(headers)
    return Metadata(
        name=canonicalize_name((parsed.get("Name") or "").strip()),
        version=(parsed.get("Version") or "").strip(),
        requires_dist=tuple(r.strip() for r in parsed.get_all("Requires-Dist") or []),
        provides_extra=tuple(
            canonicalize_name(e.strip()) for e in parsed.get_all("Provides-Extra") or []
        ),
        headers=headers,
    )


def parse_requirement(text: str) -> Optional[Requirement]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return Requirement(text)
        except InvalidRequirement:
            return None


def requirement_extras(requirements: Tuple[str, ...], name: str) -> FrozenSet[str]:
    """The extras that requirement strings ask of distribution `name`, normalized."""
    wanted = canonicalize_name(name)
    extras: Set[str] = set()
    for text in requirements:
        req = parse_requirement(text)
        if req is not None and canonicalize_name(req.name) == wanted:
            extras.update(canonicalize_name(e) for e in req.extras)
    return frozenset(extras)


def marker_applies(req: Requirement, env: Mapping[str, str], extras: Tuple[str, ...] = ()) -> bool:
    """Whether a requirement applies in `env` with any of `extras` enabled (unknown: yes)."""
    if req.marker is None:
        return True
    for extra in list(extras) or [""]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                if req.marker.evaluate(dict(env, extra=extra)):
                    return True
            except (InvalidMarker, UndefinedEnvironmentName):
                return True
    return False


def extras_requirements(metadata: Metadata) -> Dict[str, List[str]]:
    """Each extra of a wheel and the distributions it requires (from `extra == "…"` markers).

    Extras with no requirement are kept (empty list) so that a declared extra is never reported
    as unknown.
    """
    result: Dict[str, set] = {extra: set() for extra in metadata.provides_extra}
    for text in metadata.requires_dist:
        req = parse_requirement(text)
        if req is None or req.marker is None:
            continue
        for extra in _marker_extras(str(req.marker)):
            result.setdefault(extra, set()).add(canonicalize_name(req.name))
    return {extra: sorted(names) for extra, names in sorted(result.items())}


_EXTRA_IN_MARKER = re.compile(
    r"""\bextra\s*==\s*["']([^"']+)["']|["']([^"']+)["']\s*==\s*extra\b"""
)


def _marker_extras(marker: str) -> List[str]:
    return [canonicalize_name(a or b) for a, b in _EXTRA_IN_MARKER.findall(marker)]
