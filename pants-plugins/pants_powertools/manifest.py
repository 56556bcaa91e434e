"""The JSON manifest written next to every Lambda ZIP, for SAM, CDK or Terraform to read.

Deployment tools need an artifact's identity (sha256, and CodeSha256 exactly as Lambda reports
it, so drift is visible without downloading code) and its contents, without unzipping it.
The JSON text is deterministic, like the ZIP, so a rebuild changes neither file.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Sequence, Union

MANIFEST_VERSION = 1
MANIFEST_SUFFIX = ".lambda.json"
FUNCTION = "function"
LAYER = "layer"
KINDS = (FUNCTION, LAYER)
# Where a layer keeps importable code; Lambda puts /opt/python on sys.path.
LAYER_SITE_PACKAGES = "python/"

LayerRef = Union[str, Mapping[str, Any]]


class ManifestError(ValueError):
    """Inputs that cannot describe a deployable artifact (a bug in the calling rule)."""


def code_sha256(data: bytes) -> str:
    """Base64 of the raw SHA-256 digest: the `CodeSha256` Lambda reports for a function."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def manifest_filename(zip_path: str) -> str:
    """`dist/orders.zip` -> `dist/orders.lambda.json`, so the pair sorts and globs together."""
    stem = zip_path[: -len(".zip")] if zip_path.endswith(".zip") else zip_path
    return stem + MANIFEST_SUFFIX


@dataclass(frozen=True)
class ZipFacts:
    """What the ZIP step reports about the bytes it wrote, so nobody reads them again."""

    sha256: str
    code_sha256: str
    size: int
    unzipped_size: int  # The sum of file sizes: what Lambda counts against its quota.

    @classmethod
    def of(cls, data: bytes, unzipped_size: int) -> "ZipFacts":
        return cls(hashlib.sha256(data).hexdigest(), code_sha256(data), len(data), unzipped_size)


def build_manifest(
    kind: str,
    runtime: str,
    architectures: Sequence[str],
    facts: ZipFacts,
    *,
    distributions: Mapping[str, str],
    artifact: str,
    handler: Optional[str] = None,
    source_handler: Optional[str] = None,
    layers: Sequence[LayerRef] = (),
    environment: Optional[Mapping[str, str]] = None,
    files: Sequence[str] = (),
    slimmed: Optional[Mapping[str, Mapping[str, int]]] = None,
) -> Dict[str, Any]:
    """Describe one built ZIP. Every key is always present, so consumers need no guessing.

    `layers` are the function's layers, in the order Lambda must apply them (later ones win on
    /opt), as names or dicts. `files` are the `files` targets' paths shipped in a function ZIP.
    `slimmed` is what `slim` left out, `{category: {"files": N, "bytes": unzipped size}}` (for
    "symbols", the native files stripped and the bytes that took off them); an empty dict when
    slim was off.
    """
    if kind not in KINDS:
        raise ManifestError(f"kind must be one of {KINDS}, not {kind!r}.")
    archs = list(architectures)
    if isinstance(architectures, str) or not archs or len(set(archs)) != len(archs):
        raise ManifestError(f"architectures must be a non-empty list without repeats: {archs!r}.")
    if kind == FUNCTION:
        if len(archs) != 1:
            raise ManifestError(f"A function ZIP targets exactly one architecture, not {archs}.")
        if not handler:
            raise ManifestError("A function manifest needs its handler.")
    elif handler is not None or layers or files:
        raise ManifestError("A layer manifest has neither a handler, layers nor files.")
    env = dict(environment or {})
    for key, value in env.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ManifestError(f"Lambda environment variables are strings: {key!r}={value!r}.")
    data: Dict[str, Any] = {
        "manifest_version": MANIFEST_VERSION,
        "kind": kind,
        "artifact": artifact,
        "runtime": runtime,
        "architectures": archs,
        "handler": handler,
        "sha256": facts.sha256,
        "code_sha256": facts.code_sha256,
        "size": facts.size,
        "unzipped_size": facts.unzipped_size,
        "distributions": {name: distributions[name] for name in sorted(distributions)},
        "layers": [layer if isinstance(layer, str) else dict(layer) for layer in layers],
        "environment": {key: env[key] for key in sorted(env)},
        "slimmed": {
            category: {key: int(value) for key, value in counts.items()}
            for category, counts in (slimmed or {}).items()
        },
    }
    if kind == FUNCTION:
        data["source_handler"] = source_handler
        data["files"] = sorted(files)
    return data


def manifest_json(manifest: Mapping[str, Any]) -> str:
    """Deterministic JSON text: sorted keys, 2-space indent, ASCII, trailing newline."""
    return json.dumps(manifest, sort_keys=True, indent=2, separators=(",", ": ")) + "\n"
