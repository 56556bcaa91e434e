"""Pants backend for AWS Lambda functions and layers built on Powertools for AWS Lambda (Python).

Enable it with `backend_packages.add = ["pants_powertools"]` next to `pants.backend.python`.
"""

from __future__ import annotations

from typing import Iterable, Type

from pants.backend.python.util_rules import faas
from pants.engine.rules import Rule
from pants.engine.target import Target
from pants.engine.unions import UnionRule

from pants_powertools import target_types as target_types_module
from pants_powertools.goals import check, lockfile, package
from pants_powertools.subsystem import PowertoolsSubsystem
from pants_powertools.util_rules import (
    artifacts,
    index_lookup,
    interpreters,
    lambda_zip,
    layer_inference,
    layer_zip,
    platform_lock,
    third_party,
)


def target_types() -> Iterable[Type[Target]]:
    return target_types_module.target_types()


def rules() -> Iterable[Rule | UnionRule]:
    return (
        *faas.rules(),
        *PowertoolsSubsystem.rules(),
        *layer_inference.rules(),
        *platform_lock.rules(),
        *index_lookup.rules(),
        *third_party.rules(),
        *interpreters.rules(),
        *lambda_zip.rules(),
        *layer_zip.rules(),
        *artifacts.rules(),
        *package.rules(),
        *check.rules(),
        *lockfile.rules(),
    )
