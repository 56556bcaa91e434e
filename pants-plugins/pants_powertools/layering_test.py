"""Tests for layering: what stays out of a function ZIP, and when layers cannot be used."""

from __future__ import annotations

import pytest

from pants_powertools.distributions import canonicalize_name
from pants_powertools.layering import (
    RUNTIME_PROVIDED_DISTRIBUTIONS,
    Layer,
    LayerCompatibilityError,
    LayerConflictError,
    check_layer_compatibility,
    distributions_to_carry,
    layer_provided_distributions,
)

POWERTOOLS = Layer(
    name="src/layers:powertools",
    distributions={
        "aws-lambda-powertools": "3.37.0",
        "Pydantic": "2.11.7",
        "pydantic_core": "2.33.2",
    },
    runtimes=("python3.12",),
    architectures=("x86_64", "arm64"),
)


def test_runtime_provided_set_matches_the_official_layer() -> None:
    assert set(RUNTIME_PROVIDED_DISTRIBUTIONS) == {
        "boto3",
        "botocore",
        "s3transfer",
        "jmespath",
        "python-dateutil",
        "six",
        "urllib3",
    }
    assert all(canonicalize_name(n) == n for n in RUNTIME_PROVIDED_DISTRIBUTIONS)


def test_function_carries_only_what_layers_do_not_provide() -> None:
    resolved = {
        "AWS_Lambda_Powertools": "3.37.0",
        "pydantic": "2.11.7",
        "pydantic-core": "2.33.2",
        "requests": "2.32.3",
        "boto3": "1.35.0",
        "python_dateutil": "2.9.0",
    }
    carry = distributions_to_carry(
        "src/orders:orders", resolved, [POWERTOOLS], exclude=RUNTIME_PROVIDED_DISTRIBUTIONS
    )
    assert carry == {"requests": "2.32.3"}
    assert distributions_to_carry("f", resolved, []) == {
        "aws-lambda-powertools": "3.37.0",
        "boto3": "1.35.0",
        "pydantic": "2.11.7",
        "pydantic-core": "2.33.2",
        "python-dateutil": "2.9.0",
        "requests": "2.32.3",
    }
    assert list(distributions_to_carry("f", {"b": "1", "a": "1"}, [])) == ["a", "b"]


def test_version_disagreement_with_a_layer_is_an_error() -> None:
    with pytest.raises(LayerConflictError) as e:
        distributions_to_carry("src/orders:orders", {"pydantic": "2.9.0"}, [POWERTOOLS])
    message = str(e.value)
    for part in (
        "src/orders:orders",
        "src/layers:powertools",
        "pydantic",
        "2.9.0",
        "2.11.7",
        "generate-lockfiles",
    ):
        assert part in message


def test_excluded_distribution_must_still_match_a_layer_that_ships_it() -> None:
    layer = Layer("l", {"boto3": "1.34.0"})
    with pytest.raises(LayerConflictError, match="boto3"):
        distributions_to_carry(
            "f", {"boto3": "1.35.0"}, [layer], exclude=RUNTIME_PROVIDED_DISTRIBUTIONS
        )


def test_layers_disagreeing_with_each_other() -> None:
    other = Layer("src/layers:other", {"pydantic": "1.10.0"})
    with pytest.raises(LayerConflictError, match="src/layers:powertools and src/layers:other"):
        layer_provided_distributions([POWERTOOLS, other])
    same = Layer("src/layers:same", {"PYDANTIC": "2.11.7"})
    assert layer_provided_distributions([POWERTOOLS, same])["pydantic"] == (
        "2.11.7",
        "src/layers:powertools",
    )


def test_runtime_and_architecture_compatibility() -> None:
    check_layer_compatibility("f", "python3.12", "arm64", [POWERTOOLS])
    check_layer_compatibility("f", "python3.9", "arm64", [Layer("undeclared")])
    with pytest.raises(LayerCompatibilityError) as e:
        check_layer_compatibility("src/orders:orders", "python3.13", "arm64", [POWERTOOLS])
    assert "src/orders:orders" in str(e.value) and "src/layers:powertools" in str(e.value)
    assert "lacks python3.13" in str(e.value) and "Fix:" in str(e.value)

    x86_only = Layer("src/layers:x86", runtimes=("python3.12",), architectures=("x86_64",))
    with pytest.raises(LayerCompatibilityError) as e:
        check_layer_compatibility("src/orders:orders", "python3.12", "arm64", [x86_only])
    assert "lacks arm64" in str(e.value) and "`architectures`" in str(e.value)
