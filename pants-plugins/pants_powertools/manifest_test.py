"""Tests for manifest: AWS-compatible digests, every key present, and byte-stable JSON."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any, Dict

import pytest

from pants_powertools.manifest import (
    ManifestError,
    ZipFacts,
    build_manifest,
    code_sha256,
    manifest_filename,
    manifest_json,
)

ZIP_BYTES = b"PK\x05\x06" + b"\0" * 18  # An empty ZIP: the manifest takes the facts as given.
FACTS = ZipFacts.of(ZIP_BYTES, unzipped_size=1234)


def test_code_sha256_matches_aws_format() -> None:
    # Lambda's CodeSha256 is base64 of the binary digest, not the hex string.
    assert code_sha256(b"") == "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    assert base64.b64decode(code_sha256(b"abc")) == hashlib.sha256(b"abc").digest()


def test_zip_facts_of_bytes() -> None:
    assert FACTS.sha256 == hashlib.sha256(ZIP_BYTES).hexdigest()
    assert FACTS.code_sha256 == code_sha256(ZIP_BYTES)
    assert FACTS.size == len(ZIP_BYTES) and FACTS.unzipped_size == 1234


def test_manifest_filename() -> None:
    assert manifest_filename("dist/svc/orders.zip") == "dist/svc/orders.lambda.json"
    assert manifest_filename("layer") == "layer.lambda.json"


def test_layer_manifest() -> None:
    m = build_manifest(
        "layer",
        "python3.12",
        ["x86_64", "arm64"],
        FACTS,
        distributions={"typing-extensions": "4.0", "pydantic": "2.9.0"},
        artifact="src/powertools-arm64.zip",
    )
    assert m["kind"] == "layer"
    assert m["artifact"] == "src/powertools-arm64.zip"
    assert m["architectures"] == ["x86_64", "arm64"]
    assert m["handler"] is None and m["layers"] == []
    assert (m["sha256"], m["code_sha256"], m["size"], m["unzipped_size"]) == (
        FACTS.sha256,
        FACTS.code_sha256,
        FACTS.size,
        1234,
    )
    assert list(m["distributions"]) == ["pydantic", "typing-extensions"]
    assert "files" not in m and "source_handler" not in m


def test_function_manifest_and_json_is_deterministic() -> None:
    kwargs: Dict[str, Any] = dict(
        handler="lambda_function.handler",
        source_handler="orders.app.lambda_handler",
        distributions={"zeta": "1", "alpha": "2"},
        layers=["src/layers:powertools", {"name": "other", "sha256": "ab"}],
        environment={"Z": "1", "A": "2"},
        files=["src/orders/config/b.json", "src/orders/config/a.json"],
        artifact="orders.zip",
    )
    m = build_manifest("function", "python3.12", ["arm64"], FACTS, **kwargs)
    assert list(m["distributions"]) == ["alpha", "zeta"]
    assert list(m["environment"]) == ["A", "Z"]
    assert m["layers"][0] == "src/layers:powertools"  # Order is Lambda's layer order: kept.
    assert m["files"] == ["src/orders/config/a.json", "src/orders/config/b.json"]
    assert m["source_handler"] == "orders.app.lambda_handler"
    text = manifest_json(m)
    assert text == manifest_json(
        build_manifest("function", "python3.12", ["arm64"], FACTS, **kwargs)
    )
    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert json.loads(text) == m
    keys = [line.split('"')[1] for line in text.splitlines() if line.startswith('  "')]
    assert keys == sorted(keys)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(kind="image"), "kind"),
        (dict(architectures=[]), "non-empty"),
        (dict(architectures="arm64"), "non-empty"),
        (dict(architectures=["arm64", "x86_64"]), "exactly one"),
        (dict(handler=None), "handler"),
        (dict(environment={"A": 1}), "strings"),
        (dict(kind="layer", handler="x.y"), "neither"),
        (dict(kind="layer", handler=None, files=["a"]), "neither"),
    ],
)
def test_invalid_manifests(kwargs: Dict[str, Any], match: str) -> None:
    args: Dict[str, Any] = dict(
        kind="function",
        runtime="python3.12",
        architectures=["arm64"],
        facts=FACTS,
        handler="lambda_function.handler",
        distributions={},
        artifact="a.zip",
    )
    args.update(kwargs)
    with pytest.raises(ManifestError, match=match):
        build_manifest(**args)


def test_slimmed_is_always_present() -> None:
    plain = build_manifest(
        "layer", "python3.12", ["x86_64"], FACTS, distributions={}, artifact="l.zip"
    )
    assert plain["slimmed"] == {}
    slimmed = {"tests": {"files": 3, "bytes": 900}, "stubs": {"files": 0, "bytes": 0}}
    m = build_manifest(
        "layer",
        "python3.12",
        ["x86_64"],
        FACTS,
        distributions={},
        artifact="l.zip",
        slimmed=slimmed,
    )
    assert m["slimmed"] == slimmed
    assert json.loads(manifest_json(m))["slimmed"]["tests"] == {"bytes": 900, "files": 3}
