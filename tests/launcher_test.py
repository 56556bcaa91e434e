"""The ./pants launcher: its failure modes and concurrent cold starts, run for real."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional

import pytest

REPO_FILES = Path(__file__).resolve().parent.parent
TOOLS = ("bash", "awk", "grep", "head", "tr", "cksum", "cut", "dirname", "env", "cat", "mkdir")


def _pants_toml() -> str:
    return (REPO_FILES / "pants.toml").read_text()


def _pex_pin() -> str:
    match = re.search(r'"v2\.3\.3\|linux_x86_64\|([0-9a-f]{64})\|(\d+)"', _pants_toml())
    assert match, "pants.toml must pin the pex CLI"
    return match.group(1)


def _scratch_repo(tmp_path: Path, pants_toml: str) -> Path:
    """A repository holding only the launcher and a pants.toml (no plugins to load)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(REPO_FILES / "pants", repo / "pants")
    (repo / "pants.toml").write_text(pants_toml)
    return repo


def _minimal_pants_toml() -> str:
    pins = re.findall(r'^\s*"v2\.3\.3\|[^"]+",?$', _pants_toml(), flags=re.M)
    return (
        '[GLOBAL]\npants_version = "2.17.1"\nbackend_packages = []\n\n'
        '[anonymous-telemetry]\nenabled = false\n\n'
        '[pex-cli]\nversion = "v2.3.3"\nknown_versions = [\n' + "\n".join(pins) + "\n]\n"
    )


def _run(
    repo: Path, args: List[str], env: Dict[str, str], timeout: float = 600
) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(repo / "pants"), *args],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        timeout=timeout,
    )


def _base_env(tmp_path: Path, path: Optional[str] = None) -> Dict[str, str]:
    env = {
        "HOME": str(tmp_path / "home"),
        "PATH": path if path is not None else os.environ.get("PATH", "/usr/bin:/bin"),
        "PANTS_BOOTSTRAP_CACHE": str(tmp_path / "cache"),
    }
    for name in ("PYENV_ROOT", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CONFIG_FILE"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def _bootstrap_python() -> str:
    """A CPython 3.7-3.9 to hand the launcher explicitly: the one running this test."""
    assert (3, 7) <= sys.version_info[:2] <= (3, 9)
    return sys.executable


def _only_tools_path(tmp_path: Path) -> str:
    """A PATH with the launcher's shell tools and no Python at all."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found, f"{tool} is needed on PATH by the launcher"
        (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


def _single_error(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("pants bootstrap: error:")]
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr, stderr
    return errors[0]


def test_no_suitable_interpreter(tmp_path: Path) -> None:
    repo = _scratch_repo(tmp_path, _minimal_pants_toml())
    env = _base_env(tmp_path, path=_only_tools_path(tmp_path))
    env["PYENV_ROOT"] = str(tmp_path / "no-pyenv")
    result = _run(repo, ["--version"], env)
    assert result.returncode == 1
    error = _single_error(result.stderr)
    assert "CPython 3.7, 3.8 or 3.9" in error
    assert "PANTS_BOOTSTRAP_PYTHON" in error and "pyenv install" in error
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_explicit_interpreter_that_does_not_fit(tmp_path: Path) -> None:
    repo = _scratch_repo(tmp_path, _minimal_pants_toml())
    env = _base_env(tmp_path)
    env["PANTS_BOOTSTRAP_PYTHON"] = str(tmp_path / "missing" / "python3.9")
    result = _run(repo, ["--version"], env)
    assert result.returncode == 1
    error = _single_error(result.stderr)
    assert "PANTS_BOOTSTRAP_PYTHON=" in error and "is not a working CPython 3.7-3.9" in error


def test_missing_pants_version(tmp_path: Path) -> None:
    repo = _scratch_repo(tmp_path, _minimal_pants_toml().replace('pants_version = "2.17.1"\n', ""))
    result = _run(repo, ["--version"], _base_env(tmp_path))
    assert result.returncode == 1
    assert "pants_version" in _single_error(result.stderr)


def test_pex_cli_hash_mismatch(tmp_path: Path) -> None:
    wrong = "0" * 64
    repo = _scratch_repo(tmp_path, _minimal_pants_toml().replace(_pex_pin(), wrong))
    env = _base_env(tmp_path)
    env["PANTS_BOOTSTRAP_PYTHON"] = _bootstrap_python()
    for _ in range(2):  # The failure leaves nothing behind that a second run would trust.
        result = _run(repo, ["--version"], env)
        assert result.returncode == 1
        error = _single_error(result.stderr)
        assert f"pins sha256 {wrong}" in error
        assert f"has sha256 {_pex_pin()}" in error
        assert "known_versions" in error
    cache = tmp_path / "cache"
    kept = [p.name for p in (cache / "pex-cli").iterdir() if not p.name.endswith(".lock")]
    assert kept == [], "no unverified pex CLI (nor a temporary folder) may be kept"
    assert not list(cache.glob("pants-*/.bootstrapped")), "Pants must not be installed"


def test_concurrent_cold_starts_share_one_bootstrap(tmp_path: Path) -> None:
    repo = _scratch_repo(tmp_path, _minimal_pants_toml())
    env = _base_env(tmp_path)
    env["PANTS_BOOTSTRAP_PYTHON"] = _bootstrap_python()
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(
            pool.map(lambda _: _run(repo, ["--no-pantsd", "--version"], env), range(2))
        )
    for result in results:
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().splitlines()[-1] == "2.17.1"
    # Exactly one of the two installed Pants; the other waited for it.
    installs = sum(r.stderr.count("installing pantsbuild.pants") for r in results)
    assert installs == 1
    # Warm: no bootstrap output at all.
    warm = _run(repo, ["--no-pantsd", "--version"], env)
    assert warm.returncode == 0 and "pants bootstrap" not in warm.stderr


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))
