"""Tests for manifest: AWS-compatible digests, sizes, and byte-stable JSON."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from pathlib import Path
from typing import Any, Dict, Sequence, Tuple

import pytest

from pants_powertools.artifact_zip import write_zip
from pants_powertools.manifest import (
    ManifestError,
    build_manifest,
    code_sha256,
    manifest_filename,
    manifest_json,
)


def make_zip(entries: Sequence[Tuple[str, bytes, bool]]) -> bytes:
    buf = io.BytesIO()
    write_zip(entries, buf)
    return buf.getvalue()


LAYER_ZIP = make_zip(
    [
        ("python/pydantic/__init__.py", b"x" * 10),
        ("python/pydantic-2.9.0.dist-info/METADATA", b"Name: pydantic\nVersion: 2.9.0\n"),
        ("python/Typing_Extensions-4.0.dist-info/METADATA",
         b"Name: Typing_Extensions\nVersion: 4.0\n"),
    ]
)
FUNCTION_ZIP = make_zip([("app.py", b"def h(e, c):\n    pass\n"),
                         ("lambda_function.py", b"from app import h as handler\n")])


def test_code_sha256_matches_aws_format() -> None:
    # Lambda's CodeSha256 is base64 of the binary digest, not the hex string.
    assert code_sha256(b"") == "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    assert base64.b64decode(code_sha256(b"abc")) == hashlib.sha256(b"abc").digest()


def test_manifest_filename() -> None:
    assert manifest_filename("dist/svc/orders.zip") == "dist/svc/orders.lambda.json"
    assert manifest_filename("layer") == "layer.lambda.json"


def test_layer_manifest_from_path(tmp_path: Path) -> None:
    path = tmp_path / "powertools-python3.12-arm64.zip"
    path.write_bytes(LAYER_ZIP)
    m = build_manifest("layer", "python3.12", ["x86_64", "arm64"], path)
    assert m["kind"] == "layer"
    assert m["artifact"] == path.name
    assert m["architectures"] == ["x86_64", "arm64"]
    assert m["handler"] is None and m["layers"] == []
    assert m["sha256"] == hashlib.sha256(LAYER_ZIP).hexdigest()
    assert m["code_sha256"] == code_sha256(LAYER_ZIP)
    assert m["size"] == len(LAYER_ZIP)
    expected_unzipped = 10 + len(b"Name: pydantic\nVersion: 2.9.0\n") + len(
        b"Name: Typing_Extensions\nVersion: 4.0\n"
    )
    assert m["unzipped_size"] == expected_unzipped
    assert m["distributions"] == {"pydantic": "2.9.0", "typing-extensions": "4.0"}


def test_function_manifest_and_json_is_deterministic() -> None:
    kwargs: Dict[str, Any] = dict(
        handler="lambda_function.handler",
        distributions={"zeta": "1", "alpha": "2"},
        layers=["src/layers:powertools", {"name": "other", "sha256": "ab"}],
        environment={"Z": "1", "A": "2"},
        artifact="orders.zip",
    )
    m = build_manifest("function", "python3.12", ["arm64"], FUNCTION_ZIP, **kwargs)
    assert list(m["distributions"]) == ["alpha", "zeta"]
    assert list(m["environment"]) == ["A", "Z"]
    assert m["layers"][0] == "src/layers:powertools"  # Order is Lambda's layer order: kept.
    text = manifest_json(m)
    again = manifest_json(build_manifest("function", "python3.12", ["arm64"], FUNCTION_ZIP,
                                         **kwargs))
    assert text == again
    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert json.loads(text) == m
    keys = [line.split('"')[1] for line in text.splitlines() if line.startswith('  "')]
    assert keys == sorted(keys)


def test_distributions_default_from_function_zip_root() -> None:
    m = build_manifest("function", "python3.9", ["x86_64"], FUNCTION_ZIP, handler="a.b")
    assert m["distributions"] == {}


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
    ],
)
def test_invalid_manifests(kwargs: Dict[str, Any], match: str) -> None:
    args: Dict[str, Any] = dict(kind="function", runtime="python3.12", architectures=["arm64"],
                zip_bytes_or_path=FUNCTION_ZIP, handler="lambda_function.handler")
    args.update(kwargs)
    with pytest.raises(ManifestError, match=match):
        build_manifest(**args)
