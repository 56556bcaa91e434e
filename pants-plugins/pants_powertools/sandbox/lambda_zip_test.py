"""Tests for artifact_zip: byte-identical output, Lambda-readable modes, RECORD-based exclusion,
and unchecked-hash bytecode that Python really imports."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Dict, List, Mapping, Optional

import pytest

from pants_powertools import artifact_zip
from pants_powertools.artifact_zip import (
    ArtifactZipError,
    canonicalize_name,
    compile_bytecode,
    distribution_sizes,
    list_distributions,
    main,
    normalize_zip,
    write_zip,
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


def names(zip_path: Path) -> List[str]:
    with zipfile.ZipFile(zip_path) as zf:
        return zf.namelist()


def dist_info(name: str, version: str, files: Mapping[str, str], top_level: Optional[str] = None,
              dir_name: Optional[str] = None) -> Dict[str, str]:
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


# ------------------------------------------------------------------------------ write_zip


def test_write_zip_layout_modes_and_times() -> None:
    buf = io.BytesIO()
    write_zip([("b/run", b"#!/bin/sh\n"), ("a/x/y.py", b"print(1)\n")], buf)
    with zipfile.ZipFile(buf) as zf:
        infos = zf.infolist()
    assert [i.filename for i in infos] == ["a/", "a/x/", "a/x/y.py", "b/", "b/run"]
    by_name = {i.filename: i for i in infos}
    for info in infos:
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert info.create_system == 3
    assert by_name["a/x/y.py"].external_attr >> 16 == stat.S_IFREG | 0o644
    assert by_name["b/run"].external_attr >> 16 == stat.S_IFREG | 0o755
    assert by_name["a/"].external_attr >> 16 == stat.S_IFDIR | 0o755
    assert by_name["a/"].external_attr & 0x10  # MS-DOS directory bit, for non-Unix unzippers.
    assert by_name["a/x/y.py"].compress_type == zipfile.ZIP_DEFLATED
    assert by_name["a/"].compress_type == zipfile.ZIP_STORED


def test_write_zip_is_order_independent() -> None:
    entries = [("z.py", b"z"), ("a/b.py", b"b"), ("a/c", b"c")]
    one, two = io.BytesIO(), io.BytesIO()
    write_zip(entries, one)
    write_zip(list(reversed(entries)), two)
    assert one.getvalue() == two.getvalue()


def test_write_zip_rejects_bad_entries(tmp_path: Path) -> None:
    with pytest.raises(ArtifactZipError, match="Duplicate"):
        write_zip([("a", b"1"), ("./a", b"2")], tmp_path / "o.zip")
    with pytest.raises(ArtifactZipError, match="unsafe"):
        write_zip([("../evil", b"1")], tmp_path / "o.zip")
    with pytest.raises(ArtifactZipError, match="file in one input and a directory"):
        write_zip([("a", b"1"), ("a/b", b"2")], tmp_path / "o.zip")
    assert not (tmp_path / "o.zip").exists()
    assert not (tmp_path / "o.zip.tmp").exists()


def test_write_zip_explicit_empty_directory() -> None:
    buf = io.BytesIO()
    write_zip([("empty/", b""), ("f", b"x")], buf)
    assert zipfile.ZipFile(buf).namelist() == ["empty/", "f"]


# ------------------------------------------------------------------------------ determinism


def test_same_input_twice_is_byte_identical_despite_mtimes_and_modes(tmp_path: Path) -> None:
    one = write_tree(tmp_path / "one", SOURCES, mode=0o600)
    # The same content, created in another order, with other modes and mtimes.
    two = write_tree(tmp_path / "two", dict(reversed(list(SOURCES.items()))), mode=0o664)
    for i, path in enumerate(sorted(two.rglob("*"))):
        os.utime(path, (1_700_000_000 + i * 1000, 1_700_000_000 + i * 1000))
    normalize_zip(one, tmp_path / "one.zip")
    normalize_zip(two, tmp_path / "two.zip")
    normalize_zip(one, tmp_path / "again.zip")
    assert sha256(tmp_path / "one.zip") == sha256(tmp_path / "two.zip")
    assert sha256(tmp_path / "one.zip") == sha256(tmp_path / "again.zip")


def test_zip_input_gives_the_same_bytes_as_a_directory(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "tree", SOURCES)
    messy = tmp_path / "messy.zip"
    with zipfile.ZipFile(messy, "w") as zf:  # Host timestamps, default modes, no dir entries.
        for path in sorted(tree.rglob("*"), reverse=True):
            if path.is_file():
                zf.write(path, path.relative_to(tree).as_posix())
    normalize_zip(tree, tmp_path / "from_dir.zip")
    normalize_zip(messy, tmp_path / "from_zip.zip")
    normalize_zip(messy.read_bytes(), tmp_path / "from_bytes.zip")
    assert sha256(tmp_path / "from_dir.zip") == sha256(tmp_path / "from_zip.zip")
    assert sha256(tmp_path / "from_dir.zip") == sha256(tmp_path / "from_bytes.zip")


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
    normalize_zip(tree, out)
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
    normalize_zip(tree, out)
    assert not [n for n in names(out) if "__pycache__" in n or n.endswith(".pyc")]
    assert "pkg/mod.py" in names(out)


def test_prefix_strip_prefix_and_exclude_top_level(tmp_path: Path) -> None:
    tree = write_tree(
        tmp_path / "venv",
        {
            "lib/site/pkg/__init__.py": "",
            "lib/site/bin/x": "",
            "lib/site/extra.pth": "",
            "pyvenv.cfg": "",
        },
    )
    out = tmp_path / "out.zip"
    normalize_zip(tree, out, prefix="python", exclude_top_level=["bin", "*.pth"],
                  strip_prefix="lib/site/")
    assert names(out) == ["python/", "python/pkg/", "python/pkg/__init__.py"]


def test_direct_url_json_is_dropped(tmp_path: Path) -> None:
    files = dist_info("foo", "1.0", {"foo/__init__.py": ""})
    files["foo-1.0.dist-info/direct_url.json"] = '{"url": "file:///home/me/foo.whl"}'
    tree = write_tree(tmp_path / "t", files)
    out = tmp_path / "out.zip"
    normalize_zip(tree, out)
    assert "foo-1.0.dist-info/direct_url.json" not in names(out)
    assert "foo-1.0.dist-info/METADATA" in names(out)


def test_merging_sources_and_conflicts(tmp_path: Path) -> None:
    a = write_tree(tmp_path / "a", {"same.py": "1", "a.py": "a"})
    b = write_tree(tmp_path / "b", {"same.py": "1", "b.py": "b"})
    c = write_tree(tmp_path / "c", {"same.py": "2"})
    out = tmp_path / "out.zip"
    normalize_zip([a, b], out, extra_files={"lambda_function.py": b"from a import *\n"})
    assert names(out) == ["a.py", "b.py", "lambda_function.py", "same.py"]
    with pytest.raises(ArtifactZipError, match="different contents") as e:
        normalize_zip([a, c], out)
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
    normalize_zip(src, out)
    with zipfile.ZipFile(out) as zf:
        assert zf.read("alias.txt") == b"payload"
        assert zf.getinfo("alias.txt").external_attr >> 16 == stat.S_IFREG | 0o644

    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../etc/passwd", "x")
    with pytest.raises(ArtifactZipError, match="unsafe"):
        normalize_zip(evil, out)


# ------------------------------------------------------------------------------ distributions


def site_packages(root: Path) -> Path:
    files: Dict[str, str] = {}
    files.update(dist_info("boto3", "1.35.0", {"boto3/__init__.py": "", "boto3/session.py": ""},
                           top_level="boto3"))
    files["boto3/not_in_record.txt"] = "swept by top_level.txt"
    files.update(dist_info("python-dateutil", "2.9.0", {"dateutil/__init__.py": ""},
                           top_level="dateutil", dir_name="python_dateutil-2.9.0.dist-info"))
    files.update(dist_info("six", "1.16.0", {"six.py": ""}, top_level="six"))
    # A namespace package shared by two distributions.
    files.update(dist_info("google-a", "1.0", {"google/a/__init__.py": ""}, top_level="google"))
    files.update(dist_info("google-b", "2.0", {"google/b/__init__.py": ""}, top_level="google"))
    powertools = {"aws_lambda_powertools/__init__.py": "", "aws_lambda_powertools/x.py": ""}
    files.update(dist_info("Aws_Lambda.Powertools", "3.0.0", powertools,
                           dir_name="aws_lambda_powertools-3.0.0.dist-info"))
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
    assert list_distributions(tree) == expected
    assert list(list_distributions(tree)) == sorted(expected)
    layer = tmp_path / "layer.zip"
    normalize_zip(tree, layer, prefix="python/")
    assert list_distributions(layer, root="python/") == expected
    assert list_distributions(layer) == {}  # Nothing at the root of a layer ZIP.
    sizes = distribution_sizes(tree)
    assert sizes["six"] > 0 and set(sizes) == set(expected)


def test_exclude_distributions_uses_record_and_keeps_shared_namespaces(tmp_path: Path) -> None:
    tree = site_packages(tmp_path / "site")
    out = tmp_path / "out.zip"
    result = normalize_zip(
        tree, out, exclude_distributions=["Boto3", "python_dateutil", "six", "google-b", "absent"]
    )
    got = [n for n in names(out) if not n.endswith("/")]
    assert not [n for n in got if n.startswith(("boto3", "dateutil", "python_dateutil", "six"))]
    assert not [n for n in got if n.startswith(("google/b", "google_b"))]
    assert "google/a/__init__.py" in got
    assert "google_a-1.0.dist-info/RECORD" in got
    assert "aws_lambda_powertools/x.py" in got
    assert result.excluded_distributions == {
        "boto3": "1.35.0", "google-b": "2.0", "python-dateutil": "2.9.0", "six": "1.16.0"
    }
    assert result.distributions == {"aws-lambda-powertools": "3.0.0", "google-a": "1.0"}
    assert list_distributions(out) == result.distributions
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
    tree = write_tree(tmp_path / "tree", {**SOURCES, "bad.py": "def broken(:\n"})
    out = tmp_path / "out.zip"
    result = normalize_zip(tree, out, prefix="python/", bytecode=True)
    pyc_name = f"python/pkg/__pycache__/mod.{CACHE_TAG}.pyc"
    assert pyc_name in names(out)
    assert "python/bad.py" in names(out)
    assert "bad.py" in result.compile_failures
    assert "pkg/mod.py" in result.compiled
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
        cwd=str(tmp_path), env=dict(os.environ, PYTHONPATH=str(extracted / "python")),
        stdout=subprocess.PIPE, check=True,
    )
    assert proc.stdout.decode().strip() == "original"


def test_compile_is_deterministic_across_hash_seeds(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "tree", SOURCES)
    outs = []
    for seed in ("1", "2"):
        out = tmp_path / f"out{seed}.zip"
        subprocess.run(
            [sys.executable, artifact_zip.__file__, "--src", str(tree), "--out", str(out),
             "--compile"],
            env=dict(os.environ, PYTHONHASHSEED=seed), check=True,
        )
        outs.append(sha256(out))
    normalize_zip(tree, tmp_path / "inproc.zip", bytecode=True)
    outs.append(sha256(tmp_path / "inproc.zip"))
    assert len(set(outs)) == 1


def test_compile_bytecode_in_place(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "tree", SOURCES)
    result = compile_bytecode(tree, dfile_prefix="/var/task/")
    assert set(result.compiled) == {"pkg/__init__.py", "pkg/mod.py", "top.py"}
    pyc = tree / "pkg" / "__pycache__" / f"mod.{CACHE_TAG}.pyc"
    assert pyc_flags(pyc.read_bytes()) == 1
    assert compile_bytecode(tree).compiled == ()  # Already compiled: nothing to do.
    assert len(compile_bytecode(tree, force=True).compiled) == 3


def test_our_hash_pycs_survive_renormalization_but_stale_ones_do_not(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "tree", SOURCES)
    compiled = tmp_path / "compiled.zip"
    normalize_zip(tree, compiled, bytecode=True)
    pyc_names = [n for n in names(compiled) if n.endswith(".pyc")]
    assert len(pyc_names) == 3

    again = tmp_path / "again.zip"
    normalize_zip(compiled, again)
    assert sha256(again) == sha256(compiled)

    # Merging precompiled dependencies with freshly compiled first-party code.
    first_party = write_tree(tmp_path / "fp", {"handler.py": "def h(e, c):\n    return 1\n"})
    merged = tmp_path / "merged.zip"
    result = normalize_zip([compiled, first_party], merged, bytecode=True)
    assert result.compiled == ("handler.py",)
    assert f"__pycache__/handler.{CACHE_TAG}.pyc" in names(merged)

    # A .pyc whose source changed is stale: dropped, never shipped.
    edited = tmp_path / "edited.zip"
    with zipfile.ZipFile(compiled) as src, zipfile.ZipFile(edited, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, b"X = 2\n" if info.filename == "top.py" else data)
    out = tmp_path / "out.zip"
    normalize_zip(edited, out)
    assert f"__pycache__/top.{CACHE_TAG}.pyc" not in names(out)
    assert f"pkg/__pycache__/mod.{CACHE_TAG}.pyc" in names(out)

    normalize_zip(compiled, out, keep_hash_pycs=False)
    assert not [n for n in names(out) if n.endswith(".pyc")]
    normalize_zip(compiled, out, python_version="3.0")  # .pyc for another version: dropped.
    assert not [n for n in names(out) if n.endswith(".pyc")]


def test_compile_refuses_the_wrong_interpreter(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "tree", SOURCES)
    with pytest.raises(ArtifactZipError, match="must be compiled by CPython 3.0"):
        normalize_zip(tree, tmp_path / "o.zip", bytecode=True, python_version="3.0")
    running = "{}.{}".format(*sys.version_info[:2])
    normalize_zip(tree, tmp_path / "o.zip", bytecode=True, python_version=running)


# ------------------------------------------------------------------------------ CLI


def test_cli_builds_a_layer_with_report(tmp_path: Path) -> None:
    tree = site_packages(tmp_path / "site")
    extra = tmp_path / "extra.py"
    extra.write_text("E = 1\n")
    out, report = tmp_path / "layer.zip", tmp_path / "report.json"
    argv = ["--src", str(tree), "--out", str(out), "--prefix", "python/",
            "--exclude-dist", "boto3,six", "--exclude-dist", "python-dateutil",
            "--file", f"extra.py={extra}", "--compile", "--report", str(report)]
    assert main(argv) == 0
    data = json.loads(report.read_text())
    assert data["sha256"] == sha256(out)
    assert data["size"] == out.stat().st_size
    assert data["excluded_distributions"] == {
        "boto3": "1.35.0", "python-dateutil": "2.9.0", "six": "1.16.0"
    }
    assert "python/extra.py" in names(out)
    assert f"python/__pycache__/extra.{CACHE_TAG}.pyc" in names(out)
    assert list_distributions(out, "python") == data["distributions"]


def test_cli_reports_user_errors_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--src", str(tmp_path / "missing.zip"), "--out", str(tmp_path / "o.zip")]) == 1
    assert "artifact_zip: error:" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "o.zip")])


def test_cli_script_has_no_sibling_imports() -> None:
    """The sandboxed Process runs this file alone, so it must import only the stdlib."""
    source = Path(artifact_zip.__file__).read_text()
    assert "pants_powertools" not in source
    assert "from ." not in source
    assert "import pants" not in source
    assert source.count('if __name__ == "__main__":') == 1
