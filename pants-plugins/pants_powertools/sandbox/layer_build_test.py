"""Tests for the layer script: installs side by side, one compile for what the trees share,
ZIPs byte-identical to the ZIP script's own, and failures that name the architecture."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Mapping

from pants_powertools.sandbox import script_files

VERSION = "{}.{}".format(*sys.version_info[:2])
PYC = "__pycache__/{}.%s.pyc" % sys.implementation.cache_tag
SHARED = "def shared():\n    return 'same on every architecture'\n"


def _tree(arch: str) -> Dict[str, str]:
    return {
        "demo/__init__.py": "from demo.shared import shared\n",
        "demo/shared.py": SHARED,
        "demo/arch.py": f"ARCH = {arch!r}\n",
        "demo-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: Demo\nVersion: 1.0\n\nHi.\n",
        "demo-1.0.dist-info/RECORD": "demo/__init__.py,,\ndemo/shared.py,,\ndemo/arch.py,,\n",
    }


def _installer(files: Mapping[str, str], dest: str, fail: str = "") -> List[str]:
    """A stand-in for `pex3 venv create`: writes `files` under `dest`, or fails with `fail`."""
    code = (
        "import json, os, sys\n"
        f"if {fail!r}:\n"
        f"    sys.exit({fail!r})\n"
        f"for rel, text in json.loads({json.dumps(files)!r}).items():\n"
        f"    path = os.path.join({dest!r}, rel)\n"
        "    os.makedirs(os.path.dirname(path), exist_ok=True)\n"
        "    open(path, 'w').write(text)\n"
    )
    return [sys.executable, "-c", code]


def _spec(arch: str) -> Dict[str, Any]:
    return {
        "output": f"out/{arch}.zip",
        "sources": [{"path": f"__deps/{arch}", "first_party": False}],
        "prefix": "python/",
        "python_version": VERSION,
        "metadata_of": ["demo"],
    }


def _request(archs: List[str], fail: str = "") -> Dict[str, Any]:
    return {
        "installs": [
            {
                "architecture": arch,
                "argv": _installer(_tree(arch), f"__deps/{arch}", fail if arch == "arm64" else ""),
                "dest": f"__deps/{arch}",
            }
            for arch in archs
        ],
        "env": {"PATH": os.environ.get("PATH", "")},
        "share_bytecode_prefix": "python/",
        "zips": [{"spec": _spec(arch), "tree": f"__deps/{arch}"} for arch in archs],
    }


def _run(sandbox: Path, script: str, request: Mapping[str, Any]) -> subprocess.CompletedProcess:
    """Run a sandbox script as its Process does: its files beside it, PYTHONHASHSEED=0."""
    scripts = sandbox / "__scripts"
    scripts.mkdir(exist_ok=True)
    for name, data in script_files(script):
        (scripts / name).write_bytes(data)
    (sandbox / "out").mkdir(exist_ok=True)
    (sandbox / "request.json").write_text(json.dumps(request))
    return subprocess.run(
        [sys.executable, "-S", "-B", f"__scripts/{script}", "request.json", "report.json"]
        # Two workers: the layer script then writes its ZIPs in forked children.
        + (["--workers", "2"] if script == "layer_build.py" else []),
        cwd=sandbox,
        env={"PYTHONHASHSEED": "0", "PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
    )


def _entries(path: Path) -> Dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist() if not name.endswith("/")}


def test_shared_sources_are_compiled_once_and_every_zip_has_bytecode(tmp_path: Path) -> None:
    result = _run(tmp_path, "layer_build.py", _request(["x86_64", "arm64"]))
    assert result.returncode == 0, result.stderr

    # The second tree got the first tree's .pyc of the file they share (a hard link), and no
    # .pyc of the file that differs: its own ZIP step compiled that one.
    shared_pyc = tmp_path / "__deps/arm64/demo" / PYC.format("shared")
    assert shared_pyc.stat().st_nlink == 2
    assert not (tmp_path / "__deps/arm64/demo" / PYC.format("arch")).exists()

    x86, arm = _entries(tmp_path / "out/x86_64.zip"), _entries(tmp_path / "out/arm64.zip")
    for arch, entries in (("x86_64", x86), ("arm64", arm)):
        for module in ("__init__", "shared", "arch"):
            source = entries[f"python/demo/{module}.py"]
            pyc = entries[f"python/demo/{PYC.format(module)}"]
            assert pyc[:4] == importlib.util.MAGIC_NUMBER
            assert pyc[8:16] == importlib.util.source_hash(source), (arch, module)
    assert x86[f"python/demo/{PYC.format('shared')}"] == arm[f"python/demo/{PYC.format('shared')}"]
    assert x86["python/demo/arch.py"] != arm["python/demo/arch.py"]

    reports = json.loads((tmp_path / "report.json").read_text())
    assert [r["distributions"] for r in reports] == [{"demo": "1.0"}, {"demo": "1.0"}]
    assert [r["sha256"] for r in reports] == [
        hashlib.sha256((tmp_path / f"out/{arch}.zip").read_bytes()).hexdigest()
        for arch in ("x86_64", "arm64")
    ]
    assert "Name: Demo" in reports[1]["metadata"]["demo"]


def test_zips_are_byte_identical_to_the_zip_scripts_own(tmp_path: Path) -> None:
    """Compiling ahead of the ZIP step must not change a byte of what it writes."""
    layer = tmp_path / "layer"
    layer.mkdir()
    assert _run(layer, "layer_build.py", _request(["x86_64", "arm64"])).returncode == 0

    for arch in ("x86_64", "arm64"):
        alone = tmp_path / f"alone-{arch}"
        alone.mkdir()
        subprocess.run(_installer(_tree(arch), f"__deps/{arch}"), cwd=alone, check=True)
        result = _run(alone, "lambda_zip.py", _spec(arch))
        assert result.returncode == 0, result.stderr
        assert (alone / f"out/{arch}.zip").read_bytes() == (layer / f"out/{arch}.zip").read_bytes()
        shutil.rmtree(alone)


def test_third_party_code_that_does_not_compile_is_reported_for_every_zip(tmp_path: Path) -> None:
    request = _request(["x86_64", "arm64"])
    for arch, install in zip(("x86_64", "arm64"), request["installs"]):
        install["argv"] = _installer(
            {**_tree(arch), "demo/py2.py": "print 'python 2'\n"}, f"__deps/{arch}"
        )
    result = _run(tmp_path, "layer_build.py", request)
    assert result.returncode == 0, result.stderr
    for report in json.loads((tmp_path / "report.json").read_text()):
        (warning,) = report["warnings"]
        assert warning.startswith(
            f"Not compiled for Python {VERSION}, shipped as source: python/demo/py2.py, line 1: "
            "SyntaxError: Missing parentheses"
        )


def test_a_failed_install_names_its_architecture(tmp_path: Path) -> None:
    result = _run(tmp_path, "layer_build.py", _request(["x86_64", "arm64"], fail="no wheel"))
    assert result.returncode == 1
    assert "Installing the wheels for arm64 failed:\nno wheel" in result.stderr
    assert "x86_64" not in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out/x86_64.zip").exists()


def test_a_layer_without_wheels_zips_its_own_code(tmp_path: Path) -> None:
    code = tmp_path / "srcs/mine.py"
    code.parent.mkdir(parents=True)
    code.write_text("X = 1\n")
    request = {
        "installs": [],
        "zips": [
            {
                "spec": {
                    **_spec("x86_64"),
                    "sources": [
                        {"path": "__deps/x86_64", "first_party": False},
                        {"path": "srcs", "first_party": True},
                    ],
                },
                "tree": "__deps/x86_64",
            }
        ],
    }
    result = _run(tmp_path, "layer_build.py", request)
    assert result.returncode == 0, result.stderr
    assert sorted(_entries(tmp_path / "out/x86_64.zip")) == sorted(
        ["python/mine.py", f"python/{PYC.format('mine')}"]
    )
