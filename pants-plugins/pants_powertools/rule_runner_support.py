"""A RuleRunner set up like this repository's pants.toml, for the plugin's RuleRunner tests.

The tests run the real pex: the `[pex-cli]` pins are read from pants.toml (the `//:launcher`
files target ships it) and the CLI itself comes from the file ./pants built, whose location
reaches tests through `PANTS_PEX_CLI_URL_TEMPLATE` (`[test].extra_env_vars`).

Packaging tests do not lock at set-up: `write_test_locks` copies the committed Lambda platform
lockfiles of `test_data/` into the build root (installing from them still downloads the locked
wheels, which Pants' named caches keep).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Iterable, List, Mapping, Optional

from pants.backend.python import target_types_rules
from pants.backend.python.dependency_inference import rules as dependency_inference_rules
from pants.backend.python.target_types import (
    PythonRequirementTarget,
    PythonSourcesGeneratorTarget,
    PythonSourceTarget,
)
from pants.backend.python.util_rules import pex, python_sources
from pants.core.target_types import (
    FilesGeneratorTarget,
    FileTarget,
    ResourcesGeneratorTarget,
    ResourceTarget,
)
from pants.core.target_types import rules as core_target_types_rules
from pants.testutil.rule_runner import QueryRule, RuleRunner

from pants_powertools import platform_lockfiles, register

PANTS_TOML = Path(__file__).resolve().parents[2] / "pants.toml"
TEST_DATA = Path(__file__).resolve().parent / "test_data"


def read_test_data(name: str) -> bytes:
    """A committed fixture of `test_data/` (a `resources` target the test utils depend on)."""
    return (TEST_DATA / name).read_bytes()


def write_test_locks(runner: RuleRunner, resolves: Mapping[str, str]) -> None:
    """Put the committed `test_data/<resolve>.lambda-platforms.lock` of each resolve where the
    plugin looks for it, next to the resolve's (never written) universal lockfile.

    The locks were made by the plugin's own `generate-lockfiles` rules; a test whose targets need
    a requirement or platform that a lock lacks fails with the plugin's stale-lock error, naming
    what is missing: regenerate the lock then (see test_data/README.md).
    """
    runner.write_files(
        {
            platform_lockfiles.platform_lockfile_path(universal): read_test_data(
                f"{resolve}.lambda-platforms.lock"
            ).decode()
            for resolve, universal in resolves.items()
        }
    )


def rule_runner_store() -> str:
    """`~/.cache/pants-powertools/rule-runner-store` (or under `$XDG_CACHE_HOME`)."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "pants-powertools", "rule-runner-store")


def pex_cli_options() -> List[str]:
    """`[pex-cli]` exactly as pants.toml pins it."""
    section = PANTS_TOML.read_text().split("[pex-cli]", 1)[1].split("\n[", 1)[0]
    version = re.search(r'^version\s*=\s*"([^"]+)"', section, re.M)
    assert version, "pants.toml's [pex-cli] must pin a version"
    known_versions = re.findall(r'"(v[^"|]+\|[^"|]+\|[0-9a-f]{64}\|\d+)"', section)
    assert known_versions, "pants.toml's [pex-cli] must list known_versions"
    url_template = os.environ.get("PANTS_PEX_CLI_URL_TEMPLATE")
    assert url_template, (
        "PANTS_PEX_CLI_URL_TEMPLATE is unset: run these tests through ./pants, which builds the "
        "pex CLI from PyPI and exports it (see [test].extra_env_vars)."
    )
    return [
        f"--pex-cli-version={version.group(1)}",
        f"--pex-cli-known-versions={json.dumps(known_versions)}",
        f"--pex-cli-url-template={url_template}",
    ]


def options(
    resolves: Mapping[str, str],
    default_resolve: Optional[str] = None,
    source_roots: Iterable[str] = ("/",),
) -> List[str]:
    return [
        *pex_cli_options(),
        "--python-pip-version=latest",
        "--python-enable-resolves",
        # Requirement targets would otherwise depend on the resolves' universal lockfiles.
        "--python-enable-lockfile-targets=false",
        f"--python-resolves={json.dumps(dict(resolves))}",
        *([f"--python-default-resolve={default_resolve}"] if default_resolve else []),
        "--python-interpreter-constraints=['CPython>=3.9,<3.15']",
        "--python-bootstrap-search-path=['<PATH>', '<PYENV>']",
        "--python-infer-use-rust-parser",
        f"--source-root-patterns={json.dumps(list(source_roots))}",
    ]


def make_rule_runner(
    query_rules: Iterable[QueryRule],
    resolves: Mapping[str, str],
    default_resolve: Optional[str] = None,
    source_roots: Iterable[str] = ("/",),
    extra_options: Iterable[str] = (),
) -> RuleRunner:
    runner = RuleRunner(
        # A store (and so a process cache) of their own, kept between runs: a plugin edit reruns
        # the processes whose inputs it changes, as Pants' own RuleRunner tests do with the main
        # store, while the tests' processes never mix with the repository's builds. Rules always
        # run; only successful processes are reused, so an expected failure still happens.
        bootstrap_args=[f"--local-store-dir={rule_runner_store()}"],
        rules=[
            *register.rules(),
            *target_types_rules.rules(),
            *dependency_inference_rules.rules(),
            *python_sources.rules(),
            *pex.rules(),
            *core_target_types_rules(),
            *query_rules,
        ],
        target_types=[
            *register.target_types(),
            PythonRequirementTarget,
            PythonSourcesGeneratorTarget,
            PythonSourceTarget,
            ResourcesGeneratorTarget,
            ResourceTarget,
            FileTarget,
            FilesGeneratorTarget,
        ],
    )
    runner.set_options(
        [*options(resolves, default_resolve, source_roots), *extra_options],
        env_inherit={"PATH", "PYENV_ROOT", "HOME"},
    )
    return runner
