"""A `powertools_layer` without `dependencies` gets the resolve's Powertools requirement.

The common case is one line in a BUILD file: `powertools_layer(name="powertools",
runtime="python3.12")` packages `aws-lambda-powertools` with whatever extras the resolve's
requirement declares.
"""

from __future__ import annotations

from dataclasses import dataclass

from pants.backend.python.dependency_inference.module_mapper import (
    PythonModuleOwners,
    PythonModuleOwnersRequest,
)
from pants.backend.python.subsystems.setup import PythonSetup
from pants.backend.python.target_types import PythonResolveField
from pants.engine.rules import Get, collect_rules, rule
from pants.engine.target import (
    DependenciesRequest,
    ExplicitlyProvidedDependencies,
    FieldSet,
    InferDependenciesRequest,
    InferredDependencies,
)
from pants.engine.unions import UnionRule

from pants_powertools.target_types import PowertoolsLayerDependencies

POWERTOOLS_MODULE = "aws_lambda_powertools"


class DefaultPowertoolsLayerError(Exception):
    pass


@dataclass(frozen=True)
class PowertoolsLayerInferenceFieldSet(FieldSet):
    required_fields = (PowertoolsLayerDependencies, PythonResolveField)

    dependencies: PowertoolsLayerDependencies
    resolve: PythonResolveField


class InferDefaultPowertoolsLayerDependency(InferDependenciesRequest):
    infer_from = PowertoolsLayerInferenceFieldSet


@rule(desc="Inferring the Powertools requirement of a powertools_layer")
async def infer_default_powertools_layer_dependency(
    request: InferDefaultPowertoolsLayerDependency, python_setup: PythonSetup
) -> InferredDependencies:
    field_set = request.field_set
    explicit = await Get(
        ExplicitlyProvidedDependencies, DependenciesRequest(field_set.dependencies)
    )
    if explicit.includes or explicit.ignores:
        return InferredDependencies([])
    resolve = field_set.resolve.normalized_value(python_setup)
    owners = await Get(PythonModuleOwners, PythonModuleOwnersRequest(POWERTOOLS_MODULE, resolve))
    if owners.unambiguous:
        return InferredDependencies(owners.unambiguous[:1])
    if owners.ambiguous:
        raise DefaultPowertoolsLayerError(
            f"{field_set.address} has no `dependencies`, so it would package the `{resolve}` "
            "resolve's aws-lambda-powertools requirement, but several targets provide it: "
            f"{', '.join(str(a) for a in owners.ambiguous)}. Name one in `dependencies`."
        )
    raise DefaultPowertoolsLayerError(
        f"{field_set.address} has no `dependencies`, so it would package the `{resolve}` "
        "resolve's aws-lambda-powertools requirement, but that resolve has none. Add "
        "`aws-lambda-powertools[...]` to its requirements, or list the layer's `dependencies`."
    )


def rules():
    return (
        *collect_rules(),
        UnionRule(InferDependenciesRequest, InferDefaultPowertoolsLayerDependency),
    )
