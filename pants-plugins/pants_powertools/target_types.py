"""The `python_aws_lambda_powertools` and `powertools_layer` targets and their fields."""

from __future__ import annotations

import posixpath
from typing import Iterable, Optional, Tuple

from pants.backend.python.target_types import PexCompletePlatformsField, PythonResolveField
from pants.backend.python.util_rules.faas import PythonFaaSDependencies, PythonFaaSHandlerField
from pants.core.goals.package import OutputPathField
from pants.engine.addresses import Address
from pants.engine.target import (
    COMMON_TARGET_FIELDS,
    Dependencies,
    IntField,
    InvalidFieldException,
    SpecialCasedDependencies,
    StringField,
    StringSequenceField,
    Target,
    TriBoolField,
)
from pants.util.strutil import help_text

from pants_powertools import handlers
from pants_powertools.runtimes import (
    ARCHITECTURE_NAMES,
    RUNTIME_NAMES,
    UnknownArchitectureError,
    UnknownRuntimeError,
    get_architecture,
    get_runtime,
)
from pants_powertools.subsystem import PowertoolsSubsystem

REEXPORTED_HANDLER_MODULE = handlers.REEXPORT_MODULE
REEXPORTED_HANDLER_FUNC = handlers.REEXPORT_FUNC

_RUNTIMES_HELP = ", ".join(f"`{name}`" for name in RUNTIME_NAMES)
_ARCHITECTURES_HELP = ", ".join(f"`{name}`" for name in ARCHITECTURE_NAMES)


def _invalid(field_alias: str, address: Address, problem: str) -> InvalidFieldException:
    return InvalidFieldException(
        f"The `{field_alias}` field of the target {address} is invalid: {problem}"
    )


def _validate_output_path(target: Target) -> None:
    """`output_path` is relative to dist/; an absolute one or one that climbs out of it would
    otherwise fail deep in the engine."""
    value = target[OutputPathField].value
    if value is None:
        return
    if value.startswith("/") or posixpath.normpath(value).split("/")[0] == "..":
        raise _invalid(
            OutputPathField.alias,
            target.address,
            f"{value!r} is not inside dist/. Write a path relative to dist/, like "
            f"'{posixpath.basename(value) or 'lambda.zip'}' or 'lambdas/orders.zip'.",
        )


def _validated_runtime(alias: str, value: str, address: Address) -> str:
    try:
        get_runtime(value)
    except UnknownRuntimeError as e:
        raise _invalid(alias, address, str(e))
    return value


def _validated_architecture(alias: str, value: str, address: Address) -> str:
    try:
        get_architecture(value)
    except UnknownArchitectureError as e:
        raise _invalid(alias, address, str(e))
    return value


class PowertoolsHandlerField(PythonFaaSHandlerField):
    # Subclasses the generic FaaS field, not `PythonAwsLambdaHandlerField`: Pants' own
    # `python_awslambda` packager would otherwise match these targets too and package them twice.
    reexported_handler_module = REEXPORTED_HANDLER_MODULE

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> str:
        value = super().compute_value(raw_value, address)
        assert value is not None
        try:
            handlers.validate_handler_spec(str(address), value)
        except handlers.HandlerError as e:
            raise InvalidFieldException(str(e))
        return value

    help = help_text(
        f"""
        Entry point to the Lambda handler: a file name relative to this BUILD file, like
        `'app.py:lambda_handler'`, or a module path, like `'orders.app:lambda_handler'`.

        The function ZIP re-exports it as `{REEXPORTED_HANDLER_MODULE}.{REEXPORTED_HANDLER_FUNC}`,
        the handler to configure in AWS (SAM `Handler`, CDK `handler`, Terraform `handler`); it
        stays importable under its own module path too. The module and function are checked when
        packaging.
        """
    )


class PowertoolsFunctionDependencies(PythonFaaSDependencies):
    pass


class PowertoolsRuntimeField(StringField):
    alias = "runtime"
    required = True
    value: str
    help = help_text(
        f"""
        The AWS Lambda Python runtime to build for: one of {_RUNTIMES_HELP}.

        It fixes the CPython version and, through the runtime's Amazon Linux release, the newest
        glibc (manylinux level) that wheels may need: Amazon Linux 2 (glibc 2.26) for python3.9 to
        python3.11, Amazon Linux 2023 (glibc 2.34) for python3.12 and later. Building for a runtime
        that AWS has deprecated warns.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> str:
        value = super().compute_value(raw_value, address)
        assert value is not None
        return _validated_runtime(cls.alias, value, address)


class PowertoolsArchitectureField(StringField):
    alias = "architecture"
    default = "x86_64"
    value: str
    help = help_text(
        f"""
        The instruction set the function runs on: one of {_ARCHITECTURES_HELP} (AWS's names;
        `x86_64` is AWS's default). Native wheels are chosen for it, whatever machine builds the
        ZIP.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> str:
        value = super().compute_value(raw_value, address)
        assert value is not None
        return _validated_architecture(cls.alias, value, address)


class PowertoolsLayerArchitecturesField(StringSequenceField):
    alias = "architectures"
    default = ("x86_64",)
    value: Tuple[str, ...]
    help = help_text(
        f"""
        The instruction sets to build the layer for, each one of {_ARCHITECTURES_HELP}. One layer
        ZIP is written per architecture, since native wheels differ between them.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[Iterable[str]], address: Address) -> Tuple[str, ...]:
        value = super().compute_value(raw_value, address)
        assert value is not None
        if not value:
            raise _invalid(
                cls.alias, address, f"it is empty; list at least one of {_ARCHITECTURES_HELP}."
            )
        if len(set(value)) != len(value):
            raise _invalid(cls.alias, address, f"it lists an architecture twice: {list(value)}.")
        return tuple(_validated_architecture(cls.alias, arch, address) for arch in value)


class PowertoolsLayersField(SpecialCasedDependencies):
    alias = "layers"
    help = help_text(
        """
        Addresses of `powertools_layer` targets this function runs on, in the order Lambda
        should apply them (at most 5, as Lambda allows).

        The distributions that these layers provide are left out of the function ZIP, so the ZIP
        carries only first-party code and what the layers lack. Each layer must be built for the
        function's runtime and architecture, and must not provide a distribution at another
        version than the function resolves.
        """
    )


class PowertoolsLayerDependencies(Dependencies):
    help = help_text(
        """
        The requirements (and any first-party code) to put in the layer, for example
        `['3rdparty/python:reqs#aws-lambda-powertools']`. Everything lands under `python/`.
        """
    )


class ExcludeRuntimeProvidedField(TriBoolField):
    alias = "exclude_runtime_provided"
    help = help_text(
        """
        Whether to leave out the distributions that the Lambda runtime already provides (the set
        in `[powertools].runtime_provided`: by default boto3, botocore, s3transfer, jmespath,
        python-dateutil, six and urllib3, like the official Powertools layer).

        Unset means `[powertools].exclude_runtime_provided`. Set it to `False` to pin your own
        boto3 inside this artifact.
        """
    )

    def value_or_global_default(self, subsystem: PowertoolsSubsystem) -> bool:
        """The field when set, else `[powertools].exclude_runtime_provided`."""
        return subsystem.exclude_runtime_provided if self.value is None else self.value


class CompileBytecodeField(TriBoolField):
    alias = "compile_bytecode"
    help = help_text(
        """
        Whether to ship precompiled bytecode (hash-based `.pyc`, PEP 552 `unchecked-hash`) for a
        faster cold start. It is compiled by a CPython of the runtime's minor version found on
        the building machine; packaging fails if there is none. Third-party modules are compiled
        without the column positions that only place the `^^^^` markers of a traceback (CPython
        3.11+, `-X no_debug_ranges`: ~18% of their zipped bytecode); their tracebacks keep file,
        line and source line, and first-party code keeps the markers.

        Unset means `[powertools].compile_bytecode`.
        """
    )

    def value_or_global_default(self, subsystem: PowertoolsSubsystem) -> bool:
        """The field when set, else `[powertools].compile_bytecode`."""
        return subsystem.compile_bytecode if self.value is None else self.value


class SlimField(TriBoolField):
    alias = "slim"
    help = help_text(
        """
        Whether to leave out of the ZIP what third-party distributions ship but Lambda never
        runs, to shrink it (a numpy 1.26 layer for python3.11: 21.5% smaller zipped):

        - test suites: `tests` directories inside a distribution's packages, `test` directories
          holding `test_*.py`, `*_test.py` or `conftest.py`, and `conftest.py` files, unless a
          module outside them imports them (so public helpers like `numpy.testing` and imported
          fixtures stay); with them, private compiled modules (`_name.*.so`) that only those
          tests import, when no kept module imports or names them and no kept compiled file
          holds their dotted name (numpy's `core/_simd`, `core/_rational_tests`);
        - type stubs: `.pyi` files and whole `*-stubs` packages;
        - C, C++ and Cython sources and headers (`.c`, `.h`, `.cpp`, `.hpp`, `.cc`, `.cxx`,
          `.hh`, `.hxx`, `.pyx`, `.pxd`, `.pxi`) and static libraries (`.a` archives), which
          only build other extensions;
        - docs: `.md` and `.rst` files and `docs`/`doc` directories inside packages;
        - symbols: the symbol tables and debug sections of the distributions' ELF shared objects,
          which the dynamic loader never reads, as `strip` would (a file goes unchanged unless
          every segment it loads is proven byte-identical afterwards). Native crash backtraces
          then show addresses instead of the library's internal function names.

        Licence and notice files, every `*.dist-info` directory (what `importlib.metadata` reads)
        and first-party code always stay, and no bytecode is compiled for what is left out. The
        manifest's `slimmed` lists what was left out per category, with file counts and unzipped
        bytes (for `symbols`: the files stripped and the bytes that took off). A library that
        reads its own headers or docs at run time (rare: some cffi ABI-mode bindings) needs
        `slim=False`. For a function, it applies to its third-party code.

        Unset means `[powertools].slim`.
        """
    )

    def value_or_global_default(self, subsystem: PowertoolsSubsystem) -> bool:
        """The field when set, else `[powertools].slim`."""
        return subsystem.slim if self.value is None else self.value


class PowertoolsServiceNameField(StringField):
    alias = "service_name"
    help = help_text(
        """
        The Powertools service name (`POWERTOOLS_SERVICE_NAME`): the `service` key of every log
        line, the metrics dimension and the tracer annotation. Written to the manifest's
        `environment` for the deployment tool to set on the function.
        """
    )


class PowertoolsMetricsNamespaceField(StringField):
    alias = "metrics_namespace"
    help = help_text(
        """
        The CloudWatch namespace of the function's Powertools metrics
        (`POWERTOOLS_METRICS_NAMESPACE`), written to the manifest's `environment`.
        """
    )


class PowertoolsLogLevelField(StringField):
    alias = "log_level"
    valid_choices = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
    help = help_text(
        """
        The Powertools Logger level (`POWERTOOLS_LOG_LEVEL`), written to the manifest's
        `environment`.
        """
    )


class PowertoolsTracingField(TriBoolField):
    alias = "tracing"
    help = help_text(
        """
        Whether Powertools Tracer sends traces to X-Ray: `False` writes
        `POWERTOOLS_TRACE_DISABLED=true` to the manifest's `environment`, `True` writes `false`.
        Unset leaves it to Powertools (on inside Lambda).
        """
    )


class PowertoolsPublicLayerVersionField(IntField):
    alias = "powertools_public_layer_version"
    help = help_text(
        """
        Run on AWS's public Powertools layer, at this layer version, instead of a built one.

        Powertools and every distribution its extras pull in are then left out of the function
        ZIP, and the manifest's `layers` starts with the layer's ARN for the function's runtime and
        architecture (`arn:aws:lambda:{region}:017000801446:layer:AWSLambdaPowertoolsPythonV3-
        python3XY-{arch}:{version}`, with `{region}` for the deployment tool to fill in). Cannot
        be combined with a layer in `layers` that also carries Powertools.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[int], address: Address) -> Optional[int]:
        value = super().compute_value(raw_value, address)
        if value is not None and value < 1:
            raise _invalid(
                cls.alias, address, f"a layer version is a positive number, not {value}."
            )
        return value


POWERTOOLS_SETTINGS_FIELDS = (
    PowertoolsServiceNameField,
    PowertoolsMetricsNamespaceField,
    PowertoolsLogLevelField,
    PowertoolsTracingField,
)


class PowertoolsCompletePlatformsField(PexCompletePlatformsField):
    help = help_text(
        f"""
        {PexCompletePlatformsField.help}

        Normally left empty: the plugin derives the exact complete platform from `runtime` and
        `architecture`. Name your own (a `file` target holding the JSON of `pex3 interpreter
        inspect --markers --tags` run on the target platform) to build for a platform that
        differs from Lambda's table, for example a custom runtime image. The platform lock then
        includes it.
        """
    )


class PythonAwsLambdaPowertools(Target):
    alias = "python_aws_lambda_powertools"
    core_fields = (
        *COMMON_TARGET_FIELDS,
        OutputPathField,
        PowertoolsFunctionDependencies,
        PowertoolsHandlerField,
        PowertoolsRuntimeField,
        PowertoolsArchitectureField,
        PowertoolsLayersField,
        PythonResolveField,
        ExcludeRuntimeProvidedField,
        CompileBytecodeField,
        SlimField,
        PowertoolsPublicLayerVersionField,
        PowertoolsCompletePlatformsField,
        *POWERTOOLS_SETTINGS_FIELDS,
    )
    help = help_text(
        f"""
        An AWS Lambda function built on Powertools for AWS Lambda (Python), packaged as a ZIP for
        one runtime and architecture.

        The ZIP holds your code, the handler re-exported as
        `{REEXPORTED_HANDLER_MODULE}.{REEXPORTED_HANDLER_FUNC}`, and the third-party
        distributions that its `layers` do not provide, built from wheels for the exact Lambda
        platform. A JSON manifest (`.lambda.json`) is written next to it for SAM, CDK or
        Terraform.
        """
    )

    def validate(self) -> None:
        _validate_output_path(self)
        platforms = self[PowertoolsCompletePlatformsField].value or ()
        if len(platforms) > 1:
            raise _invalid(
                PowertoolsCompletePlatformsField.alias,
                self.address,
                f"it names {len(platforms)} files, but a Lambda function runs on exactly one "
                "platform. Name one file.",
            )


class PowertoolsLayer(Target):
    alias = "powertools_layer"
    core_fields = (
        *COMMON_TARGET_FIELDS,
        OutputPathField,
        PowertoolsLayerDependencies,
        PowertoolsRuntimeField,
        PowertoolsLayerArchitecturesField,
        PythonResolveField,
        ExcludeRuntimeProvidedField,
        CompileBytecodeField,
        SlimField,
    )
    help = help_text(
        """
        An AWS Lambda layer of Python distributions (typically Powertools and its extras), one ZIP
        per architecture with everything under `python/`, as Lambda expects.

        Functions name it in their `layers` field and then leave out what it provides.
        """
    )

    def validate(self) -> None:
        _validate_output_path(self)


def target_types() -> Tuple[type, ...]:
    return (PythonAwsLambdaPowertools, PowertoolsLayer)
