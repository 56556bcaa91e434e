"""The function ZIPs and manifests that `pants package` writes for the two example functions:
the `lambda_function.handler` re-export, first-party code only (the layer provides the rest),
Lambda-readable modes, and a manifest that matches the bytes and names the right layer."""

import ast
import stat
import zipfile

import pytest

from tests.e2e_support import (
    FUNCTIONS,
    LAYER_ADDRESS,
    LAYER_ZIPS,
    RUNTIME,
    RUNTIME_PROVIDED_TOP_LEVEL,
    artifact,
    bytecode_problems,
    code_sha256,
    load_manifest,
    manifest_path,
    parse_elf_header,
    sha256_hex,
    top_level_names,
    unix_mode,
)


@pytest.fixture(params=sorted(FUNCTIONS))
def function(request):
    return FUNCTIONS[request.param]


@pytest.fixture
def function_zip(function):
    with zipfile.ZipFile(str(artifact(function.artifact))) as zf:
        yield zf


def _layer_top_level(arch):
    with zipfile.ZipFile(str(artifact(LAYER_ZIPS[arch]))) as zf:
        return set(top_level_names(zf.namelist(), "python/"))


def test_lambda_function_reexports_the_handler(function, function_zip):
    names = function_zip.namelist()
    assert "lambda_function.py" in names, "AWS is configured with lambda_function.handler"
    tree = ast.parse(function_zip.read("lambda_function.py").decode("utf-8"))
    module, _, attr = function.source_handler.rpartition(".")
    imports = [
        (node.module, alias.name, alias.asname or alias.name)
        for node in tree.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    ]
    assert (module, attr, "handler") in imports, imports
    # ... and the module it re-exports from is in the ZIP, so the handler is still reachable
    # by its own module path.
    assert module.replace(".", "/") + ".py" in names


def test_first_party_code_only(function, function_zip):
    names = function_zip.namelist()
    package = function.name
    for module in ("__init__", "app", "models"):
        assert "%s/%s.py" % (package, module) in names
    # Nothing the layer provides, and no installed distribution at all (the examples need
    # nothing beyond the layer).
    assert [n for n in names if ".dist-info" in n] == []
    tops = set(top_level_names(names))
    assert tops <= {"lambda_function", package}, sorted(tops)
    assert "aws_lambda_powertools" not in tops and "pydantic" not in tops
    assert not tops & _layer_top_level(function.architecture)
    assert not tops & RUNTIME_PROVIDED_TOP_LEVEL
    # No native code: this is what makes running the arm64 function on x86_64 valid.
    elf = [n for n in names if not n.endswith("/") and parse_elf_header(function_zip.read(n))]
    assert elf == []


def test_modes(function_zip):
    wrong = [
        (info.filename, oct(unix_mode(info)))
        for info in function_zip.infolist()
        if unix_mode(info)
        != (stat.S_IFDIR | 0o755 if info.filename.endswith("/") else stat.S_IFREG | 0o644)
    ]
    assert wrong == []


def test_bytecode_is_hash_based_for_the_runtime(function_zip):
    assert bytecode_problems(function_zip) == []


def test_manifest_describes_the_zip_and_its_layer(function, function_zip):
    data = artifact(function.artifact).read_bytes()
    manifest = load_manifest(function.artifact)

    assert manifest["kind"] == "function"
    assert manifest["runtime"] == RUNTIME
    assert manifest["architectures"] == [function.architecture]
    assert manifest["handler"] == "lambda_function.handler"
    assert manifest["source_handler"] == function.source_handler
    assert manifest["artifact"] == function.artifact
    assert manifest["sha256"] == sha256_hex(data)
    assert manifest["code_sha256"] == code_sha256(data)
    assert manifest["size"] == len(data)
    files = [i for i in function_zip.infolist() if not i.is_dir()]
    assert manifest["unzipped_size"] == sum(i.file_size for i in files)
    assert manifest["distributions"] == {}

    # Exactly one layer: the Powertools layer of the function's own architecture, pinned by
    # the sha256 that its own manifest and bytes have.
    layer_rel = LAYER_ZIPS[function.architecture]
    layer_manifest = load_manifest(layer_rel)
    [layer] = manifest["layers"]
    assert layer["address"] == LAYER_ADDRESS
    assert layer["artifact"] == layer_rel == layer_manifest["artifact"]
    assert layer["manifest"] == manifest_path(layer_rel)
    assert layer["architecture"] == function.architecture
    assert layer["runtime"] == RUNTIME == layer_manifest["runtime"]
    assert layer["sha256"] == layer_manifest["sha256"]
    assert layer["sha256"] == sha256_hex(artifact(layer_rel).read_bytes())
