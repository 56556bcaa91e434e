"""AWS's public Powertools layer as a function's layer instead of one built here.

AWS publishes Powertools for every Python runtime and architecture as a public layer
(account 017000801446), built with all extras. A function that runs on it must leave out
Powertools and everything Powertools' extras pull in, or it ships them twice (and may shadow the
layer's copies with other versions).
"""

from __future__ import annotations

from typing import Dict, Mapping, Set, Tuple

from pants_powertools.distributions import (
    POWERTOOLS_DISTRIBUTION,
    canonicalize_name,
    marker_applies,
    parse_metadata,
    parse_requirement,
)
from pants_powertools.runtimes import get_architecture, get_runtime

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


def powertools_closure(
    metadata_by_distribution: Mapping[str, str], marker_environment: Mapping[str, str]
) -> Set[str]:
    """Powertools and every installed distribution it reaches with all its extras enabled."""
    metadata = {canonicalize_name(name): text for name, text in metadata_by_distribution.items()}
    if POWERTOOLS_DISTRIBUTION not in metadata:
        return set()
    closure: Set[str] = set()
    pending: Dict[str, Tuple[str, ...]] = {
        POWERTOOLS_DISTRIBUTION: parse_metadata(
            metadata[POWERTOOLS_DISTRIBUTION]
        ).provide_extra_all()
    }
    while pending:
        name, extras = pending.popitem()
        if name in closure:
            continue
        closure.add(name)
        for line in parse_metadata(metadata.get(name, "")).requires_dist:
            req = parse_requirement(line)
            if req is None:
                continue
            dep = canonicalize_name(req.name)
            if (
                dep in metadata
                and dep not in closure
                and marker_applies(req, marker_environment, extras)
            ):
                pending[dep] = tuple(sorted(req.extras))
    return closure
