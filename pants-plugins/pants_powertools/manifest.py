"""The JSON manifest written next to every Lambda ZIP, for SAM, CDK or Terraform to read.

Deployment tools need an artifact's identity (sha256, and CodeSha256 exactly as Lambda reports
it, so drift is visible without downloading code) and its contents, without unzipping it.
The JSON text is deterministic, like the ZIP, so a rebuild changes neither file.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import zipfile
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from pants_powertools.artifact_zip import list_distributions

MANIFEST_VERSION = 1
MANIFEST_SUFFIX = ".lambda.json"
FUNCTION = "function"
LAYER = "layer"
KINDS = (FUNCTION, LAYER)
# Where a layer keeps importable code; Lambda puts /opt/python on sys.path.
LAYER_SITE_PACKAGES = "python/"

ZipSource = Union[bytes, str, "os.PathLike[str]"]
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


def unzipped_size(zip_bytes: bytes) -> int:
    """Sum of the files' sizes: what Lambda counts against its unzipped-size quota."""
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as zf:
        return sum(info.file_size for info in zf.infolist() if not info.is_dir())


def build_manifest(
    kind: str,
    runtime: str,
    architectures: Sequence[str],
    zip_bytes_or_path: ZipSource,
    handler: Optional[str] = None,
    distributions: Optional[Mapping[str, str]] = None,
    layers: Sequence[LayerRef] = (),
    environment: Optional[Mapping[str, str]] = None,
    *,
    artifact: Optional[str] = None,
) -> Dict[str, Any]:
    """Describe one built ZIP. Every key is always present, so consumers need no guessing.

    `distributions` defaults to what the ZIP's `*.dist-info` say (under `python/` for a
    layer). `layers` are the function's layers, in the order Lambda must apply them (later
    ones win on /opt), as names or dicts. `artifact` defaults to the ZIP's file name.
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
    else:
        if handler is not None or layers:
            raise ManifestError("A layer manifest has neither a handler nor layers.")
    env = dict(environment or {})
    for key, value in env.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ManifestError(f"Lambda environment variables are strings: {key!r}={value!r}.")

    if isinstance(zip_bytes_or_path, (bytes, bytearray)):
        data = bytes(zip_bytes_or_path)
    else:
        path = os.fspath(zip_bytes_or_path)
        with open(path, "rb") as f:
            data = f.read()
        if artifact is None:
            artifact = os.path.basename(path)

    if distributions is None:
        root = LAYER_SITE_PACKAGES if kind == LAYER else ""
        distributions = list_distributions(data, root=root)

    layer_list: List[Any] = [
        layer if isinstance(layer, str) else dict(layer) for layer in layers
    ]
    return {
        "manifest_version": MANIFEST_VERSION,
        "kind": kind,
        "artifact": artifact,
        "runtime": runtime,
        "architectures": archs,
        "handler": handler,
        "sha256": hashlib.sha256(data).hexdigest(),
        "code_sha256": code_sha256(data),
        "size": len(data),
        "unzipped_size": unzipped_size(data),
        "distributions": {name: distributions[name] for name in sorted(distributions)},
        "layers": layer_list,
        "environment": {key: env[key] for key in sorted(env)},
    }


def manifest_json(manifest: Mapping[str, Any]) -> str:
    """Deterministic JSON text: sorted keys, 2-space indent, ASCII, trailing newline."""
    return json.dumps(manifest, sort_keys=True, indent=2, separators=(",", ": ")) + "\n"
