"""How a function's dependencies are split between its own ZIP and the layers it uses.

Lambda puts /opt/python (every layer, extracted in order, later files overwriting earlier
ones) on `sys.path` before the runtime's own packages. So a distribution a layer provides
must not also ship in the function ZIP, and must be the version the function was resolved
with: otherwise the function runs against code it was never locked or tested with. Both are
build errors here rather than import errors in AWS.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Collection, Dict, Mapping, Sequence, Tuple

from pants_powertools.distributions import canonicalize_name

# What every Lambda Python runtime already provides, and the official Powertools layer
# therefore removes: shipping them again only costs size and cold start.
RUNTIME_PROVIDED_DISTRIBUTIONS: Tuple[str, ...] = (
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "python-dateutil",
    "six",
    "urllib3",
)


class LayeringError(Exception):
    """A function and its layers that would not work together in Lambda."""


class LayerConflictError(LayeringError):
    """A layer provides a distribution at a version the function (or another layer) disagrees on."""


class LayerCompatibilityError(LayeringError):
    """A layer is not built for the function's runtime or architecture."""


@dataclass(frozen=True)
class Layer:
    """What a function needs to know about one of its layers.

    Empty `runtimes` / `architectures` mean "not declared" (as for a layer ARN from outside the
    repository) and are not checked.
    """

    name: str
    distributions: Mapping[str, str] = field(default_factory=dict)
    runtimes: Tuple[str, ...] = ()
    architectures: Tuple[str, ...] = ()


def check_layer_compatibility(
    function_name: str, runtime: str, architecture: str, layers: Sequence[Layer]
) -> None:
    """Raise `LayerCompatibilityError` if a layer lacks the function's runtime or architecture.

    Lambda refuses such a layer at deploy time, or, worse, accepts it and the function then
    fails to import a native extension built for another interpreter or CPU.
    """
    for layer in layers:
        if layer.runtimes and runtime not in layer.runtimes:
            raise LayerCompatibilityError(
                f"{function_name} runs on {runtime} ({architecture}) but uses layer {layer.name}, "
                f"which is built only for {_listing(layer.runtimes)}: it lacks {runtime}. Fix: "
                f"build the layer for {runtime} (a `powertools_layer` with "
                f'runtime="{runtime}"; one layer target per runtime), or set the function\'s '
                f"`runtime` to one the layer supports."
            )
        if layer.architectures and architecture not in layer.architectures:
            raise LayerCompatibilityError(
                f"{function_name} runs on {runtime} ({architecture}) but uses layer {layer.name}, "
                f"which is built only for {_listing(layer.architectures)}: it lacks "
                f'{architecture}. Fix: add "{architecture}" to the layer\'s `architectures`, '
                f"or set the function's `architecture` to one the layer has."
            )


def layer_provided_distributions(layers: Sequence[Layer]) -> Dict[str, Tuple[str, str]]:
    """{PEP 503 name: (version, layer name)} over all layers, sorted by name.

    Raises `LayerConflictError` when two layers carry different versions: Lambda extracts them
    into the same /opt/python, so the result would mix files of both versions.
    """
    provided: Dict[str, Tuple[str, str]] = {}
    for layer in layers:
        for raw_name, raw_version in layer.distributions.items():
            name, version = canonicalize_name(raw_name), raw_version.strip()
            previous = provided.get(name)
            if previous is None:
                provided[name] = (version, layer.name)
            elif previous[0] != version:
                raise LayerConflictError(
                    f"Layers {previous[1]} and {layer.name} both provide {name}, at versions "
                    f"{previous[0]} and {version}; Lambda extracts layers into the same "
                    "/opt/python, so one would partly overwrite the other. Fix: build both "
                    "layers from the same resolve (lockfile), or do not use them together."
                )
    return {name: provided[name] for name in sorted(provided)}


def distributions_to_carry(
    function_name: str,
    resolved: Mapping[str, str],
    layers: Sequence[Layer],
    *,
    exclude: Collection[str] = (),
) -> Dict[str, str]:
    """{PEP 503 name: version} the function ZIP must contain: resolved minus what layers carry.

    `exclude` (e.g. `RUNTIME_PROVIDED_DISTRIBUTIONS`) is also left out, but only after the
    version check: a layer's boto3 shadows the runtime's, so it must still match. Raises
    `LayerConflictError` when a layer provides a resolved distribution at another version.
    """
    provided = layer_provided_distributions(layers)
    excluded = {canonicalize_name(n) for n in exclude}
    carry: Dict[str, str] = {}
    for raw_name, raw_version in resolved.items():
        name, version = canonicalize_name(raw_name), raw_version.strip()
        in_layer = provided.get(name)
        if in_layer is not None:
            layer_version, layer_name = in_layer
            if layer_version != version:
                raise LayerConflictError(
                    f"{function_name} resolves {name}=={version}, but its layer {layer_name} "
                    f"provides {name}=={layer_version}, which Lambda would import instead. "
                    f"Fix: resolve the function and the layer from the same lockfile (the same "
                    f"`resolve`) and regenerate it with `pants generate-lockfiles`, or pin "
                    f"{name}=={layer_version} in the function's requirements."
                )
            continue
        if name not in excluded:
            carry[name] = version
    return {name: carry[name] for name in sorted(carry)}


def _listing(values: Collection[str]) -> str:
    return ", ".join(sorted(values))
