"""`pants package` for `powertools_layer` and `python_aws_lambda_powertools`: two thin rules
over the artifact pipeline in `util_rules/artifacts.py`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Tuple

from pants.core.goals.package import (
    BuiltPackage,
    BuiltPackageArtifact,
    OutputPathField,
    PackageFieldSet,
)
from pants.engine.fs import Digest, MergeDigests
from pants.engine.rules import Get, collect_rules, rule
from pants.engine.unions import UnionRule
from pants.util.logging import LogLevel

from pants_powertools import limits, manifest
from pants_powertools.target_types import (
    PowertoolsArchitectureField,
    PowertoolsHandlerField,
    PowertoolsLayerArchitecturesField,
    PowertoolsRuntimeField,
)
from pants_powertools.util_rules.artifacts import (
    FunctionArtifactRequest,
    LambdaArtifact,
    LayerArtifacts,
    LayerArtifactsRequest,
)


@dataclass(frozen=True)
class PowertoolsLayerFieldSet(PackageFieldSet):
    required_fields = (PowertoolsLayerArchitecturesField, PowertoolsRuntimeField)

    runtime: PowertoolsRuntimeField
    architectures: PowertoolsLayerArchitecturesField
    output_path: OutputPathField


@dataclass(frozen=True)
class PowertoolsFunctionFieldSet(PackageFieldSet):
    required_fields = (PowertoolsHandlerField, PowertoolsArchitectureField)

    handler: PowertoolsHandlerField
    runtime: PowertoolsRuntimeField
    architecture: PowertoolsArchitectureField
    output_path: OutputPathField


def _built(artifact: LambdaArtifact) -> BuiltPackageArtifact:
    lines = [
        *artifact.log_lines,
        (
            "Size",
            f"{limits.format_bytes(artifact.report.size)} zipped, "
            f"{limits.format_bytes(artifact.report.unzipped_size)} unzipped",
        ),
        ("Manifest", manifest.manifest_filename(artifact.path)),
    ]
    width = 4 + max(len(header) for header, _ in lines)
    return BuiltPackageArtifact(
        artifact.path,
        extra_log_lines=tuple(f"{header.rjust(width)}: {value}" for header, value in lines),
    )


async def _package(artifacts: Iterable[LambdaArtifact]) -> BuiltPackage:
    built: Tuple[LambdaArtifact, ...] = tuple(artifacts)
    digest = await Get(Digest, MergeDigests(a.digest for a in built))
    return BuiltPackage(digest, tuple(_built(a) for a in built))


@rule(desc="Package a Powertools Lambda layer", level=LogLevel.DEBUG)
async def package_powertools_layer(field_set: PowertoolsLayerFieldSet) -> BuiltPackage:
    layers = await Get(LayerArtifacts, LayerArtifactsRequest(field_set.address))
    return await _package(layers.artifacts)


@rule(desc="Package a Powertools Lambda function", level=LogLevel.DEBUG)
async def package_powertools_function(field_set: PowertoolsFunctionFieldSet) -> BuiltPackage:
    function = await Get(LambdaArtifact, FunctionArtifactRequest(field_set.address))
    return await _package([function])


def rules():
    return (
        *collect_rules(),
        UnionRule(PackageFieldSet, PowertoolsLayerFieldSet),
        UnionRule(PackageFieldSet, PowertoolsFunctionFieldSet),
    )
