"""Tests for the Powertools extras check: parsing, the check itself, and the table vs. the wheel.

The unit tests use METADATA text written here. The wheel tests install the real
aws-lambda-powertools 3.37.0 from PyPI into CPython 3.12 venvs, with and without each extra,
and prove every `EXTRA_RULES` row by running code that uses it, and that the static check agrees
with what actually happens.
"""

import glob
import json
import os
import shutil
import subprocess
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, FrozenSet, Iterable, Iterator, List, Mapping, Optional, Set, Tuple

import pytest

from pants_powertools.powertools_extras import (
    EXTRA_RULES,
    ExtraRule,
    MissingPowertoolsExtraError,
    check_extras,
    extras_requirements,
    find_missing_extras,
    powertools_imports,
    rules_for,
    suggested_requirement,
)

POWERTOOLS_VERSION = "3.37.0"

# The extras lines of aws-lambda-powertools 3.37.0's METADATA (abridged) plus the oddities the
# parser must cope with: reversed markers, `or`, non-normalized names, a non-extra marker.
METADATA = textwrap.dedent(
    """\
    Metadata-Version: 2.5
    Name: aws_lambda_powertools
    Version: 3.37.0
    Requires-Python: <4.0.0,>=3.10
    Requires-Dist: jmespath<2.0.0,>=1.0.1
    Requires-Dist: typing-extensions<5.0.0,>=4.11.0
    Provides-Extra: all
    Requires-Dist: aws-xray-sdk<3.0.0,>=2.8.0; extra == 'all'
    Requires-Dist: pydantic<3.0.0,>=2.4.0; extra == 'all'
    Provides-Extra: aws-sdk
    Requires-Dist: boto3<2.0.0,>=1.34.32; extra == 'aws-sdk'
    Provides-Extra: datamasking
    Requires-Dist: aws-encryption-sdk<5.0.0,>=4.0.5; extra == 'datamasking'
    Requires-Dist: jsonpath-ng<2.0.0,>=1.6.0; extra == 'datamasking'
    Provides-Extra: parser
    Requires-Dist: pydantic<3.0.0,>=2.4.0; extra == 'parser'
    Provides-Extra: redis
    Requires-Dist: redis<9.0,>=4.4; extra == 'redis'
    Provides-Extra: tracer
    Requires-Dist: aws_xray_sdk<3.0.0,>=2.8.0; extra == "tracer"
    Provides-Extra: validation
    Requires-Dist: FastJsonSchema<3.0.0,>=2.14.5; "validation" == extra
    Provides-Extra: Kafka_Consumer.Avro
    Requires-Dist: avro<2.0.0,>=1.12.0; extra == 'kafka-consumer-avro' or extra == "all"
    Provides-Extra: empty
    Provides-Extra: markers
    Requires-Dist: tomli>=1; python_version < "3.11" and extra == 'markers'
    Description-Content-Type: text/markdown

    Requires-Dist: not-a-header; extra == 'tracer'
    """
)

LAMBDA_RUNTIME = (
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "python-dateutil",
    "six",
    "urllib3",
)
BASE = ("aws-lambda-powertools", "jmespath", "typing-extensions")


# ---------------------------------------------------------------------------------------------
# extras_requirements


def test_extras_requirements_reads_extras_from_metadata() -> None:
    extras = extras_requirements(METADATA)
    assert extras["tracer"] == ["aws-xray-sdk"]
    assert extras["parser"] == ["pydantic"]
    assert extras["datamasking"] == ["aws-encryption-sdk", "jsonpath-ng"]
    assert extras["aws-sdk"] == ["boto3"]
    # `"validation" == extra` and a non-normalized name; a python_version marker is kept as needed.
    assert extras["validation"] == ["fastjsonschema"]
    assert extras["markers"] == ["tomli"]
    # `or` markers count for every extra they name; Provides-Extra names are normalized.
    assert extras["kafka-consumer-avro"] == ["avro"]
    assert extras["all"] == ["avro", "aws-xray-sdk", "pydantic"]
    # Declared without requirements: present, empty.
    assert extras["empty"] == []
    # Base requirements are not an extra, and the description body is not metadata.
    assert all("jmespath" not in names for names in extras.values())
    assert "not-a-header" not in extras["tracer"]


def test_extras_requirements_without_extras() -> None:
    assert extras_requirements("Metadata-Version: 2.1\nName: x\nRequires-Dist: six\n") == {}


# ---------------------------------------------------------------------------------------------
# powertools_imports


def test_powertools_imports_resolves_root_reexports_and_forms() -> None:
    source = textwrap.dedent(
        """\
        import json
        import aws_lambda_powertools
        import aws_lambda_powertools.utilities.parser as parser_mod, os
        from aws_lambda_powertools import Logger, Metrics, Tracer as T
        from aws_lambda_powertools.utilities import (
            validation,
            data_masking as dm,
        )
        from aws_lambda_powertools.utilities.parser import *
        from . import aws_lambda_powertools as relative
        from aws_lambda_powertools_extra import something
        """
    )
    assert powertools_imports(source, "app.py") == [
        ("aws_lambda_powertools", 2, "import"),
        ("aws_lambda_powertools.utilities.parser", 3, "import"),
        ("aws_lambda_powertools.Logger", 4, "from"),
        ("aws_lambda_powertools.Metrics", 4, "from"),
        ("aws_lambda_powertools.Tracer", 4, "from"),
        ("aws_lambda_powertools.utilities.data_masking", 5, "from"),
        ("aws_lambda_powertools.utilities.validation", 5, "from"),
        ("aws_lambda_powertools.utilities.parser.*", 9, "from"),
    ]


def test_powertools_imports_follows_attributes_of_imported_names() -> None:
    source = textwrap.dedent(
        """\
        def handler(event, context):
            return pt.Tracer().capture_lambda_handler, utilities.parser.parse

        import aws_lambda_powertools as pt
        from aws_lambda_powertools import utilities
        """
    )
    assert powertools_imports(source, "app.py") == [
        ("aws_lambda_powertools.Tracer", 2, "attribute"),
        ("aws_lambda_powertools.utilities.parser.parse", 2, "attribute"),
        ("aws_lambda_powertools", 4, "import"),
        ("aws_lambda_powertools.utilities", 5, "from"),
    ]


def test_powertools_imports_marks_type_checking_imports() -> None:
    source = textwrap.dedent(
        """\
        import typing
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            from aws_lambda_powertools.utilities.parser import BaseModel
        if typing.TYPE_CHECKING:
            import aws_lambda_powertools.utilities.validation as v
        else:
            from aws_lambda_powertools import Logger
        x: v.Thing
        """
    )
    assert powertools_imports(source, "app.py") == [
        ("aws_lambda_powertools.utilities.parser.BaseModel", 4, "type-checking"),
        ("aws_lambda_powertools.utilities.validation", 6, "type-checking"),
        ("aws_lambda_powertools.Logger", 8, "from"),
    ]


def test_powertools_imports_detects_lazy_import_triggers() -> None:
    source = textwrap.dedent(
        """\
        from aws_lambda_powertools.event_handler import APIGatewayRestResolver
        from aws_lambda_powertools.utilities.kafka import SchemaConfig

        app = APIGatewayRestResolver(
            cors=None,
            enable_validation=True,
        )
        other = APIGatewayRestResolver(enable_validation=False)
        app.enable_swagger(path="/swagger")
        config = SchemaConfig(value_schema_type="AVRO", value_schema="{}", key_schema_type="JSON")
        """
    )
    assert powertools_imports(source, "app.py") == [
        ("aws_lambda_powertools.event_handler.APIGatewayRestResolver", 1, "from"),
        ("aws_lambda_powertools.utilities.kafka.SchemaConfig", 2, "from"),
        ("enable_validation=True", 6, "keyword"),
        ("enable_swagger()", 9, "call"),
        ("value_schema_type='AVRO'", 10, "keyword"),
    ]


def test_powertools_imports_ignores_triggers_in_files_without_powertools() -> None:
    source = "app = Resolver(enable_validation=True)\napp.enable_swagger()\n"
    assert powertools_imports(source, "other.py") == []


def test_powertools_imports_falls_back_to_tokens_on_unparsable_source() -> None:
    # `print "x"` is a SyntaxError on every Python 3; the token scan still finds everything.
    source = textwrap.dedent(
        """\
        import os, aws_lambda_powertools.utilities.validation as v
        from aws_lambda_powertools import (Logger,
            Tracer as T)
        from aws_lambda_powertools.event_handler import APIGatewayRestResolver; import sys
        app = APIGatewayRestResolver(enable_validation=True)
        SchemaConfig(key_schema_type="PROTOBUF", key_schema=x)
        app.enable_swagger()
        print "unparsable"
        """
    )
    assert powertools_imports(source, "app.py") == [
        ("aws_lambda_powertools.utilities.validation", 1, "import"),
        ("aws_lambda_powertools.Logger", 2, "from"),
        ("aws_lambda_powertools.Tracer", 2, "from"),
        ("aws_lambda_powertools.event_handler.APIGatewayRestResolver", 4, "from"),
        ("enable_validation=True", 5, "keyword"),
        ("key_schema_type='PROTOBUF'", 6, "keyword"),
        ("enable_swagger()", 7, "call"),
    ]


def test_rules_for_matches_every_enclosing_package() -> None:
    extras = {
        rule.extra
        for rule in rules_for("aws_lambda_powertools.utilities.idempotency.persistence.redis")
    }
    assert extras == {"aws-sdk", "redis"}
    assert rules_for("aws_lambda_powertools.Logger") == []
    assert rules_for("aws_lambda_powertools.utilities.parsers") == []
    assert [r.extra for r in rules_for("enable_validation=True")] == ["parser"]
    assert rules_for("enable_validation=True.x") == []


# ---------------------------------------------------------------------------------------------
# check_extras


FAILING_CASES = [
    # (source, line, feature, extra, missing distributions)
    (
        "import json\nfrom aws_lambda_powertools import Logger, Tracer\n",
        2,
        "Tracer",
        "tracer",
        "aws-xray-sdk",
    ),
    (
        "from aws_lambda_powertools.utilities.parser import event_parser\n",
        1,
        "Parser",
        "parser",
        "pydantic",
    ),
    (
        "from aws_lambda_powertools.event_handler import APIGatewayRestResolver\n\n"
        "app = APIGatewayRestResolver(enable_validation=True)\n",
        3,
        "Event handler data validation",
        "parser",
        "pydantic",
    ),
    (
        "from aws_lambda_powertools.utilities.validation import validator\n",
        1,
        "Validation",
        "validation",
        "fastjsonschema",
    ),
    (
        "\n\nfrom aws_lambda_powertools.utilities.data_masking import DataMasking\n",
        3,
        "Data masking",
        "datamasking",
        "aws-encryption-sdk, jsonpath-ng",
    ),
]


@pytest.mark.parametrize("source, line, feature, extra, missing", FAILING_CASES)
def test_check_extras_fails_without_the_extra(
    source: str, line: int, feature: str, extra: str, missing: str
) -> None:
    with pytest.raises(MissingPowertoolsExtraError) as error:
        check_extras(
            {"src/orders/app.py": source}, METADATA, BASE + LAMBDA_RUNTIME, "src/orders:orders"
        )
    message = str(error.value)
    assert message.startswith("src/orders:orders would fail at cold start with ImportError")
    assert f"src/orders/app.py:{line}: {feature} (" in message
    assert f"needs the Powertools extra `{extra}`" in message
    assert f"but {missing} {'are' if ',' in missing else 'is'} not in the function ZIP" in message
    assert f"Use `aws-lambda-powertools[{extra}]`" in message
    assert (
        f"requirement of the resolve this target uses to `aws-lambda-powertools[{extra}]`"
        in message
    )
    assert "pants generate-lockfiles" in message
    (problem,) = error.value.problems
    assert (problem.path, problem.line, problem.feature, problem.extra) == (
        "src/orders/app.py",
        line,
        feature,
        extra,
    )
    assert problem.missing_distributions == tuple(missing.split(", "))
    assert error.value.requirement == f"aws-lambda-powertools[{extra}]"


@pytest.mark.parametrize("source, line, feature, extra, missing", FAILING_CASES)
def test_check_extras_passes_with_the_extra(
    source: str, line: int, feature: str, extra: str, missing: str
) -> None:
    # Names as a ZIP's dist-info directories spell them: underscores, any case.
    present = [name.replace("-", "_").upper() for name in missing.split(", ")]
    check_extras(
        {"src/orders/app.py": source}, METADATA, list(BASE + LAMBDA_RUNTIME) + present, "t"
    )


def test_check_extras_partially_present_extra_still_fails() -> None:
    source = "from aws_lambda_powertools.utilities.data_masking import DataMasking\n"
    (problem,) = find_missing_extras({"a.py": source}, METADATA, ["jsonpath-ng"])
    assert problem.missing_distributions == ("aws-encryption-sdk",)


def test_check_extras_passes_for_features_without_extras() -> None:
    source = textwrap.dedent(
        """\
        from typing import TYPE_CHECKING
        from aws_lambda_powertools import Logger, Metrics
        from aws_lambda_powertools.event_handler import APIGatewayRestResolver
        from aws_lambda_powertools.utilities.batch import BatchProcessor
        from aws_lambda_powertools.utilities.parameters import get_parameter
        if TYPE_CHECKING:
            from aws_lambda_powertools.utilities.parser import BaseModel
        app = APIGatewayRestResolver(enable_validation=False)
        """
    )
    # boto3 for `parameters` comes from the Lambda runtime, which the caller passes.
    check_extras({"app.py": source}, METADATA, BASE + LAMBDA_RUNTIME, "t")
    with pytest.raises(
        MissingPowertoolsExtraError, match=r"app.py:5: Parameters .* `aws-sdk`.* boto3 is not"
    ):
        check_extras({"app.py": source}, METADATA, BASE, "t")


def test_check_extras_reports_each_file_and_extra_once_and_merges_the_fix() -> None:
    files = {
        "src/b.py": "from aws_lambda_powertools.utilities.validation import validate\n",
        "src/a.py": textwrap.dedent(
            """\
            from aws_lambda_powertools import Tracer
            from aws_lambda_powertools.utilities.parser import parse
            from aws_lambda_powertools.utilities.parser.models import SqsModel
            tracer = Tracer()
            """
        ),
    }
    with pytest.raises(MissingPowertoolsExtraError) as error:
        check_extras(files, METADATA, BASE, "src:fn", declared_extras=["Aws_SDK"])
    assert [(p.path, p.line, p.extra) for p in error.value.problems] == [
        ("src/a.py", 1, "tracer"),
        ("src/a.py", 2, "parser"),
        ("src/b.py", 1, "validation"),
    ]
    assert error.value.requirement == "aws-lambda-powertools[aws-sdk,parser,tracer,validation]"
    assert "`aws-lambda-powertools[aws-sdk,parser,tracer,validation]`" in str(error.value)
    assert len(str(error.value).splitlines()) == 5


def test_check_extras_skips_extras_the_metadata_does_not_declare() -> None:
    source = "from aws_lambda_powertools.utilities.auth_alpha import JWTVerifier\n"
    check_extras({"app.py": source}, METADATA, BASE, "t")


def test_suggested_requirement_without_problems_keeps_declared_extras() -> None:
    assert suggested_requirement([], ["tracer", "parser"]) == "aws-lambda-powertools[parser,tracer]"


# ---------------------------------------------------------------------------------------------
# The table against the real wheel


AVRO_SCHEMA = '{"type": "record", "name": "R", "fields": [{"name": "a", "type": "string"}]}'


def _kafka_probe(side: str, schema_type: str, schema: str) -> str:
    """Code that reaches the deserializer the way `kafka_consumer` does on the first record."""
    return textwrap.dedent(
        f"""\
        from aws_lambda_powertools.utilities.kafka import SchemaConfig
        from aws_lambda_powertools.utilities.kafka.deserializer.deserializer import get_deserializer
        config = SchemaConfig({side}_schema_type={schema_type!r}, {side}_schema={schema})
        get_deserializer(config.{side}_schema_type, config.{side}_schema, None)
        """
    )


_REST = "from aws_lambda_powertools.event_handler import APIGatewayRestResolver\n"

# Code that uses each row the way a handler module does at cold start. A dotted row without an
# entry here is a module, probed with `import <row>`. Each probe is run for real and also fed to
# the static check, so the two must agree.
PROBES: Dict[str, str] = {
    "aws_lambda_powertools.Tracer": (
        "from aws_lambda_powertools import Tracer\ntracer = Tracer()\n"
    ),
    "aws_lambda_powertools.tracing": (
        "from aws_lambda_powertools.tracing import Tracer\ntracer = Tracer()\n"
    ),
    "enable_validation=True": _REST + "app = APIGatewayRestResolver(enable_validation=True)\n",
    "enable_swagger()": (
        _REST + "app = APIGatewayRestResolver()\napp.enable_swagger(path='/swagger')\n"
    ),
    "aws_lambda_powertools.event_handler.BedrockAgentResolver": (
        "from aws_lambda_powertools.event_handler import BedrockAgentResolver\n"
        "app = BedrockAgentResolver()\n"
    ),
    "aws_lambda_powertools.event_handler.bedrock_agent.BedrockAgentResolver": (
        "from aws_lambda_powertools.event_handler.bedrock_agent import BedrockAgentResolver\n"
        "app = BedrockAgentResolver()\n"
    ),
    "value_schema_type='AVRO'": _kafka_probe("value", "AVRO", repr(AVRO_SCHEMA)),
    "key_schema_type='AVRO'": _kafka_probe("key", "AVRO", repr(AVRO_SCHEMA)),
    "value_schema_type='PROTOBUF'": _kafka_probe("value", "PROTOBUF", "dict"),
    "key_schema_type='PROTOBUF'": _kafka_probe("key", "PROTOBUF", "dict"),
    "aws_lambda_powertools.utilities.auth_alpha.JWTVerifier": (
        "from aws_lambda_powertools.utilities.auth_alpha import JWTVerifier\n"
    ),
    "aws_lambda_powertools.utilities.auth_alpha.jwt.JWTVerifier": (
        "from aws_lambda_powertools.utilities.auth_alpha.jwt import JWTVerifier\n"
    ),
    "aws_lambda_powertools.utilities.auth_alpha.OAuth2Client": (
        "from aws_lambda_powertools.utilities.auth_alpha import OAuth2Client\n"
    ),
    "aws_lambda_powertools.utilities.auth_alpha.oauth2.OAuth2Client": (
        "from aws_lambda_powertools.utilities.auth_alpha.oauth2 import OAuth2Client\n"
    ),
}

# Features that must work with no extra at all, and that the check must leave alone.
NO_EXTRA_PROBE = textwrap.dedent(
    """\
    from aws_lambda_powertools import Logger, Metrics, single_metric
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
    from aws_lambda_powertools.utilities.data_classes import SQSEvent, event_source
    from aws_lambda_powertools.utilities.kafka import SchemaConfig, kafka_consumer
    from aws_lambda_powertools.utilities.circuit_breaker import circuit_breaker
    from aws_lambda_powertools.utilities.auth_alpha import AuthFailureReason
    from aws_lambda_powertools.utilities.auth_alpha.jwt import AuthErrorContext
    from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
    from aws_lambda_powertools.utilities.typing import LambdaContext
    logger = Logger(service="probe")
    metrics = Metrics(namespace="probe")
    app = APIGatewayRestResolver(enable_validation=False)
    config = SchemaConfig(value_schema_type="JSON")
    """
)


def _probe(rule: ExtraRule) -> str:
    return PROBES.get(rule.trigger) or f"import {rule.trigger}\n"


def _extras_needed(source: str) -> FrozenSet[str]:
    """What the static check thinks `source` needs: the venv that must make it work."""
    return frozenset(
        rule.extra
        for what, _, kind in powertools_imports(source, "probe.py")
        if kind != "type-checking"
        for rule in rules_for(what)
    )


def test_every_probe_is_a_table_row() -> None:
    assert set(PROBES) <= {rule.trigger for rule in EXTRA_RULES}
    for rule in EXTRA_RULES:
        assert rule.extra in _extras_needed(_probe(rule)), rule


# Runs in a venv: each snippet in a forked child, so one probe's imports cannot help another.
# The package root, which needs no extra (proven by NO_EXTRA_PROBE), is imported once up front.
_RUNNER = textwrap.dedent(
    """\
    import json, os, sys, traceback
    import aws_lambda_powertools
    results = []
    for snippet in json.load(sys.stdin):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            code, message = 0, ""
            try:
                exec(compile(snippet, "probe.py", "exec"), {"__name__": "probe"})
            except ImportError as error:
                code, message = 1, f"{type(error).__name__}: {error}"
            except BaseException:
                code, message = 2, traceback.format_exc()
            os.write(write_end, message.encode())
            os._exit(code)
        os.close(write_end)
        chunks = []
        while True:
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        os.close(read_end)
        _, status = os.waitpid(pid, 0)
        results.append([os.waitstatus_to_exitcode(status), b"".join(chunks).decode()])
    json.dump(results, sys.stdout)
    """
)

_INSTALLED = (
    "import importlib.metadata as m, json, sys\n"
    "json.dump(sorted(d.metadata['Name'] for d in m.distributions()), sys.stdout)\n"
)
_METADATA = (
    "import importlib.metadata as m, sys\n"
    "sys.stdout.write(m.distribution('aws-lambda-powertools').read_text('METADATA'))\n"
)


def _find_python312() -> Optional[str]:
    """A working CPython 3.12: PATH first (pyenv shims may not resolve), then pyenv's versions."""
    candidates: List[str] = []
    on_path = shutil.which("python3.12")
    if on_path:
        candidates.append(on_path)
    roots = [os.environ.get("PYENV_ROOT", "")]
    pyenv = shutil.which("pyenv")
    if pyenv:
        result = subprocess.run([pyenv, "root"], capture_output=True, text=True)
        roots.append(result.stdout.strip())
    roots.append(os.path.expanduser("~/.pyenv"))
    for root in filter(None, roots):
        candidates.extend(
            sorted(
                glob.glob(os.path.join(root, "versions", "3.12*", "bin", "python")), reverse=True
            )
        )
    for candidate in candidates:
        check = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
        )
        if check.returncode == 0 and check.stdout.strip() == "3.12":
            return candidate
    return None


class WheelEnvs:
    """Venvs with aws-lambda-powertools 3.37.0 and a given set of extras, and what runs in them."""

    def __init__(self, root: Path, python: str) -> None:
        self.root = root
        self.python = python
        self.env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
        self.env.pop("PYTHONPATH", None)
        self.venvs: Dict[FrozenSet[str], Path] = {}
        self.metadata = ""

    def _run(self, args: List[str], stdin: str = "") -> str:
        result = subprocess.run(args, input=stdin, capture_output=True, text=True, env=self.env)
        assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def _bin(self, extras: FrozenSet[str]) -> str:
        return str(self.venvs[extras] / "bin" / "python")

    def create(self, extra_sets: Set[FrozenSet[str]]) -> None:
        """Fetch and build every wheel once (the only network step), then install offline.

        One pip-equipped venv installs into pip-less ones (`pip --python`), without bytecode,
        in parallel: a dozen venvs with botocore and pydantic cost ~45 s of CPU this way,
        against ~90 s wall for one online `pip install` per venv.
        """
        base = self.root / "base"
        self._run([self.python, "-m", "venv", str(base)])
        pip = [str(base / "bin" / "python"), "-m", "pip"]
        wheels = self.root / "wheels"
        union = sorted(set().union(*extra_sets))
        self._run(pip + ["wheel", "-q", "-w", str(wheels), self._requirement(union)])
        offline = ["install", "-q", "--no-compile", "--no-index", "--find-links", str(wheels)]
        self._run(pip + offline + [self._requirement([])])
        self.venvs[frozenset()] = base
        self.metadata = self._run([self._bin(frozenset()), "-c", _METADATA])

        def install(extras: FrozenSet[str]) -> None:
            venv = self.root / "-".join(sorted(extras))
            self._run([self.python, "-m", "venv", "--without-pip", str(venv)])
            self._run(
                pip
                + ["--python", str(venv / "bin" / "python")]
                + offline
                + [self._requirement(extras)]
            )
            self.venvs[extras] = venv

        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(install, sorted(e for e in extra_sets if e)))

    @staticmethod
    def _requirement(extras: Iterable[str]) -> str:
        names = ",".join(sorted(extras))
        return f"aws-lambda-powertools{'[' + names + ']' if names else ''}=={POWERTOOLS_VERSION}"

    def installed(self, extras: FrozenSet[str]) -> List[str]:
        return json.loads(self._run([self._bin(extras), "-c", _INSTALLED]))

    def run(self, extras: FrozenSet[str], snippets: List[str]) -> List[Tuple[int, str]]:
        env = dict(self.env, AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1")
        result = subprocess.run(
            [self._bin(extras), "-c", _RUNNER],
            input=json.dumps(snippets),
            capture_output=True,
            text=True,
            env=env,
        )
        assert result.returncode == 0, result.stderr
        return [(code, message) for code, message in json.loads(result.stdout)]


class WheelResults:
    """Every probe's outcome in every venv it is judged in, computed once for the module."""

    def __init__(self, envs: WheelEnvs, plan: Mapping[FrozenSet[str], List[str]]) -> None:
        self.metadata = envs.metadata
        self.installed = {extras: envs.installed(extras) for extras in plan}
        self.outcomes: Dict[Tuple[FrozenSet[str], str], Tuple[int, str]] = {}
        with ThreadPoolExecutor(max_workers=4) as pool:
            runs = {
                extras: pool.submit(envs.run, extras, snippets) for extras, snippets in plan.items()
            }
        for extras, snippets in plan.items():
            for snippet, outcome in zip(snippets, runs[extras].result()):
                self.outcomes[(extras, snippet)] = outcome


def _judged_in(rule: ExtraRule) -> Tuple[FrozenSet[str], List[FrozenSet[str]]]:
    """The venv the probe must work in, and the venvs (without this row's extra) it must fail in."""
    needed = _extras_needed(_probe(rule))
    failing: List[FrozenSet[str]] = [frozenset()]
    if needed - {rule.extra}:
        failing.append(needed - {rule.extra})
    return needed, failing


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WheelResults]:
    python = _find_python312()
    if python is None:
        pytest.skip("no CPython 3.12 found on PATH or under pyenv")
    plan: Dict[FrozenSet[str], List[str]] = {frozenset(): [NO_EXTRA_PROBE]}
    for rule in EXTRA_RULES:
        needed, failing = _judged_in(rule)
        for extras in [needed] + failing:
            plan.setdefault(extras, []).append(_probe(rule))
    root = tmp_path_factory.mktemp("powertools-wheel")
    envs = WheelEnvs(root, python)
    envs.create(set(plan))
    yield WheelResults(envs, plan)
    shutil.rmtree(root, ignore_errors=True)


def test_real_metadata_declares_every_table_extra(wheel: WheelResults) -> None:
    extras = extras_requirements(wheel.metadata)
    assert {rule.extra for rule in EXTRA_RULES} <= set(extras)
    assert extras["tracer"] == ["aws-xray-sdk"]
    assert extras["parser"] == ["pydantic"]
    assert extras["validation"] == ["fastjsonschema"]
    assert extras["datamasking"] == ["aws-encryption-sdk", "jsonpath-ng"]
    assert extras["aws-sdk"] == ["boto3"]


def test_features_without_extras_work_in_the_bare_install(wheel: WheelResults) -> None:
    assert wheel.outcomes[(frozenset(), NO_EXTRA_PROBE)] == (0, "")
    assert (
        find_missing_extras(
            {"app.py": NO_EXTRA_PROBE}, wheel.metadata, wheel.installed[frozenset()]
        )
        == []
    )


@pytest.mark.parametrize("rule", EXTRA_RULES, ids=[rule.trigger for rule in EXTRA_RULES])
def test_table_row_against_real_wheel(wheel: WheelResults, rule: ExtraRule) -> None:
    probe = _probe(rule)
    needed, failing = _judged_in(rule)
    for extras in failing:
        code, message = wheel.outcomes[(extras, probe)]
        assert (
            code == 1
        ), f"expected ImportError with extras {sorted(extras)}, got {code}: {message}"
        problems = find_missing_extras({"app.py": probe}, wheel.metadata, wheel.installed[extras])
        assert rule.extra in {problem.extra for problem in problems}
    code, message = wheel.outcomes[(needed, probe)]
    assert code == 0, f"failed with extras {sorted(needed)}: {message}"
    assert find_missing_extras({"app.py": probe}, wheel.metadata, wheel.installed[needed]) == []
    # Tracer, the most common case, end to end through the error message.
    if rule.trigger == "aws_lambda_powertools.Tracer":
        with pytest.raises(
            MissingPowertoolsExtraError, match=r"app.py:1: Tracer .*`tracer`.*aws-xray-sdk"
        ):
            check_extras({"app.py": probe}, wheel.metadata, wheel.installed[frozenset()], "t")
