"""A layer's ZIPs for all of its architectures in one sandboxed process.

`layer_build.py REQUEST.json REPORT.json --workers N`. A layer has no code of its own to rebuild
on an edit, so nothing is gained by caching its installed trees apart from its ZIPs, and much is
lost carrying them between processes (hashed into Pants' store, then written into a second
sandbox). Here every architecture's wheels install at once (the `installs` commands, pex from the
platform lock), the pure-Python files they share are compiled once, and each ZIP is written by
`lambda_zip.build_zip` from the trees as they lie.

Stdlib only, CPython 3.9 syntax; run by the runtime's CPython when bytecode is wanted.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Dict, List, Mapping, Optional, Sequence

try:  # As a script, the siblings sit next to it in the sandbox; in tests, they are package modules.
    from pants_powertools.sandbox import bytecode, lambda_zip
except ImportError:  # pragma: no cover - exercised by the sandboxed Process
    import bytecode  # type: ignore[no-redef]  # pants: no-infer-dep
    import lambda_zip  # type: ignore[no-redef]  # pants: no-infer-dep


class LayerBuildError(Exception):
    """A step failed; the message is written for the user."""


def _install(installs: Sequence[Mapping[str, Any]], env: Mapping[str, str]) -> None:
    """Run every install command at once; each writes its own tree."""
    children = []
    for install in installs:
        os.makedirs(install["dest"], exist_ok=True)
        children.append(
            (
                install,
                subprocess.Popen(
                    install["argv"],
                    env=dict(env),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                ),
            )
        )
    failures = []
    for install, child in children:
        out, err = child.communicate()
        if child.returncode != 0:
            text = (err or out).decode("utf-8", "replace").strip()
            failures.append(f"Installing the wheels for {install['architecture']} failed:\n{text}")
    if failures:
        raise LayerBuildError("\n".join(failures))


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _share_bytecode(trees: Sequence[str], prefix: str, workers: int) -> None:
    """Compile the first tree's .py files, then link each .pyc into every other tree whose file
    at the same path has the same bytes (what differs is left to that tree's ZIP step)."""
    first = trees[0]
    compiled = bytecode.compile_tree(first, first, prefix, workers)
    for other in trees[1:]:
        for rel in compiled:
            there = os.path.join(other, rel)
            if not os.path.isfile(there) or _read(os.path.join(first, rel)) != _read(there):
                continue
            pyc = bytecode.pyc_tag_path(rel)
            target = os.path.join(other, pyc)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.link(os.path.join(first, pyc), target)


def _write_zips(specs: Sequence[lambda_zip.ZipSpec], workers: int) -> List[lambda_zip.Report]:
    """The ZIPs side by side, each in a forked child where the platform has fork (threads would
    share one GIL); in turn otherwise."""
    if workers < 2 or len(specs) < 2 or not hasattr(os, "fork"):
        return [lambda_zip.build_zip(spec) for spec in specs]
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=min(workers, len(specs)), mp_context=context) as pool:
        return list(pool.map(lambda_zip.build_zip, specs))


def build_layer(request: Mapping[str, Any], workers: int) -> List[Dict[str, Any]]:
    """Install, compile what the trees share, then write each ZIP; one report per ZIP."""
    installs = request["installs"]
    for z in request["zips"]:
        os.makedirs(z["tree"], exist_ok=True)  # A layer of first-party code only has no wheels.
    _install(installs, request.get("env", {}))
    trees = [install["dest"] for install in installs]
    shared_prefix: Optional[str] = request.get("share_bytecode_prefix")
    if shared_prefix is not None and trees:
        _share_bytecode(trees, shared_prefix, workers)

    specs = [lambda_zip.ZipSpec.from_json(z["spec"], workers=1) for z in request["zips"]]
    reports = _write_zips(specs, workers)
    return [report.to_json() for report in reports]


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    workers = 1
    if len(args) == 4 and args[2] == "--workers":
        workers = max(1, int(args[3]))
        args = args[:2]
    if len(args) != 2:
        print("usage: layer_build.py REQUEST.json REPORT.json [--workers N]", file=sys.stderr)
        return 2
    try:
        with open(args[0], encoding="utf-8") as f:
            request = json.load(f)
        reports = build_layer(request, workers)
        with open(args[1], "w", encoding="utf-8") as f:
            json.dump(reports, f, indent=1, sort_keys=True)
            f.write("\n")
    except (
        LayerBuildError,
        lambda_zip.ArtifactZipError,
        bytecode.BytecodeError,
        OSError,
    ) as e:
        print(f"{e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
