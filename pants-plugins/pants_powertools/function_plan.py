"""What a function ZIP carries, decided without Pants: a plan that the package rule executes.

Given what the function resolves, what its layers hold and what the runtime provides, the plan
says which distributions ship, which are left out (and why), what AWS's public Powertools layer
stands for, and which Powertools METADATA the extras check reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from pants_powertools import complete_platforms, layering, public_layer
from pants_powertools.distributions import POWERTOOLS_DISTRIBUTION, requirement_extras


class FunctionPlanError(Exception):
    """A function and its layers that cannot work together; the message says how to fix it."""


@dataclass(frozen=True)
class LayerContents:
    """One built layer, as a function sees it."""

    address: str
    runtime: str
    architecture: str
    distributions: Mapping[str, str]
    powertools_metadata: Optional[str] = None  # The METADATA headers of its Powertools, if any.


@dataclass(frozen=True)
class FunctionPlan:
    carry: Dict[str, str]  # {name: version} that the function ZIP ships.
    left_out: Tuple[str, ...]  # Resolved but provided by a layer, the runtime or the public layer.
    # Left out because the runtime or AWS's public layer provide them: nothing here builds those,
    # so the import check stands them in from the resolve.
    provided_outside: Tuple[str, ...]
    public_layers: Tuple[Dict[str, Any], ...]  # Manifest entries for AWS's public layer.
    # For the Powertools extras check: the METADATA of the Powertools the function runs with,
    # what is importable beside the ZIP, and the extras the requirements already ask for.
    powertools_metadata: Optional[str]
    available: Tuple[str, ...]
    declared_extras: Tuple[str, ...]


def plan_function(
    target: str,
    runtime: str,
    architecture: str,
    resolved: Mapping[str, str],
    resolved_metadata: Mapping[str, str],
    requirements: Sequence[str],
    layers: Sequence[LayerContents],
    runtime_provided: Sequence[str],
    public_layer_version: Optional[int] = None,
) -> FunctionPlan:
    public_layers: List[Dict[str, Any]] = []
    public_provided: Tuple[str, ...] = ()
    if public_layer_version is not None:
        for layer in layers:
            if POWERTOOLS_DISTRIBUTION in layer.distributions:
                raise FunctionPlanError(
                    f"{target} sets `powertools_public_layer_version={public_layer_version}`, "
                    f"AWS's public Powertools layer, but its layer {layer.address} carries "
                    f"{POWERTOOLS_DISTRIBUTION} too. Use one or the other: remove the field, or "
                    "take Powertools out of that layer."
                )
        public_provided = tuple(
            sorted(
                public_layer.powertools_closure(
                    resolved_metadata, complete_platforms.marker_environment(runtime, architecture)
                )
            )
        )
        public_layers.append(
            {
                "arn": public_layer.public_layer_arn(runtime, architecture, public_layer_version),
                "public": True,
                "name": "AWS Powertools for AWS Lambda (Python) public layer",
                "version": public_layer_version,
            }
        )
    try:
        carry = layering.distributions_to_carry(
            target,
            resolved,
            [
                layering.Layer(
                    layer.address,
                    dict(layer.distributions),
                    (layer.runtime,),
                    (layer.architecture,),
                )
                for layer in layers
            ],
            exclude=(*runtime_provided, *public_provided),
        )
    except layering.LayeringError as e:
        raise FunctionPlanError(str(e))
    # Powertools may reach the function only through a layer; with the public layer, AWS's
    # build has every extra, so there is nothing to check.
    candidates = [resolved_metadata.get(POWERTOOLS_DISTRIBUTION)]
    candidates += [layer.powertools_metadata for layer in layers]
    metadata = None if public_layers else next((m for m in candidates if m), None)
    available = set(carry) | set(runtime_provided)
    for layer in layers:
        available.update(layer.distributions)
    return FunctionPlan(
        carry=carry,
        left_out=tuple(sorted(set(resolved) - set(carry))),
        provided_outside=tuple(
            sorted(
                (set(resolved) - set(carry))
                - {name for layer in layers for name in layer.distributions}
            )
        ),
        public_layers=tuple(public_layers),
        powertools_metadata=metadata,
        available=tuple(sorted(available)),
        declared_extras=tuple(
            sorted(requirement_extras(tuple(requirements), POWERTOOLS_DISTRIBUTION))
        ),
    )
