"""The layer ZIPs and manifests that `pants package src:powertools` writes, checked as AWS would
see them: layout, exclusions, modes, bytecode, native code architecture and manifest."""

import stat
import zipfile

import pytest

from tests.e2e_support import (
    ELF_CLASS_64,
    ELF_MACHINE,
    ELF_MAGIC,
    ELF_TYPE_SHARED,
    LAYER_ZIPS,
    RUNTIME,
    RUNTIME_PROVIDED_DISTS,
    RUNTIME_PROVIDED_TOP_LEVEL,
    artifact,
    bytecode_problems,
    code_sha256,
    dist_info_dirs,
    load_manifest,
    parse_elf_header,
    sha256_hex,
    top_level_names,
    unix_mode,
)

ARCHITECTURES = sorted(LAYER_ZIPS)


@pytest.fixture(params=ARCHITECTURES)
def arch(request):
    return request.param


@pytest.fixture
def layer(arch):
    with zipfile.ZipFile(str(artifact(LAYER_ZIPS[arch]))) as zf:
        yield zf


def test_every_entry_is_under_python(layer):
    names = layer.namelist()
    assert names, "empty layer"
    outside = [n for n in names if not n.startswith("python/")]
    assert outside == [], "Lambda only puts /opt/python on sys.path"
    assert len(names) == len(set(names)), "duplicate entries"
    # Sanity: the layer carries what it was built from.
    assert "python/aws_lambda_powertools/__init__.py" in names
    assert "python/pydantic/__init__.py" in names


def test_runtime_provided_distributions_are_left_out(layer, arch):
    names = layer.namelist()
    leaked_packages = sorted(set(top_level_names(names, "python/")) & RUNTIME_PROVIDED_TOP_LEVEL)
    assert leaked_packages == [], "the Lambda runtime already provides these"
    leaked_dists = sorted(set(dist_info_dirs(names, "python/")) & RUNTIME_PROVIDED_DISTS)
    assert leaked_dists == []
    distributions = load_manifest(LAYER_ZIPS[arch])["distributions"]
    assert sorted(set(distributions) & RUNTIME_PROVIDED_DISTS) == []


def test_modes_are_readable_by_lambda(layer):
    """Files 0644; directories and native code 0755, decided by content: Lambda extracts as
    root and runs as another user, and input modes (Pants materializes files of 512 KiB and
    more from its store with r-x bits) must not leak into the bytes."""
    wrong = []
    for info in layer.infolist():
        mode = unix_mode(info)
        if info.filename.endswith("/"):
            expected = stat.S_IFDIR | 0o755
        elif layer.read(info)[:4] == ELF_MAGIC:
            expected = stat.S_IFREG | 0o755
        else:
            expected = stat.S_IFREG | 0o644
        if mode != expected:
            wrong.append((info.filename, oct(mode), oct(expected)))
    assert wrong == []
    assert any(info.filename.endswith(".so") for info in layer.infolist())
    # The 1.5 MB swagger bundle is the file Pants hands over with r-x bits.
    big = [
        i for i in layer.infolist() if i.file_size >= 512 * 1024 and not i.filename.endswith(".so")
    ]
    assert big and all(unix_mode(i) == stat.S_IFREG | 0o644 for i in big)


def test_bytecode_is_hash_based_for_the_runtime(layer):
    """`__pycache__` only with PEP 552 hash-based .pyc of CPython 3.12, each next to its source
    (timestamp-based .pyc would be recompiled or ignored on a read-only /opt)."""
    assert bytecode_problems(layer) == []


def test_native_code_matches_the_architecture(layer, arch):
    """Every ELF file (whatever its name) is a 64-bit shared object for the layer's machine."""
    elf_files = {}
    for info in layer.infolist():
        if info.filename.endswith("/"):
            continue
        header = parse_elf_header(layer.read(info.filename))
        if header is not None:
            elf_files[info.filename] = header
    assert "pydantic_core" in " ".join(elf_files), "expected pydantic-core's extension module"
    assert all(name.endswith(".so") for name in elf_files), sorted(elf_files)
    wrong = {
        name: header
        for name, header in elf_files.items()
        if header.machine != ELF_MACHINE[arch]
        or header.elf_class != ELF_CLASS_64
        or header.elf_type != ELF_TYPE_SHARED
    }
    assert wrong == {}, "expected e_machine %d for %s" % (ELF_MACHINE[arch], arch)
    # The platform tag in the file name agrees with the machine code.
    triplet = {"x86_64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}[arch]
    for name in elf_files:
        if ".cpython-" in name:
            assert name.endswith(".cpython-312-%s.so" % triplet), name


def test_manifest_describes_the_zip(arch):
    rel = LAYER_ZIPS[arch]
    data = artifact(rel).read_bytes()
    manifest = load_manifest(rel)
    with zipfile.ZipFile(str(artifact(rel))) as zf:
        infos = zf.infolist()
        dists_in_zip = dist_info_dirs(zf.namelist(), "python/")

    assert manifest["kind"] == "layer"
    assert manifest["runtime"] == RUNTIME
    assert manifest["architectures"] == [arch]
    assert manifest["handler"] is None
    assert manifest["layers"] == []
    assert manifest["artifact"] == rel
    assert manifest["sha256"] == sha256_hex(data)
    assert manifest["code_sha256"] == code_sha256(data)
    assert manifest["size"] == len(data)
    assert manifest["unzipped_size"] == sum(i.file_size for i in infos if not i.is_dir())
    # The distributions listed are exactly those inside, with their versions.
    assert manifest["distributions"] == dists_in_zip
    assert "aws-lambda-powertools" in dists_in_zip
    assert "pydantic" in dists_in_zip


def test_both_architectures_carry_the_same_distributions():
    manifests = {arch: load_manifest(LAYER_ZIPS[arch]) for arch in ARCHITECTURES}
    assert manifests["x86_64"]["distributions"] == manifests["arm64"]["distributions"]
    assert manifests["x86_64"]["sha256"] != manifests["arm64"]["sha256"]
