"""AWS's public Powertools layer as a function's layer instead of one built here.

AWS publishes Powertools for every Python runtime and architecture as a public layer
(account 017000801446), built with all extras. A function that runs on it must leave out
Powertools and everything Powertools' extras pull in, or it ships them twice (and may shadow the
layer's copies with other versions).
"""

from __future__ import annotations

import warnings
from typing import Dict, Iterable, List, Mapping, Set

with warnings.catch_warnings():
    # packaging 21.3 (Pants 2.17's) trips pyparsing's deprecation warnings on import.
    warnings.simplefilter("ignore")
    from packaging.markers import InvalidMarker, UndefinedEnvironmentName
    from packaging.requirements import InvalidRequirement, Requirement

from pants_powertools.layering import canonicalize_name
from pants_powertools.runtimes import get_architecture, get_runtime

POWERTOOLS_DISTRIBUTION = "aws-lambda-powertools"
PUBLIC_LAYER_ACCOUNT = "017000801446"


class PublicLayerError(ValueError):
    pass


def public_layer_arn(runtime: str, architecture: str, version: int) -> str:
    """The layer version ARN, with `{region}` left for the deployment tool to fill in."""
    rt = get_runtime(runtime)
    arch = get_architecture(architecture)
    if version < 1:
        raise PublicLayerError(f"A layer version is a positive number, not {version}.")
    return (
        f"arn:aws:lambda:{{region}}:{PUBLIC_LAYER_ACCOUNT}:layer:"
        f"AWSLambdaPowertoolsPythonV3-python{rt.python_version[0]}{rt.python_version[1]}-"
        f"{arch.name}:{version}"
    )


def requires_dist(metadata_text: str) -> List[str]:
    lines = []
    for line in metadata_text.splitlines():
        if not line.strip():
            break  # The body (long description) starts here.
        key, _, value = line.partition(":")
        if key == "Requires-Dist":
            lines.append(value.strip())
    return lines


def provides_extras(metadata_text: str) -> List[str]:
    extras = []
    for line in metadata_text.splitlines():
        if not line.strip():
            break
        key, _, value = line.partition(":")
        if key == "Provides-Extra":
            extras.append(value.strip())
    return extras


def _applies(req: Requirement, env: Mapping[str, str], extras: Iterable[str]) -> bool:
    if req.marker is None:
        return True
    for extra in list(extras) or [""]:
        try:
            if req.marker.evaluate(dict(env, extra=extra)):
                return True
        except (InvalidMarker, UndefinedEnvironmentName):
            return True
    return False


def powertools_closure(
    metadata_by_distribution: Mapping[str, str], marker_environment: Mapping[str, str]
) -> Set[str]:
    """Powertools and every installed distribution it reaches with all its extras enabled."""
    metadata = {canonicalize_name(name): text for name, text in metadata_by_distribution.items()}
    if POWERTOOLS_DISTRIBUTION not in metadata:
        return set()
    closure: Set[str] = set()
    pending: Dict[str, List[str]] = {
        POWERTOOLS_DISTRIBUTION: provides_extras(metadata[POWERTOOLS_DISTRIBUTION])
    }
    while pending:
        name, extras = pending.popitem()
        if name in closure:
            continue
        closure.add(name)
        for line in requires_dist(metadata.get(name, "")):
            with warnings.catch_warnings():
                # packaging 21.3 (Pants 2.17's) trips pyparsing's deprecation warnings.
                warnings.simplefilter("ignore")
                try:
                    req = Requirement(line)
                except InvalidRequirement:
                    continue
                dep = canonicalize_name(req.name)
                if dep in metadata and dep not in closure and _applies(req, marker_environment, extras):
                    pending[dep] = sorted(req.extras)
    return closure
