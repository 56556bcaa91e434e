"""The function ZIPs and manifests that `pants package` writes for the two example functions:
the `lambda_function.handler` re-export, first-party code only (the layer provides the rest),
Lambda-readable modes, and a manifest that matches the bytes and names the right layer.
Then the python3.13 function without layers (src/greeter_py313:lambda): Powertools bundled
for cp313, and a CPython 3.13 .pyc for every .py."""

import ast
import stat
import zipfile

import pytest

from tests.e2e_support import (
    FUNCTIONS,
    LAYER_ADDRESS,
    LAYER_ZIPS,
    PY313_FUNCTION,
    PY313_RUNTIME,
    PY313_VERSION,
    PYC_FLAGS_UNCHECKED_HASH,
    PYC_MAGIC,
    RUNTIME,
    RUNTIME_PROVIDED_DISTS,
    RUNTIME_PROVIDED_TOP_LEVEL,
    artifact,
    bytecode_problems,
    code_sha256,
    dist_info_dirs,
    load_manifest,
    manifest_path,
    native_code_problems,
    parse_elf_header,
    parse_pyc_header,
    pyc_cache_tag,
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


# ---------------------------------------------------------------------------------------------
# The python3.13 function without layers.
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def py313_zip():
    with zipfile.ZipFile(str(artifact(PY313_FUNCTION.artifact))) as zf:
        yield zf


def _pyc_of(source: str, version) -> str:
    folder, _, module = source.rpartition("/")
    cached = "__pycache__/%s.%s.pyc" % (module[: -len(".py")], pyc_cache_tag(version))
    return folder + "/" + cached if folder else cached


def test_py313_manifest_says_python313_and_no_layers(py313_zip):
    function = PY313_FUNCTION
    data = artifact(function.artifact).read_bytes()
    manifest = load_manifest(function.artifact)
    assert manifest["kind"] == "function"
    assert manifest["runtime"] == PY313_RUNTIME == "python3.13"
    assert manifest["architectures"] == [function.architecture] == ["x86_64"]
    assert manifest["handler"] == "lambda_function.handler"
    assert manifest["source_handler"] == function.source_handler
    assert manifest["artifact"] == function.artifact
    assert manifest["sha256"] == sha256_hex(data)
    assert manifest["code_sha256"] == code_sha256(data)
    assert manifest["layers"] == []
    assert manifest["environment"]["POWERTOOLS_SERVICE_NAME"] == function.service
    # Without layers the ZIP carries Powertools and what it needs, minus what the runtime has.
    in_zip = dist_info_dirs(py313_zip.namelist())
    assert manifest["distributions"] == in_zip
    assert in_zip["aws-lambda-powertools"] == "3.37.0"
    assert {"pydantic", "pydantic-core"} <= set(in_zip)
    assert not set(in_zip) & RUNTIME_PROVIDED_DISTS
    assert not set(top_level_names(py313_zip.namelist())) & RUNTIME_PROVIDED_TOP_LEVEL


def test_py313_every_py_has_an_unchecked_hash_cp313_pyc(py313_zip):
    names = set(py313_zip.namelist())
    sources = sorted(n for n in names if n.endswith(".py"))
    # Its own modules, the handler re-export and Powertools' modules are all there.
    for source in (
        "lambda_function.py",
        "greeter_py313/__init__.py",
        "greeter_py313/app.py",
        "aws_lambda_powertools/__init__.py",
        "aws_lambda_powertools/logging/logger.py",
    ):
        assert source in names, source
    missing = [s for s in sources if _pyc_of(s, PY313_VERSION) not in names]
    assert missing == []
    # Only CPython 3.13 bytecode (no 3.12 left over), each next to its source.
    assert bytecode_problems(py313_zip, PY313_VERSION) == []
    pycs = [n for n in names if n.endswith(".pyc")]
    assert len(pycs) == len(sources)
    for pyc in pycs:
        header = parse_pyc_header(py313_zip.read(pyc))
        assert header.magic == PYC_MAGIC[PY313_VERSION], pyc
        assert header.flags == PYC_FLAGS_UNCHECKED_HASH, (pyc, header.flags)


def test_py313_native_code_is_cp313_x86_64(py313_zip):
    assert native_code_problems(py313_zip, "x86_64") == {}
    shared_objects = [n for n in py313_zip.namelist() if n.endswith(".so")]
    assert any(n.startswith("pydantic_core/") for n in shared_objects), shared_objects
    # Extension modules built for another CPython would not import on python3.13.
    wrong = [
        n for n in shared_objects if ".cpython-" in n and ".cpython-%d%d-" % PY313_VERSION not in n
    ]
    assert wrong == []


def test_py313_modes(py313_zip):
    """Files 0644; directories and native code (decided by content, as for the layer) 0755."""
    wrong = []
    for info in py313_zip.infolist():
        if info.filename.endswith("/"):
            expected = stat.S_IFDIR | 0o755
        elif parse_elf_header(py313_zip.read(info)) is not None:
            expected = stat.S_IFREG | 0o755
        else:
            expected = stat.S_IFREG | 0o644
        if unix_mode(info) != expected:
            wrong.append((info.filename, oct(unix_mode(info)), oct(expected)))
    assert wrong == []


# ---------------------------------------------------------------------------------------------
# handler_forms: a star-import handler and a callable-object handler (python3.12 x86_64, no
# layers, first-party code only), which the build lets through for the import check.
# ---------------------------------------------------------------------------------------------

# {ZIP: (the handler's module path, the first-party modules the ZIP must carry)}
HANDLER_FORM_ZIPS = {
    "src.handler_forms/star.zip": (
        "handler_forms.star.handler",
        # impl.py is only reachable through `from handler_forms.impl import *`.
        {"handler_forms/__init__.py", "handler_forms/star.py", "handler_forms/impl.py"},
    ),
    "src.handler_forms/callable.zip": (
        "handler_forms.callable_obj.handler",
        {"handler_forms/__init__.py", "handler_forms/callable_obj.py"},
    ),
}


@pytest.mark.parametrize("rel", sorted(HANDLER_FORM_ZIPS))
def test_handler_forms_zip_and_manifest(rel: str) -> None:
    source_handler, modules = HANDLER_FORM_ZIPS[rel]
    data = artifact(rel).read_bytes()
    manifest = load_manifest(rel)
    assert manifest["kind"] == "function"
    assert manifest["runtime"] == RUNTIME
    assert manifest["architectures"] == ["x86_64"]
    assert manifest["handler"] == "lambda_function.handler"
    assert manifest["source_handler"] == source_handler
    assert manifest["artifact"] == rel
    assert manifest["sha256"] == sha256_hex(data)
    assert manifest["code_sha256"] == code_sha256(data)
    assert manifest["layers"] == [] and manifest["distributions"] == {}
    with zipfile.ZipFile(str(artifact(rel))) as zf:
        names = zf.namelist()
        sources = {n for n in names if n.endswith(".py")}
        # The re-export, the handler's package and nothing else (no tests, no third party).
        assert sources == modules | {"lambda_function.py"}
        assert set(top_level_names(names)) == {"lambda_function", "handler_forms"}
        tree = ast.parse(zf.read("lambda_function.py").decode("utf-8"))
        imports = [
            (node.module, alias.name, alias.asname or alias.name)
            for node in tree.body
            if isinstance(node, ast.ImportFrom)
            for alias in node.names
        ]
        module, _, attr = source_handler.rpartition(".")
        assert imports == [(module, attr, "handler")]
        assert bytecode_problems(zf) == []
        assert len([n for n in names if n.endswith(".pyc")]) == len(sources)
