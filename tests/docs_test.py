"""The deployment examples in docs/examples/ against the artifacts `pants package` builds.

tests/BUILD lists the layer and the three functions as `runtime_package_dependencies`, so each
ZIP and its `.lambda.json` manifest are in the sandbox at their dist-relative paths (e.g.
`src/powertools-x86_64.zip`), and docs/examples/ comes in as a `files` target. The examples
refer to the ZIPs under `<repo>/dist/`, so a path `dist/<artifact>` in them is `<artifact>` here.

Checked: the SAM template (parsed by the small YAML reader below: the template sticks to block
mappings, block and flow sequences of scalars, and the !Ref/!Sub/!GetAtt tags), the Terraform
file (by its text: it must take every value from the decoded manifests) and the CDK stack (run
against stand-in `aws_cdk` modules that record what the stack creates).
Stdlib only, CPython 3.9 syntax.
"""

import base64
import hashlib
import importlib.util
import json
import posixpath
import re
import sys
import types
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest

ROOT = Path(__file__).parent.parent
EXAMPLES = "docs/examples"
TEMPLATE = ROOT / EXAMPLES / "template.yaml"
MAIN_TF = ROOT / EXAMPLES / "main.tf"
CDK_STACK = ROOT / EXAMPLES / "cdk_stack.py"

LAYER_MANIFESTS = ("src/powertools-x86_64.lambda.json", "src/powertools-arm64.lambda.json")
FUNCTION_MANIFESTS = (
    "src.orders_api/lambda.lambda.json",
    "src.sqs_batch/lambda.lambda.json",
    "src.sqs_batch/lambda-public-layer.lambda.json",
)
ALL_MANIFESTS = LAYER_MANIFESTS + FUNCTION_MANIFESTS


def load_manifest(name: str) -> Dict[str, Any]:
    path = ROOT / name
    assert (
        path.is_file()
    ), f"{name} is missing: is its target in tests/BUILD's runtime_package_dependencies?"
    return json.loads(path.read_text())


def manifests_by_artifact() -> Dict[str, Dict[str, Any]]:
    manifests = [load_manifest(name) for name in ALL_MANIFESTS]
    return {manifest["artifact"]: manifest for manifest in manifests}


def dist_artifact(example_relative_path: str) -> str:
    """`../../dist/src/x.zip` (relative to docs/examples/) -> `src/x.zip` (relative to dist/)."""
    repo_path = posixpath.normpath(posixpath.join(EXAMPLES, example_relative_path))
    assert repo_path.startswith(
        "dist/"
    ), f"{example_relative_path} does not point into <repo>/dist/"
    return repo_path[len("dist/") :]


def public_layer_arn(template_arn: str, region_token: str) -> str:
    """A region-substituted ARN back in the manifest's form, with `{region}`."""
    assert (
        region_token in template_arn
    ), f"{template_arn} does not take the region from {region_token}"
    return template_arn.replace(region_token, "{region}")


# ---------------------------------------------------------------------------------------------
# The manifests themselves
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_MANIFESTS)
def test_manifest_names_its_zip_and_code_sha256(name: str) -> None:
    manifest = load_manifest(name)
    assert name == manifest["artifact"][: -len(".zip")] + ".lambda.json"
    data = (ROOT / manifest["artifact"]).read_bytes()
    # What Terraform's filebase64sha256() gives and Lambda reports as CodeSha256.
    assert manifest["code_sha256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()


# ---------------------------------------------------------------------------------------------
# A small YAML reader for the SAM template
# ---------------------------------------------------------------------------------------------

_PLAIN_BOOLS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}
Line = Tuple[int, int, str]  # (line number, indentation, content)


class YamlSubsetError(ValueError):
    pass


def _strip_comment(line: str) -> str:
    quote = None
    for i, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i]
    return line


def _split_key(content: str) -> Optional[Tuple[str, str]]:
    match = re.match(r"^([A-Za-z0-9_.:/{}-]+?):(?:\s+(.*))?$", content)
    if not match or content.startswith(("-", "!", '"', "'", "[", "{")):
        return None
    return match.group(1), (match.group(2) or "").strip()


def yaml_scalar(text: str) -> Any:
    """A flow scalar: quoted, plain (YAML 1.1 booleans, null and numbers resolved, as a real
    parser would), a flow sequence of scalars, or a CloudFormation short-form tag."""
    text = text.strip()
    if text.startswith("!"):
        tag, _, rest = text.partition(" ")
        value = yaml_scalar(rest)
        if tag == "!Ref":
            return {"Ref": value}
        if tag == "!GetAtt":
            return {"Fn::GetAtt": value.split(".", 1)}
        return {"Fn::" + tag[1:]: value}
    if text.startswith('"'):
        if not text.endswith('"') or len(text) < 2:
            raise YamlSubsetError(f"unterminated string: {text}")
        return json.loads(text)
    if text.startswith("'"):
        if not text.endswith("'") or len(text) < 2:
            raise YamlSubsetError(f"unterminated string: {text}")
        return text[1:-1].replace("''", "'")
    if text.startswith("["):
        if not text.endswith("]"):
            raise YamlSubsetError(f"unterminated flow sequence: {text}")
        inner = text[1:-1].strip()
        return [yaml_scalar(item) for item in inner.split(",")] if inner else []
    if text == "{}":
        return {}
    if text.startswith(("{", "&", "*", "|", ">")):
        raise YamlSubsetError(f"not supported by this reader: {text}")
    lowered = text.lower()
    if lowered in _PLAIN_BOOLS:
        return _PLAIN_BOOLS[lowered]
    if lowered in ("null", "~", ""):
        return None
    if re.fullmatch(r"[-+]?\d+", text):
        return int(text)
    if re.fullmatch(r"[-+]?(\d+\.\d*|\.\d+)([eE][-+]?\d+)?", text):
        return float(text)
    return text


def _block(lines: List[Line], pos: int, indent: int) -> Tuple[Any, int]:
    if lines[pos][2].startswith("- "):
        return _sequence(lines, pos, indent)
    return _mapping(lines, pos, indent)


def _sequence(lines: List[Line], pos: int, indent: int) -> Tuple[List[Any], int]:
    items = []
    while pos < len(lines) and lines[pos][1] == indent and lines[pos][2].startswith("- "):
        number, _, content = lines[pos]
        item = content[2:].strip()
        if _split_key(item) is not None:
            raise YamlSubsetError(f"line {number}: mappings inside sequences are not supported")
        items.append(yaml_scalar(item))
        pos += 1
    return items, pos


def _mapping(lines: List[Line], pos: int, indent: int) -> Tuple[Dict[str, Any], int]:
    result: Dict[str, Any] = {}
    while pos < len(lines) and lines[pos][1] == indent and not lines[pos][2].startswith("- "):
        number, _, content = lines[pos]
        split = _split_key(content)
        if split is None:
            raise YamlSubsetError(f"line {number}: expected `key: value`, got {content!r}")
        key, rest = split
        if key in result:
            raise YamlSubsetError(f"line {number}: duplicate key {key!r}")
        pos += 1
        if rest:
            result[key] = yaml_scalar(rest)
        elif pos < len(lines) and lines[pos][1] > indent:
            result[key], pos = _block(lines, pos, lines[pos][1])
        elif pos < len(lines) and lines[pos][1] == indent and lines[pos][2].startswith("- "):
            result[key], pos = _sequence(lines, pos, indent)
        else:
            result[key] = None
    return result, pos


def parse_yaml(text: str) -> Any:
    lines: List[Line] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise YamlSubsetError(f"line {number}: tabs in indentation")
        line = _strip_comment(raw).rstrip()
        if line.strip() in ("", "---"):
            continue
        lines.append((number, len(line) - len(line.lstrip(" ")), line.strip()))
    value, pos = _block(lines, 0, lines[0][1])
    if pos != len(lines):
        number, _, content = lines[pos]
        raise YamlSubsetError(f"line {number}: unexpected indentation at {content!r}")
    return value


def test_yaml_reader_resolves_like_yaml() -> None:
    parsed = parse_yaml(
        "a:\n  b: 'x'  # comment\n  c: false\n  d: \"false\"\n  e:\n    - !Ref R\n"
        '  f: [x86_64, arm64]\n  g: !Sub "arn:${AWS::Region}:y"\n  h: !GetAtt Q.Arn\n  i: 3\n'
    )
    assert parsed == {
        "a": {
            "b": "x",
            "c": False,
            "d": "false",
            "e": [{"Ref": "R"}],
            "f": ["x86_64", "arm64"],
            "g": {"Fn::Sub": "arn:${AWS::Region}:y"},
            "h": {"Fn::GetAtt": ["Q", "Arn"]},
            "i": 3,
        }
    }
    with pytest.raises(YamlSubsetError):
        parse_yaml("a:\n  - b: c\n")


# ---------------------------------------------------------------------------------------------
# SAM
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sam_resources() -> Dict[str, Any]:
    template = parse_yaml(TEMPLATE.read_text())
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    return template["Resources"]


def _of_type(resources: Dict[str, Any], type_: str) -> Dict[str, Dict[str, Any]]:
    return {name: r["Properties"] for name, r in resources.items() if r["Type"] == type_}


def test_sam_layers_match_their_manifests(sam_resources: Dict[str, Any]) -> None:
    by_artifact = manifests_by_artifact()
    layers = _of_type(sam_resources, "AWS::Serverless::LayerVersion")
    seen = set()
    for name, props in layers.items():
        artifact = dist_artifact(props["ContentUri"])
        manifest = by_artifact.get(artifact)
        assert (
            manifest is not None and manifest["kind"] == "layer"
        ), f"{name}: {artifact} is no layer ZIP"
        assert props["CompatibleRuntimes"] == [manifest["runtime"]], name
        assert props["CompatibleArchitectures"] == manifest["architectures"], name
        seen.add(artifact)
    assert seen == {load_manifest(name)["artifact"] for name in LAYER_MANIFESTS}


def test_sam_functions_match_their_manifests(sam_resources: Dict[str, Any]) -> None:
    by_artifact = manifests_by_artifact()
    layer_artifact_by_resource = {
        name: dist_artifact(props["ContentUri"])
        for name, props in _of_type(sam_resources, "AWS::Serverless::LayerVersion").items()
    }
    functions = _of_type(sam_resources, "AWS::Serverless::Function")
    seen = set()
    for name, props in functions.items():
        artifact = dist_artifact(props["CodeUri"])
        manifest = by_artifact.get(artifact)
        assert (
            manifest is not None and manifest["kind"] == "function"
        ), f"{name}: {artifact} is no function ZIP"
        assert props["Handler"] == manifest["handler"] == "lambda_function.handler", name
        assert props["Runtime"] == manifest["runtime"], name
        assert props["Architectures"] == manifest["architectures"], name
        # Equal as strings: an unquoted `false` would reach CloudFormation as a boolean.
        assert props["Environment"]["Variables"] == manifest["environment"], name

        expected_layers = []
        for layer in manifest["layers"]:
            if "arn" in layer:
                expected_layers.append(("arn", layer["arn"]))
            else:
                expected_layers.append(("artifact", layer["artifact"]))
        actual_layers = []
        for layer in props.get("Layers", []):
            if isinstance(layer, dict) and "Ref" in layer:
                actual_layers.append(("artifact", layer_artifact_by_resource[layer["Ref"]]))
            else:
                assert isinstance(layer, dict) and "Fn::Sub" in layer, f"{name}: {layer!r}"
                actual_layers.append(("arn", public_layer_arn(layer["Fn::Sub"], "${AWS::Region}")))
        assert actual_layers == expected_layers, name
        seen.add(artifact)
    assert seen == {load_manifest(name)["artifact"] for name in FUNCTION_MANIFESTS}


# ---------------------------------------------------------------------------------------------
# Terraform
# ---------------------------------------------------------------------------------------------


def _tf_resource(text: str, type_: str) -> str:
    match = re.search(r'^resource "%s" "[^"]+" \{\n' % re.escape(type_), text, re.M)
    assert match, f"main.tf has no {type_} resource"
    depth, pos = 1, match.end()
    while depth:
        depth += {"{": 1, "}": -1}.get(text[pos], 0)
        pos += 1
    return text[match.end() : pos - 1]


def _tf_attribute(block: str, name: str) -> str:
    match = re.search(r"^\s*%s\s*=\s*(.+?)\s*$" % re.escape(name), block, re.M)
    assert match, f"no `{name} = ...` in:\n{block}"
    return match.group(1)


@pytest.fixture(scope="module")
def main_tf() -> str:
    return MAIN_TF.read_text()


def test_terraform_reads_every_manifest(main_tf: str) -> None:
    assert 'dist = "${path.module}/../../dist"' in main_tf
    read = re.findall(r'jsondecode\(file\("\$\{local\.dist\}/([^"]+)"\)\)', main_tf)
    assert sorted(read) == sorted(ALL_MANIFESTS)
    for name in read:
        load_manifest(name)


def test_terraform_layer_versions_take_the_manifest(main_tf: str) -> None:
    block = _tf_resource(main_tf, "aws_lambda_layer_version")
    assert _tf_attribute(block, "for_each") == "local.layer_manifests"
    assert _tf_attribute(block, "filename") == '"${local.dist}/${each.value.artifact}"'
    assert _tf_attribute(block, "source_code_hash") == "each.value.code_sha256"
    assert _tf_attribute(block, "compatible_runtimes") == "[each.value.runtime]"
    assert _tf_attribute(block, "compatible_architectures") == "each.value.architectures"


def test_terraform_functions_take_the_manifest(main_tf: str) -> None:
    block = _tf_resource(main_tf, "aws_lambda_function")
    assert _tf_attribute(block, "for_each") == "local.function_manifests"
    assert _tf_attribute(block, "filename") == '"${local.dist}/${each.value.artifact}"'
    assert _tf_attribute(block, "source_code_hash") == "each.value.code_sha256"
    assert _tf_attribute(block, "handler") == "each.value.handler"
    assert _tf_attribute(block, "runtime") == "each.value.runtime"
    assert _tf_attribute(block, "architectures") == "each.value.architectures"
    assert "for layer in each.value.layers" in block
    assert 'replace(layer.arn, "{region}", data.aws_region.current.name)' in block
    assert "local.layer_arn_by_artifact[layer.artifact]" in block
    env = re.search(r'dynamic "environment" \{(.*?)\n  \}', block, re.S)
    assert env, "no dynamic environment block"
    assert "[each.value.environment]" in env.group(1)
    assert _tf_attribute(env.group(1), "variables") == "environment.value"


# ---------------------------------------------------------------------------------------------
# CDK
# ---------------------------------------------------------------------------------------------


class _Recorded:
    """Stands in for any aws_cdk name: attribute access and calls are recorded by path."""

    calls: List["_Recorded"] = []

    def __init__(
        self, path: str, args: Tuple[Any, ...] = (), kwargs: Optional[Dict[str, Any]] = None
    ):
        self.path, self.args, self.kwargs = path, args, kwargs or {}

    def __getattr__(self, name: str) -> "_Recorded":
        if name.startswith("__"):
            raise AttributeError(name)
        return _Recorded(f"{self.path}.{name}")

    def __call__(self, *args: Any, **kwargs: Any) -> "_Recorded":
        call = _Recorded(self.path, args, kwargs)
        _Recorded.calls.append(call)
        return call

    def __repr__(self) -> str:
        return f"{self.path}(args={self.args!r}, kwargs={self.kwargs!r})"


REGION_TOKEN = "${Token[AWS.Region]}"


class _Stack:
    region = REGION_TOKEN

    def __init__(self, scope: Any, construct_id: str, **kwargs: Any) -> None:
        self.node_id = construct_id


def _module(name: str, **attributes: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    # PEP 562: the module's `__getattr__` answers names that it lacks.
    module.__dict__["__getattr__"] = lambda attr: _Recorded(f"{name}.{attr}")
    return module


@pytest.fixture
def cdk_calls(monkeypatch: pytest.MonkeyPatch) -> List[_Recorded]:
    monkeypatch.setitem(sys.modules, "aws_cdk", _module("aws_cdk", Stack=_Stack))
    monkeypatch.setitem(sys.modules, "constructs", _module("constructs", Construct=object))
    monkeypatch.setattr(_Recorded, "calls", [])
    spec = importlib.util.spec_from_file_location("cdk_stack_under_test", CDK_STACK)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.PowertoolsExamplesStack(None, "Test", dist=ROOT)
    return _Recorded.calls


def _asset_artifact(code: Any) -> str:
    assert isinstance(code, _Recorded) and code.path == "aws_cdk.aws_lambda.Code.from_asset", code
    path = Path(code.args[0])
    assert path.is_file() and path.suffix == ".zip", path
    return path.relative_to(ROOT).as_posix()


def _runtime_name(runtime: Any) -> str:
    assert runtime.path == "aws_cdk.aws_lambda.Runtime", runtime
    assert runtime.args[1].path == "aws_cdk.aws_lambda.RuntimeFamily.PYTHON"
    return runtime.args[0]


def _architecture_name(architecture: Any) -> str:
    return {
        "aws_cdk.aws_lambda.Architecture.X86_64": "x86_64",
        "aws_cdk.aws_lambda.Architecture.ARM_64": "arm64",
    }[architecture.path]


def test_cdk_stack_builds_from_the_manifests(cdk_calls: List[_Recorded]) -> None:
    by_artifact = manifests_by_artifact()
    layer_artifact = {}
    for call in cdk_calls:
        if call.path == "aws_cdk.aws_lambda.LayerVersion":
            artifact = _asset_artifact(call.kwargs["code"])
            manifest = by_artifact[artifact]
            assert manifest["kind"] == "layer"
            assert [_runtime_name(r) for r in call.kwargs["compatible_runtimes"]] == [
                manifest["runtime"]
            ]
            assert [
                _architecture_name(a) for a in call.kwargs["compatible_architectures"]
            ] == manifest["architectures"]
            layer_artifact[id(call)] = artifact
    assert sorted(layer_artifact.values()) == sorted(
        load_manifest(n)["artifact"] for n in LAYER_MANIFESTS
    )

    public_arns = {
        id(call): call.args[2]
        for call in cdk_calls
        if call.path == "aws_cdk.aws_lambda.LayerVersion.from_layer_version_arn"
    }
    functions = [call for call in cdk_calls if call.path == "aws_cdk.aws_lambda.Function"]
    seen = set()
    for call in functions:
        artifact = _asset_artifact(call.kwargs["code"])
        manifest = by_artifact[artifact]
        assert manifest["kind"] == "function"
        assert call.kwargs["handler"] == manifest["handler"]
        assert _runtime_name(call.kwargs["runtime"]) == manifest["runtime"]
        assert [_architecture_name(call.kwargs["architecture"])] == manifest["architectures"]
        assert call.kwargs["environment"] == manifest["environment"]
        layers = []
        for layer in call.kwargs["layers"]:
            if id(layer) in public_arns:
                layers.append(("arn", public_layer_arn(public_arns[id(layer)], REGION_TOKEN)))
            else:
                layers.append(("artifact", layer_artifact[id(layer)]))
        expected = [
            ("arn", layer["arn"]) if "arn" in layer else ("artifact", layer["artifact"])
            for layer in manifest["layers"]
        ]
        assert layers == expected, artifact
        seen.add(artifact)
    assert seen == {load_manifest(name)["artifact"] for name in FUNCTION_MANIFESTS}
