"""Tests for the ZIP script: byte-identical output, Lambda-readable modes, RECORD-based exclusion,
unchecked-hash bytecode that Python really imports, and the checks that fail a build."""

from __future__ import annotations

import base64
import glob
import hashlib
import importlib.util
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Union

import pytest

from pants_powertools.sandbox import bytecode, elf_strip, lambda_zip
from pants_powertools.sandbox.lambda_zip import (
    ArtifactZipError,
    NativeTarget,
    Report,
    Source,
    ZipSpec,
    build_zip,
    canonicalize_name,
    main,
    record_hash,
    record_without,
)

CACHE_TAG = sys.implementation.cache_tag


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_tree(root: Path, files: Mapping[str, str], mode: int = 0o644) -> Path:
    """Create files (text) under root, with one given mode, in the order given."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(mode)
    return root


def normalize(
    sources: Union[Path, Sequence[Path]],
    out: Path,
    *,
    first_party: bool = False,
    files: Optional[Mapping[str, Path]] = None,
    bytecode: bool = False,
    python_version: Optional[str] = None,
    **kwargs: object,
) -> Report:
    """Run the script's pipeline; with bytecode, as the Process does (a child with
    PYTHONHASHSEED=0, since this interpreter's .pyc would otherwise depend on the seed)."""
    paths = [sources] if isinstance(sources, Path) else list(sources)
    if bytecode and python_version is None:
        python_version = "{}.{}".format(*sys.version_info[:2])
    spec = ZipSpec(
        output=str(out),
        sources=tuple(Source(str(p), first_party) for p in paths),
        files=tuple((a, str(p)) for a, p in (files or {}).items()),
        python_version=python_version if bytecode else None,
        **kwargs,  # type: ignore[arg-type]
    )
    if not bytecode:
        return build_zip(spec)
    request, report = out.with_suffix(".request.json"), out.with_suffix(".report.json")
    request.write_text(
        json.dumps(
            {
                "output": spec.output,
                "sources": [{"path": s.path, "first_party": s.first_party} for s in spec.sources],
                "files": [list(f) for f in spec.files],
                "prefix": spec.prefix,
                "exclude_distributions": list(spec.exclude_distributions),
                "python_version": spec.python_version,
                "slim": spec.slim,
            }
        )
    )
    proc = subprocess.run(
        [sys.executable, "-S", lambda_zip.__file__, str(request), str(report)],
        env=dict(os.environ, PYTHONHASHSEED="0"),
        stderr=subprocess.PIPE,
    )
    if proc.returncode != 0:
        raise ArtifactZipError(proc.stderr.decode())
    data = json.loads(report.read_text())
    data.pop("zlib")
    data["largest_first_party"] = [tuple(pair) for pair in data["largest_first_party"]]
    return Report(**data)


def names(zip_path: Path) -> List[str]:
    with zipfile.ZipFile(zip_path) as zf:
        return zf.namelist()


def dist_info(
    name: str,
    version: str,
    files: Mapping[str, str],
    top_level: Optional[str] = None,
    dir_name: Optional[str] = None,
) -> Dict[str, str]:
    """Files of an installed distribution: its files plus a dist-info whose RECORD lists them."""
    info = dir_name or f"{name.replace('-', '_')}-{version}.dist-info"
    out = dict(files)
    out[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nBody\n"
    if top_level is not None:
        out[f"{info}/top_level.txt"] = top_level + "\n"
    record = [f"{p},sha256=x,{len(t)}" for p, t in sorted(out.items())]
    record += [f"{info}/RECORD,,", "../../bin/script,sha256=x,1"]
    out[f"{info}/RECORD"] = "\n".join(record) + "\n"
    return out


SOURCES = {
    "pkg/__init__.py": "",
    "pkg/mod.py": "def answer():\n    return 'original' if 'x' in {'x', 'y', 'z'} else None\n",
    "pkg/data/config.json": "{}\n",
    "top.py": "X = 1\n",
}


# ------------------------------------------------------------------------------ determinism


def test_same_input_twice_is_byte_identical_despite_mtimes_and_modes(tmp_path: Path) -> None:
    one = write_tree(tmp_path / "one", SOURCES, mode=0o600)
    # The same content, created in another order, with other modes and mtimes.
    two = write_tree(tmp_path / "two", dict(reversed(list(SOURCES.items()))), mode=0o664)
    for i, path in enumerate(sorted(two.rglob("*"))):
        os.utime(path, (1_700_000_000 + i * 1000, 1_700_000_000 + i * 1000))
    normalize(one, tmp_path / "one.zip")
    normalize(two, tmp_path / "two.zip")
    normalize(one, tmp_path / "again.zip")
    assert sha256(tmp_path / "one.zip") == sha256(tmp_path / "two.zip")
    assert sha256(tmp_path / "one.zip") == sha256(tmp_path / "again.zip")


def test_zip_input_gives_the_same_bytes_as_a_directory(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "tree", SOURCES)
    messy = tmp_path / "messy.zip"
    with zipfile.ZipFile(messy, "w") as zf:  # Host timestamps, default modes, no dir entries.
        for path in sorted(tree.rglob("*"), reverse=True):
            if path.is_file():
                zf.write(path, path.relative_to(tree).as_posix())
    normalize(tree, tmp_path / "from_dir.zip")
    normalize(messy, tmp_path / "from_zip.zip")
    assert sha256(tmp_path / "from_dir.zip") == sha256(tmp_path / "from_zip.zip")


def test_modes_come_from_content_not_from_the_input(tmp_path: Path) -> None:
    # Pants hard-links big files from its store with r-x bits: input modes must not leak.
    tree = write_tree(
        tmp_path / "tree",
        {"private.txt": "p", "big.js": "x" * 600_000, "bin/tool": "#!/bin/sh\n"},
        mode=0o600,
    )
    (tree / "big.js").chmod(0o555)
    (tree / "lib.so").write_bytes(b"\x7fELF" + b"\0" * 60)
    (tree / "lib.so").chmod(0o444)
    (tree / "bin").chmod(0o700)
    out = tmp_path / "out.zip"
    normalize(tree, out)
    with zipfile.ZipFile(out) as zf:
        modes = {i.filename: i.external_attr >> 16 for i in zf.infolist()}
    assert modes == {
        "big.js": stat.S_IFREG | 0o644,
        "bin/": stat.S_IFDIR | 0o755,
        "bin/tool": stat.S_IFREG | 0o755,
        "lib.so": stat.S_IFREG | 0o755,
        "private.txt": stat.S_IFREG | 0o644,
    }


# ------------------------------------------------------------------------------ filtering


def test_pycache_and_host_pyc_are_dropped(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "tree", SOURCES)
    import py_compile

    py_compile.compile(  # A host-style, timestamp-based .pyc.
        str(tree / "pkg/mod.py"),
        cfile=importlib.util.cache_from_source(str(tree / "pkg/mod.py")),
        invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP,
    )
    (tree / "legacy.pyc").write_bytes(b"old")
    (tree / "pkg/__pycache__/junk.txt").write_text("x")
    out = tmp_path / "out.zip"
    normalize(tree, out)
    assert not [n for n in names(out) if "__pycache__" in n or n.endswith(".pyc")]
    assert "pkg/mod.py" in names(out)


def test_prefix_and_exclude_top_level(tmp_path: Path) -> None:
    tree = write_tree(
        tmp_path / "venv",
        {"pkg/__init__.py": "", "bin/x": "", "extra.pth": "", "pkg/bin/kept": ""},
    )
    out = tmp_path / "out.zip"
    normalize(tree, out, prefix="python", exclude_top_level=("bin", "*.pth"))
    assert names(out) == [
        "python/",
        "python/pkg/",
        "python/pkg/__init__.py",
        "python/pkg/bin/",
        "python/pkg/bin/kept",
    ]


def test_direct_url_json_is_dropped(tmp_path: Path) -> None:
    files = dist_info("foo", "1.0", {"foo/__init__.py": ""})
    files["foo-1.0.dist-info/direct_url.json"] = '{"url": "file:///home/me/foo.whl"}'
    tree = write_tree(tmp_path / "t", files)
    out = tmp_path / "out.zip"
    normalize(tree, out)
    assert "foo-1.0.dist-info/direct_url.json" not in names(out)
    assert "foo-1.0.dist-info/METADATA" in names(out)


def test_merging_sources_and_conflicts(tmp_path: Path) -> None:
    a = write_tree(tmp_path / "a", {"same.py": "1", "a.py": "a"})
    b = write_tree(tmp_path / "b", {"same.py": "1", "b.py": "b"})
    c = write_tree(tmp_path / "c", {"same.py": "2"})
    out = tmp_path / "out.zip"
    reexport = tmp_path / "reexport.py"
    reexport.write_text("from a import *\n")
    normalize([a, b], out, files={"lambda_function.py": reexport})
    assert names(out) == ["a.py", "b.py", "lambda_function.py", "same.py"]
    with pytest.raises(ArtifactZipError, match="different contents") as e:
        normalize([a, c], out)
    assert str(a) in str(e.value) and str(c) in str(e.value)


def test_zip_symlinks_are_resolved_and_unsafe_paths_refused(tmp_path: Path) -> None:
    src = tmp_path / "links.zip"
    with zipfile.ZipFile(src, "w") as zf:
        zf.writestr("real/data.txt", "payload")
        link = zipfile.ZipInfo("alias.txt")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "real/data.txt")
    out = tmp_path / "out.zip"
    normalize(src, out)
    with zipfile.ZipFile(out) as zf:
        assert zf.read("alias.txt") == b"payload"
        assert zf.getinfo("alias.txt").external_attr >> 16 == stat.S_IFREG | 0o644

    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../etc/passwd", "x")
    with pytest.raises(ArtifactZipError, match="unsafe"):
        normalize(evil, out)


# ------------------------------------------------------------------------------ distributions


def site_packages(root: Path) -> Path:
    files: Dict[str, str] = {}
    files.update(
        dist_info(
            "boto3", "1.35.0", {"boto3/__init__.py": "", "boto3/session.py": ""}, top_level="boto3"
        )
    )
    files["boto3/not_in_record.txt"] = "swept by top_level.txt"
    files.update(
        dist_info(
            "python-dateutil",
            "2.9.0",
            {"dateutil/__init__.py": ""},
            top_level="dateutil",
            dir_name="python_dateutil-2.9.0.dist-info",
        )
    )
    files.update(dist_info("six", "1.16.0", {"six.py": ""}, top_level="six"))
    # A namespace package shared by two distributions.
    files.update(dist_info("google-a", "1.0", {"google/a/__init__.py": ""}, top_level="google"))
    files.update(dist_info("google-b", "2.0", {"google/b/__init__.py": ""}, top_level="google"))
    powertools = {"aws_lambda_powertools/__init__.py": "", "aws_lambda_powertools/x.py": ""}
    files.update(
        dist_info(
            "Aws_Lambda.Powertools",
            "3.0.0",
            powertools,
            dir_name="aws_lambda_powertools-3.0.0.dist-info",
        )
    )
    return write_tree(root, files)


def test_list_distributions_normalizes_names(tmp_path: Path) -> None:
    tree = site_packages(tmp_path / "site")
    expected = {
        "aws-lambda-powertools": "3.0.0",
        "boto3": "1.35.0",
        "google-a": "1.0",
        "google-b": "2.0",
        "python-dateutil": "2.9.0",
        "six": "1.16.0",
    }
    layer = tmp_path / "layer.zip"
    report = normalize(tree, layer, prefix="python/")
    assert report.distributions == expected
    assert list(report.distributions) == sorted(expected)
    assert report.distribution_sizes["six"] > 0 and set(report.distribution_sizes) == set(expected)
    # A layer ZIP read again as an input: its distributions sit under python/, not at the root.
    assert normalize(layer, tmp_path / "again.zip").distributions == {}


def test_exclude_distributions_uses_record_and_keeps_shared_namespaces(tmp_path: Path) -> None:
    tree = site_packages(tmp_path / "site")
    out = tmp_path / "out.zip"
    result = normalize(
        tree, out, exclude_distributions=["Boto3", "python_dateutil", "six", "google-b", "absent"]
    )
    got = [n for n in names(out) if not n.endswith("/")]
    assert not [n for n in got if n.startswith(("boto3", "dateutil", "python_dateutil", "six"))]
    assert not [n for n in got if n.startswith(("google/b", "google_b"))]
    assert "google/a/__init__.py" in got
    assert "google_a-1.0.dist-info/RECORD" in got
    assert "aws_lambda_powertools/x.py" in got
    assert result.excluded_distributions == {
        "boto3": "1.35.0",
        "google-b": "2.0",
        "python-dateutil": "2.9.0",
        "six": "1.16.0",
    }
    assert result.distributions == {"aws-lambda-powertools": "3.0.0", "google-a": "1.0"}
    assert result.unzipped_size == sum(
        i.file_size for i in zipfile.ZipFile(out).infolist() if not i.is_dir()
    )


def test_canonicalize_name() -> None:
    assert canonicalize_name("Python_Dateutil") == "python-dateutil"
    assert canonicalize_name("zope.interface") == "zope-interface"
    assert canonicalize_name("a__-.b") == "a-b"


# ------------------------------------------------------------------------------ bytecode


def pyc_flags(data: bytes) -> int:
    return int.from_bytes(data[4:8], "little")


def test_compile_produces_unchecked_hash_pyc_that_python_imports(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "tree", SOURCES)
    out = tmp_path / "out.zip"
    result = normalize(tree, out, prefix="python/", bytecode=True)
    pyc_name = f"python/pkg/__pycache__/mod.{CACHE_TAG}.pyc"
    assert pyc_name in names(out)
    assert result.compiled == 3
    with zipfile.ZipFile(out) as zf:
        data = zf.read(pyc_name)
        assert zf.getinfo(pyc_name).external_attr >> 16 == stat.S_IFREG | 0o644
    assert data[:4] == importlib.util.MAGIC_NUMBER
    assert pyc_flags(data) == 0b01  # PEP 552: hash-based, check_source unset.
    assert data[8:16] == importlib.util.source_hash(SOURCES["pkg/mod.py"].encode())

    # Extract, then change the source: an unchecked-hash .pyc is used without looking at it,
    # so still getting 'original' proves that Python imported the .pyc.
    extracted = tmp_path / "opt"
    zipfile.ZipFile(out).extractall(extracted)
    (extracted / "python/pkg/mod.py").write_text("def answer():\n    return 'edited'\n")
    proc = subprocess.run(
        [sys.executable, "-B", "-c", "import pkg.mod; print(pkg.mod.answer())"],
        cwd=str(tmp_path),
        env=dict(os.environ, PYTHONPATH=str(extracted / "python")),
        stdout=subprocess.PIPE,
        check=True,
    )
    assert proc.stdout.decode().strip() == "original"


def test_first_party_code_that_does_not_compile_fails_naming_file_and_line(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "srcs", {"app.py": "def handler(event, context):\n    return {\n"})
    with pytest.raises(ArtifactZipError) as e:
        normalize(tree, tmp_path / "out.zip", first_party=True, bytecode=True)
    message = str(e.value)
    assert "First-party code does not compile" in message
    assert "app.py, line 2" in message
    assert not (tmp_path / "out.zip").exists()


def test_third_party_code_that_does_not_compile_warns_and_ships_as_source(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "deps", {**SOURCES, "py2only.py": "print 'hello'\n"})
    out = tmp_path / "out.zip"
    report = normalize(tree, out, prefix="python/", bytecode=True)
    assert "python/py2only.py" in names(out)
    assert not [n for n in names(out) if "py2only" in n and n.endswith(".pyc")]
    assert len(report.warnings) == 1
    assert "python/py2only.py, line 1" in report.warnings[0]


def test_compile_is_deterministic_across_hash_seeds_and_workers(tmp_path: Path) -> None:
    # Enough modules for the worker pool to be used, and frozenset constants, whose marshal
    # order depends on the hash seed before CPython 3.11.
    many = {f"m{i:03d}.py": f"X = 'a' in {{'a', 'b', 'c{i}'}}\n" for i in range(80)}
    tree = write_tree(tmp_path / "tree", {**SOURCES, **many})
    running = "{}.{}".format(*sys.version_info[:2])
    outs = []
    for seed, workers in (("0", "1"), ("0", "2")):
        out = tmp_path / f"out{workers}.zip"
        request = tmp_path / "request.json"
        request.write_text(
            json.dumps(
                {
                    "output": str(out),
                    "sources": [{"path": str(tree)}],
                    "python_version": running,
                }
            )
        )
        subprocess.run(
            [
                sys.executable,
                "-S",
                lambda_zip.__file__,
                str(request),
                str(tmp_path / "r.json"),
                "--workers",
                workers,
            ],
            env=dict(os.environ, PYTHONHASHSEED=seed),
            check=True,
        )
        outs.append(sha256(out))
    assert len(set(outs)) == 1


def _python_with_column_positions() -> Optional[str]:
    """A CPython >= 3.11 (code objects carry column positions), from PATH or pyenv."""
    candidates = [shutil.which(f"python3.{minor}") for minor in (13, 12, 11)]
    for root in filter(None, (os.environ.get("PYENV_ROOT"), os.path.expanduser("~/.pyenv"))):
        pattern = os.path.join(root, "versions", "3.1[1-9].*", "bin", "python3")
        candidates.extend(sorted(glob.glob(pattern), reverse=True))
    for candidate in filter(None, candidates):
        check = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info >= (3, 11))"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        if check.returncode == 0 and check.stdout.strip() == b"True":
            return candidate
    return None


# Prints {pyc: [whether any instruction has a column, whether every one has a line]} for the
# .pyc files under argv[1], nested code objects included.
_POSITIONS = """
import json, marshal, pathlib, sys
def codes(code):
    yield code
    for const in code.co_consts:
        if hasattr(const, "co_positions"):
            yield from codes(const)
out = {}
for pyc in sorted(pathlib.Path(sys.argv[1]).rglob("*.pyc")):
    code = marshal.loads(pyc.read_bytes()[16:])
    positions = [p for c in codes(code) for p in c.co_positions()]
    lines = [line for c in codes(code) for _, _, line in c.co_lines()]
    out[pyc.name] = [any(p[2] is not None for p in positions), all(l is not None for l in lines)]
json.dump(out, sys.stdout)
"""


def test_third_party_bytecode_leaves_out_column_positions_first_party_keeps_them(
    tmp_path: Path,
) -> None:
    python = _python_with_column_positions()
    if python is None:
        pytest.skip("needs a CPython >= 3.11, whose code objects carry column positions")
    version = (
        subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            stdout=subprocess.PIPE,
            check=True,
        )
        .stdout.decode()
        .strip()
    )
    code = "def f(d):\n    return d['a']['b'] + [x for x in d]\n"
    deps = write_tree(tmp_path / "deps", {"lib.py": code})
    first_party = write_tree(tmp_path / "srcs", {"app.py": code})
    out, request = tmp_path / "out.zip", tmp_path / "request.json"
    request.write_text(
        json.dumps(
            {
                "output": str(out),
                "sources": [{"path": str(deps)}, {"path": str(first_party), "first_party": True}],
                "python_version": version,
            }
        )
    )
    subprocess.run(
        [python, "-S", lambda_zip.__file__, str(request), str(tmp_path / "report.json")],
        env=dict(os.environ, PYTHONHASHSEED="0"),
        check=True,
    )
    zipfile.ZipFile(out).extractall(tmp_path / "x")
    found = subprocess.run(
        [python, "-c", _POSITIONS, str(tmp_path / "x")], stdout=subprocess.PIPE, check=True
    ).stdout
    tag = "cpython-" + version.replace(".", "")
    # [has columns, has every line]: tracebacks still name each frame's line.
    assert json.loads(found) == {f"app.{tag}.pyc": [True, True], f"lib.{tag}.pyc": [False, True]}


def test_unseeded_bytecode_before_311_is_refused(tmp_path: Path) -> None:
    if sys.version_info >= (3, 11) or not sys.flags.hash_randomization:
        pytest.skip("Only CPython < 3.11 with hash randomization writes seed-dependent .pyc")
    tree = write_tree(tmp_path / "tree", SOURCES)
    running = "{}.{}".format(*sys.version_info[:2])
    with pytest.raises(bytecode.BytecodeError, match="PYTHONHASHSEED=0"):
        build_zip(ZipSpec(str(tmp_path / "o.zip"), (Source(str(tree)),), python_version=running))


def test_our_hash_pycs_survive_renormalization_but_stale_ones_do_not(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "tree", SOURCES)
    compiled = tmp_path / "compiled.zip"
    normalize(tree, compiled, bytecode=True)
    pyc_names = [n for n in names(compiled) if n.endswith(".pyc")]
    assert len(pyc_names) == 3

    again = tmp_path / "again.zip"
    normalize(compiled, again)
    assert sha256(again) == sha256(compiled)

    # Merging precompiled dependencies with freshly compiled first-party code.
    first_party = write_tree(tmp_path / "fp", {"handler.py": "def h(e, c):\n    return 1\n"})
    merged = tmp_path / "merged.zip"
    result = normalize([compiled, first_party], merged, bytecode=True)
    assert result.compiled == 1
    assert f"__pycache__/handler.{CACHE_TAG}.pyc" in names(merged)

    # A .pyc whose source changed is stale: dropped, never shipped.
    edited = tmp_path / "edited.zip"
    with zipfile.ZipFile(compiled) as src, zipfile.ZipFile(edited, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, b"X = 2\n" if info.filename == "top.py" else data)
    out = tmp_path / "out.zip"
    normalize(edited, out)
    assert f"__pycache__/top.{CACHE_TAG}.pyc" not in names(out)
    assert f"pkg/__pycache__/mod.{CACHE_TAG}.pyc" in names(out)


def test_compile_refuses_the_wrong_interpreter(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "tree", SOURCES)
    with pytest.raises(ArtifactZipError, match="must be compiled by CPython 3.0"):
        normalize(tree, tmp_path / "o.zip", bytecode=True, python_version="3.0")
    running = "{}.{}".format(*sys.version_info[:2])
    normalize(tree, tmp_path / "o.zip", bytecode=True, python_version=running)


# ------------------------------------------------------------------------------ native code


def elf(machine: int) -> bytes:
    """A minimal 64-bit little-endian ELF header for `machine` (62 x86_64, 183 aarch64)."""
    header = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
    header += struct.pack("<HHIQQQIHHHHHH", 3, machine, 1, 0, 0, 0, 0, 64, 0, 0, 64, 0, 0)
    return header


def test_native_code_for_another_machine_fails_naming_distribution_and_file(tmp_path: Path) -> None:
    files = dist_info(
        "fastthing", "2.1.0", {"fastthing/__init__.py": "", "fastthing/_speed.so": ""}
    )
    tree = write_tree(tmp_path / "deps", files)
    (tree / "fastthing/_speed.so").write_bytes(elf(183))
    with pytest.raises(ArtifactZipError) as e:
        normalize(
            tree, tmp_path / "out.zip", prefix="python/", native=NativeTarget("x86_64", (2, 34))
        )
    message = str(e.value)
    assert "fastthing 2.1.0" in message
    assert "python/fastthing/_speed.so" in message
    assert not (tmp_path / "out.zip").exists()
    (tree / "fastthing/_speed.so").write_bytes(elf(62))
    normalize(tree, tmp_path / "out.zip", prefix="python/", native=NativeTarget("x86_64", (2, 34)))
    assert "python/fastthing/_speed.so" in names(tmp_path / "out.zip")


# ------------------------------------------------------------------------------ slim


def slim_site(root: Path) -> Path:
    """Distributions that ship what Lambda never runs, next to code that must stay."""
    files: Dict[str, str] = {}
    files.update(
        dist_info(
            "pkg",
            "1.0",
            {
                "pkg/__init__.py": "from pkg import testing\n",
                "pkg/core.py": "def f():\n    return 1\n",
                "pkg/core.pyi": "def f() -> int: ...\n",
                "pkg/py.typed": "",
                "pkg/tests/__init__.py": "",
                "pkg/tests/test_core.py": (
                    "from pkg.core import f\nfrom pkg import _core_tests\n\n"
                    "def test_f():\n    assert f() == _core_tests.ONE\n"
                ),
                # A compiled module only the tests import (numpy's `core/_simd`).
                "pkg/_core_tests.cpython-39-x86_64-linux-gnu.so": "\x7fELF pkg._core_tests\n",
                "pkg/sub/test/test_sub.py": "def test_x():\n    pass\n",
                "pkg/sub/test/data.json": "{}\n",
                "pkg/data/test/sample.json": "{}\n",  # A `test` dir without test modules: data.
                "pkg/testing/__init__.py": "def assert_close(a, b):\n    assert a == b\n",
                "pkg/_speed.c": "int x;\n",
                "pkg/include/pkg/speed.h": "int x;\n",
                "pkg/_speed.pyx": "cdef int x\n",
                "pkg/_speed.pxd": "cdef int x\n",
                "pkg/lib/libspeed.a": "!<arch>\nspeed.o/\n",  # A static library (ar archive).
                "pkg/data/grades.a": "A+\n",  # Data that only happens to end in `.a`.
                "pkg/conftest.py": "import pytest\n",
                "pkg/notes.py": '"""Tests live in pkg.sub.test, not shipped."""\n',
                "pkg/README.md": "# pkg\n",
                "pkg/docs/index.rst": "pkg\n===\n",
                "pkg/docs/conf.py": "project = 'pkg'\n",
                "pkg/LICENSE.md": "MIT\n",
                "pkg/data/words.txt": "a\n",
            },
        )
    )
    # Test packages that code outside them imports: relative, absolute, and through a chain.
    files.update(
        dist_info(
            "imp",
            "2.0",
            {
                "imp/__init__.py": "",
                "imp/core.py": "from .tests import fixtures\n",
                "imp/tests/__init__.py": "",
                "imp/tests/fixtures.py": "from imp.sub.tests.helpers import H\n",
                "imp/sub/__init__.py": "",
                "imp/sub/mod.py": "from .. import docs\n",
                "imp/sub/tests/helpers.py": "H = 1\n",
                "imp/sub/tests/test_helpers.py": "from .helpers import H\n",
                # Imported only from a test suite that is itself left out.
                "imp/lonely/tests/test_lonely.py": (
                    "from imp.other.tests import only_tests_use_me\n"
                ),
                "imp/other/tests/only_tests_use_me.py": "",
                "imp/docs/__init__.py": "TEXT = 'imported'\n",
            },
        )
    )
    files.update(
        dist_info(
            "types-thing",
            "1.0",
            {
                "thing-stubs/__init__.pyi": "X: int\n",
                "thing-stubs/METADATA.toml": "version = '1'\n",
            },
        )
    )
    # A dist-info carries docs and stubs of its own: importlib.metadata's, never touched.
    files["pkg-1.0.dist-info/licenses/NOTES.md"] = "notes\n"
    files["pkg-1.0.dist-info/entry_points.txt"] = "[console_scripts]\n"
    return write_tree(root, files)


FIRST_PARTY_TESTS = {
    "app/__init__.py": "",
    "app/handler.py": "def handler(event, context):\n    return {}\n",
    "app/handler.pyi": "def handler(event: dict, context: object) -> dict: ...\n",
    "app/README.md": "# app\n",
    "app/ext.c": "int y;\n",
    "tests/test_handler.py": "def test_handler():\n    pass\n",
    "app/docs/guide.rst": "guide\n",
}


def test_slim_leaves_out_tests_stubs_sources_and_docs_of_distributions(tmp_path: Path) -> None:
    site = slim_site(tmp_path / "site")
    first_party = write_tree(tmp_path / "srcs", FIRST_PARTY_TESTS)
    out = tmp_path / "layer.zip"
    spec = ZipSpec(
        output=str(out),
        sources=(Source(str(site)), Source(str(first_party), first_party=True)),
        prefix="python/",
        slim=True,
    )
    report = build_zip(spec)
    got = {n[len("python/") :] for n in names(out) if not n.endswith("/")}
    dropped: Dict[str, List[str]] = {
        "tests": [
            "pkg/tests/__init__.py",
            "pkg/tests/test_core.py",
            "pkg/sub/test/test_sub.py",
            "pkg/sub/test/data.json",
            "imp/lonely/tests/test_lonely.py",
            "pkg/conftest.py",
            "imp/other/tests/only_tests_use_me.py",
            "pkg/_core_tests.cpython-39-x86_64-linux-gnu.so",
        ],
        "stubs": ["pkg/core.pyi", "thing-stubs/__init__.pyi", "thing-stubs/METADATA.toml"],
        "sources": [
            "pkg/_speed.c",
            "pkg/include/pkg/speed.h",
            "pkg/_speed.pyx",
            "pkg/_speed.pxd",
            "pkg/lib/libspeed.a",
        ],
        "docs": ["pkg/README.md", "pkg/docs/index.rst", "pkg/docs/conf.py"],
        "symbols": [],  # No native code with a symbol table here: see the test below.
    }
    for category, paths in dropped.items():
        assert not set(paths) & got, (category, sorted(set(paths) & got))
    kept = [
        "pkg/__init__.py",
        "pkg/core.py",
        "pkg/py.typed",
        "pkg/testing/__init__.py",
        "pkg/data/test/sample.json",
        "pkg/data/words.txt",
        "pkg/LICENSE.md",
        "pkg/data/grades.a",
        "pkg/notes.py",
        # Imported from outside: relative (`from .tests`), absolute, through a kept test module,
        # and `from .. import docs`.
        "imp/tests/__init__.py",
        "imp/tests/fixtures.py",
        "imp/sub/tests/helpers.py",
        "imp/sub/tests/test_helpers.py",
        "imp/docs/__init__.py",
        "pkg-1.0.dist-info/licenses/NOTES.md",
        "pkg-1.0.dist-info/RECORD",
        "pkg-1.0.dist-info/METADATA",
        "pkg-1.0.dist-info/entry_points.txt",
        "types_thing-1.0.dist-info/METADATA",
        "types_thing-1.0.dist-info/RECORD",
        *FIRST_PARTY_TESTS,  # First-party files are never dropped.
    ]
    assert sorted(set(kept) - got) == []
    assert report.slimmed == {
        category: {
            "files": len(paths),
            "bytes": sum((site / path).stat().st_size for path in paths),
        }
        for category, paths in dropped.items()
    }
    assert list(report.slimmed) == ["tests", "stubs", "sources", "docs", "symbols"]
    # Each RECORD lists what ships: the rows of left-out files are gone, the others unchanged.
    with zipfile.ZipFile(out) as zf:
        for info in ("pkg-1.0.dist-info", "imp-2.0.dist-info", "types_thing-1.0.dist-info"):
            shipped = zf.read(f"python/{info}/RECORD").decode()
            original = (site / info / "RECORD").read_text()
            rows = [line.split(",")[0] for line in shipped.splitlines()]
            assert not set(rows) & {p for paths in dropped.values() for p in paths}, (info, rows)
            assert [line for line in original.splitlines() if line.split(",")[0] in rows] == (
                shipped.splitlines()
            )
            assert {r for r in rows if not r.startswith("../")} <= got | {f"{info}/RECORD"}
    assert report.slim_kept == ["imp/docs", "imp/sub/tests", "imp/tests"]
    # The distributions are all still there, for importlib.metadata and the manifest.
    assert report.distributions == {"imp": "2.0", "pkg": "1.0", "types-thing": "1.0"}
    assert report.unzipped_size == sum(
        i.file_size for i in zipfile.ZipFile(out).infolist() if not i.is_dir()
    )


def test_without_slim_everything_ships_and_nothing_is_reported(tmp_path: Path) -> None:
    site = slim_site(tmp_path / "site")
    report = normalize(site, tmp_path / "out.zip")
    assert report.slimmed == {} and report.slim_kept == []
    assert {
        "pkg/tests/test_core.py",
        "pkg/_core_tests.cpython-39-x86_64-linux-gnu.so",
        "pkg/core.pyi",
        "pkg/_speed.c",
        "pkg/README.md",
    } <= set(names(tmp_path / "out.zip"))


def _extension_with_symbols() -> Optional[bytes]:
    """An extension module of this interpreter that has a symbol table (pyenv builds do)."""
    for name in ("_json", "_csv", "_struct", "math"):
        path = getattr(importlib.import_module(name), "__file__", None)  # None: built in.
        if path and elf_strip.strip_symbols(Path(path).read_bytes()) is not None:
            return Path(path).read_bytes()
    return None


def test_slim_strips_the_symbol_tables_of_distributions_native_code(tmp_path: Path) -> None:
    native = _extension_with_symbols()
    if native is None:
        pytest.skip("no extension module with a symbol table in this interpreter")
    stripped = elf_strip.strip_symbols(native)
    assert stripped is not None
    ext = "fast/_speedups.cpython-39-x86_64-linux-gnu.so"
    site = write_tree(
        tmp_path / "site", dist_info("fast", "1.0", {"fast/__init__.py": "", ext: "x"})
    )
    (site / ext).write_bytes(native)
    (site / "fast/libfast.so.1").write_bytes(native)  # Not in RECORD: left as it is.
    # First-party code is never touched, even where a distribution's RECORD claims its path.
    first_party = tmp_path / "srcs"
    (first_party / "fast").mkdir(parents=True)
    (first_party / "fast/_mine.so").write_bytes(native)
    with open(site / "fast-1.0.dist-info/RECORD", "a") as record:
        record.write("fast/_mine.so,,\n")
    sources = (Source(str(site)), Source(str(first_party), first_party=True))
    slim_zip, full_zip = tmp_path / "slim.zip", tmp_path / "full.zip"

    def build(out: Path, slim: bool) -> Report:
        return build_zip(ZipSpec(str(out), sources, slim=slim))

    report = build(slim_zip, slim=True)
    full = build(full_zip, slim=False)
    with zipfile.ZipFile(slim_zip) as zf:
        assert zf.read(ext) == stripped
        # Its RECORD row has the stripped file's hash and size; the other rows are as they were.
        shipped_record = zf.read("fast-1.0.dist-info/RECORD").decode()
        assert f"{ext},{record_hash(stripped)},{len(stripped)}\n" in shipped_record
        original = (site / "fast-1.0.dist-info/RECORD").read_text()
        assert [r for r in shipped_record.splitlines() if not r.startswith(ext + ",")] == [
            r for r in original.splitlines() if not r.startswith(ext + ",")
        ]
        record_growth = len(shipped_record) - len(original)
        assert zf.read("fast/libfast.so.1") == native
        assert zf.read("fast/_mine.so") == native
        assert zf.getinfo(ext).external_attr >> 16 == stat.S_IFREG | 0o755
    with zipfile.ZipFile(full_zip) as zf:
        assert zf.read(ext) == native
    assert report.slimmed["symbols"] == {"files": 1, "bytes": len(native) - len(stripped)}
    assert full.unzipped_size - report.unzipped_size == len(native) - len(stripped) - record_growth
    assert report.unzipped_size == sum(
        i.file_size for i in zipfile.ZipFile(slim_zip).infolist() if not i.is_dir()
    )
    assert build(tmp_path / "again.zip", slim=True) == report
    assert sha256(tmp_path / "again.zip") == sha256(slim_zip)


def test_slim_compiles_no_bytecode_for_what_it_leaves_out(tmp_path: Path) -> None:
    site = slim_site(tmp_path / "site")
    out = tmp_path / "out.zip"
    normalize(site, out, bytecode=True, slim=True)
    pycs = [n for n in names(out) if n.endswith(".pyc")]
    assert f"pkg/__pycache__/core.{CACHE_TAG}.pyc" in pycs
    assert f"imp/tests/__pycache__/fixtures.{CACHE_TAG}.pyc" in pycs
    for left_out in ("pkg/tests/", "pkg/sub/test/", "pkg/docs/", "imp/other/tests/"):
        assert not [n for n in pycs if n.startswith(left_out)], left_out


def test_a_test_suite_a_single_module_imports_by_its_dotted_name_is_kept(tmp_path: Path) -> None:
    files = dist_info(
        "lib",
        "1.0",
        {
            "lib/__init__.py": "",
            "lib/runner.py": "import importlib\nmod = importlib.import_module('lib.tests.cases')\n",
            "lib/tests/cases.py": "",
            "lib/other/tests/test_a.py": "",
        },
    )
    out = tmp_path / "out.zip"
    report = normalize(write_tree(tmp_path / "site", files), out, slim=True)
    assert "lib/tests/cases.py" in names(out)
    assert "lib/other/tests/test_a.py" not in names(out)
    assert report.slim_kept == ["lib/tests"]


def test_slim_reads_multi_line_and_commented_imports(tmp_path: Path) -> None:
    files = dist_info(
        "lib",
        "1.0",
        {
            "lib/__init__.py": "from . import (\n    core,  # the API\n    tests,\n)\n",
            "lib/core.py": "",
            "lib/tests/__init__.py": "",
            "lib/sub/__init__.py": "",
            "lib/sub/mod.py": "from lib.sub import core, \\\n    tests\n",
            "lib/sub/tests/__init__.py": "",
            "lib/sub/docs/__init__.py": "",  # Named nowhere.
        },
    )
    out = tmp_path / "out.zip"
    report = normalize(write_tree(tmp_path / "site", files), out, slim=True)
    assert {"lib/tests/__init__.py", "lib/sub/tests/__init__.py"} <= set(names(out))
    assert "lib/sub/docs/__init__.py" not in names(out)
    assert report.slim_kept == ["lib/sub/tests", "lib/tests"]


# ------------------------------------------------------------------------------ CLI


def test_cli_builds_a_layer_with_report(tmp_path: Path) -> None:
    tree = site_packages(tmp_path / "site")
    extra = tmp_path / "extra.py"
    extra.write_text("E = 1\n")
    out, report = tmp_path / "layer.zip", tmp_path / "report.json"
    request = tmp_path / "request.json"
    request.write_text(
        json.dumps(
            {
                "output": str(out),
                "sources": [{"path": str(tree)}],
                "files": [["extra.py", str(extra)]],
                "prefix": "python/",
                "exclude_distributions": ["boto3", "six", "python-dateutil"],
            }
        )
    )
    assert main([str(request), str(report)]) == 0
    data = json.loads(report.read_text())
    assert data["sha256"] == sha256(out)
    assert data["size"] == out.stat().st_size
    assert data["unzipped_size"] == sum(
        i.file_size for i in zipfile.ZipFile(out).infolist() if not i.is_dir()
    )
    assert data["excluded_distributions"] == {
        "boto3": "1.35.0",
        "python-dateutil": "2.9.0",
        "six": "1.16.0",
    }
    assert "python/extra.py" in names(out)
    assert data["largest_first_party"][0][0] == "python/extra.py"


def test_cli_reports_user_errors_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request = tmp_path / "request.json"
    request.write_text(
        json.dumps(
            {
                "output": str(tmp_path / "o.zip"),
                "sources": [{"path": str(tmp_path / "missing.zip")}],
            }
        )
    )
    assert main([str(request), str(tmp_path / "r.json")]) == 1
    err = capsys.readouterr().err
    assert "missing.zip" in err and "Traceback" not in err


def test_script_imports_only_the_stdlib_and_its_sandbox_sibling() -> None:
    """The sandboxed Process runs this file with its sibling only."""
    source = Path(lambda_zip.__file__).read_text()
    lines = [line.strip() for line in source.splitlines()]
    imports = [line for line in lines if line.startswith(("import ", "from "))]
    assert [i for i in imports if "pants_powertools" in i] == [
        "from pants_powertools.sandbox import bytecode, elf_strip, native_code, slim"
    ]
    assert "import bytecode  # type: ignore[no-redef]  # pants: no-infer-dep" in source
    assert "import elf_strip  # type: ignore[no-redef]  # pants: no-infer-dep" in source
    assert "import native_code  # type: ignore[no-redef]  # pants: no-infer-dep" in source
    assert "import slim  # type: ignore[no-redef]  # pants: no-infer-dep" in source
    assert source.count('if __name__ == "__main__":') == 1


def test_record_rows_follow_what_slim_did() -> None:
    # pip writes CRLF rows; a path with a comma is quoted; rows without hash or size stay so.
    text = (
        "pkg/__init__.py,sha256=aaa,10\r\n"
        "pkg/tests/test_a.py,sha256=bbb,20\r\n"
        '"pkg/odd,name.so",sha256=ccc,30\r\n'
        "pkg/__pycache__/m.cpython-312.pyc,,\r\n"
        "pkg/_fast.so,,\r\n"
        "pkg-1.0.dist-info/RECORD,,\r\n"
    )
    new_hash = record_hash(b"stripped")
    assert new_hash == "sha256=" + base64.urlsafe_b64encode(
        hashlib.sha256(b"stripped").digest()
    ).decode().rstrip("=")
    got = record_without(
        text,
        {"pkg/tests/test_a.py"},
        {"pkg/odd,name.so": (new_hash, 8), "pkg/_fast.so": (new_hash, 8)},
    )
    assert got == (
        "pkg/__init__.py,sha256=aaa,10\r\n"
        f'"pkg/odd,name.so",{new_hash},8\r\n'
        "pkg/__pycache__/m.cpython-312.pyc,,\r\n"
        "pkg/_fast.so,,\r\n"
        "pkg-1.0.dist-info/RECORD,,\r\n"
    )
    # Nothing to change: the same text.
    assert record_without(text, set(), {}) == text
