"""Regenerates the committed Lambda platform lockfiles of this folder; skipped unless asked.

    PANTS_POWERTOOLS_REGENERATE_TEST_LOCKS=$PWD/pants-plugins/pants_powertools/test_data \
      ./pants test pants-plugins/pants_powertools/test_data/regenerate_test.py

The locks are made by the plugin's own `generate-lockfiles` rules (the same code path as
`pants generate-lockfiles`), for the union of the requirements and Lambda platforms that the
packaging tests use. Add a requirement or platform here when a test needs one: the tests fail
with the plugin's stale-lock error naming what is missing.
"""

from __future__ import annotations

import os
import shutil
from textwrap import dedent

import pytest
from pants.core.goals.generate_lockfiles import GenerateLockfileResult, UserGenerateLockfiles
from pants.testutil.rule_runner import QueryRule

from pants_powertools import platform_lockfiles
from pants_powertools.goals.lockfile import (
    GenerateLambdaPlatformLockfile,
    RequestedLambdaPlatformResolveNames,
)
from pants_powertools.rule_runner_support import make_rule_runner

OUT = os.environ.get("PANTS_POWERTOOLS_REGENERATE_TEST_LOCKS")
RESOLVES = {"pkg": "3rdparty/pkg.lock", "other": "3rdparty/other.lock", "pt": "3rdparty/pt.lock"}


def fn(name, runtime, arch, deps, resolve):
    return dedent(
        f"""\
        python_aws_lambda_powertools(name={name!r}, handler="app.py:handler", runtime={runtime!r},
            architecture={arch!r}, dependencies={deps!r}, resolve={resolve!r})
        """
    )


PT = "aws-lambda-powertools"
FILES = {
    "3rdparty/BUILD": dedent(
        f"""\
        python_requirement(name="typing-extensions", requirements=["typing-extensions==4.12.2"])
        python_requirement(name="tomli", requirements=["tomli==2.0.1"])
        python_requirement(name="jmespath", requirements=["jmespath==1.0.1"])
        python_requirement(name="powertools", requirements=["{PT}==3.37.0"])
        python_requirement(name="old-typing-extensions", requirements=["typing-extensions==4.11.0"],
            resolve="other")
        python_requirement(name="pt", requirements=["{PT}==3.37.0"], resolve="pt")
        python_requirement(name="pt-tracer", requirements=["{PT}[tracer]==3.37.0"], resolve="pt")
        python_requirement(name="pt-parser", requirements=["{PT}[parser]==3.37.0"], resolve="pt")
        python_requirement(name="pt-validation", requirements=["{PT}[validation]==3.37.0"],
            resolve="pt")
        """
    ),
    **{
        f"src/{r}/app.py": "def handler(event, context):\n    return {}\n"
        for r in ("pkg", "other", "pt")
    },
    "src/pkg/BUILD": "python_sources(resolve='pkg')\n"
    + fn(
        "pkg312",
        "python3.12",
        "x86_64",
        [
            "3rdparty:typing-extensions",
            "3rdparty:tomli",
            "3rdparty:jmespath",
            "3rdparty:powertools",
        ],
        "pkg",
    )
    + fn("pkg312arm", "python3.12", "arm64", ["3rdparty:tomli"], "pkg")
    + fn("pkg314", "python3.14", "x86_64", ["3rdparty:tomli"], "pkg"),
    "src/other/BUILD": "python_sources(resolve='other')\n"
    + fn("fn", "python3.12", "x86_64", ["3rdparty:old-typing-extensions"], "other"),
    "src/pt/BUILD": "python_sources(resolve='pt')\n"
    + fn(
        "fn",
        "python3.12",
        "x86_64",
        ["3rdparty:pt", "3rdparty:pt-tracer", "3rdparty:pt-parser", "3rdparty:pt-validation"],
        "pt",
    ),
}


@pytest.mark.skipif(not OUT, reason="Set PANTS_POWERTOOLS_REGENERATE_TEST_LOCKS to regenerate.")
def test_regenerate_locks() -> None:
    assert OUT and os.path.isabs(OUT), OUT
    runner = make_rule_runner(
        [
            QueryRule(UserGenerateLockfiles, [RequestedLambdaPlatformResolveNames]),
            QueryRule(GenerateLockfileResult, [GenerateLambdaPlatformLockfile]),
        ],
        RESOLVES,
        default_resolve="pkg",
        source_roots=["/src"],
    )
    runner.write_files(FILES)
    for resolve in RESOLVES:
        requests = runner.request(
            UserGenerateLockfiles,
            [
                RequestedLambdaPlatformResolveNames(
                    [platform_lockfiles.platform_resolve_name(resolve)]
                )
            ],
        )
        assert len(requests) == 1
        result = runner.request(GenerateLockfileResult, [requests[0]])
        runner.write_digest(result.digest)
    for root, _, names in os.walk(os.path.join(runner.build_root, "3rdparty")):
        for name in names:
            if name.endswith(".lambda-platforms.lock"):
                shutil.copy(os.path.join(root, name), OUT)
