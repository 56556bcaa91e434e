"""The ./pants launcher: its failure modes and concurrent cold starts, run for real."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

from tests.scratch_pantsd import stop_pantsd

REPO_FILES = Path(__file__).resolve().parent.parent
TOOLS = ("bash", "awk", "grep", "head", "tr", "cksum", "cut", "dirname", "env", "cat", "mkdir")


def _pants_toml() -> str:
    return (REPO_FILES / "pants.toml").read_text()


def _pex_pin() -> str:
    match = re.search(r'"v[0-9.]+\|linux_x86_64\|([0-9a-f]{64})\|(\d+)"', _pants_toml())
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
    """The repository's Pants version and [pex-cli] pin, and nothing else."""
    section = _pants_toml().split("[pex-cli]", 1)[1].split("\n[", 1)[0]
    version_match = re.search(r'^version\s*=\s*"([^"]+)"', section, flags=re.M)
    assert version_match, "pants.toml's [pex-cli] must pin a version"
    version = version_match.group(1)
    pins = re.findall(r'^\s*"' + re.escape(version) + r'\|[^"]+",?$', section, flags=re.M)
    assert pins, f"pants.toml's [pex-cli] has no known_versions line for {version}"
    return (
        '[GLOBAL]\npants_version = "2.17.1"\nbackend_packages = []\n\n'
        "[anonymous-telemetry]\nenabled = false\n\n"
        f'[pex-cli]\nversion = "{version}"\nknown_versions = [\n' + "\n".join(pins) + "\n]\n"
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
    """A CPython 3.9 to hand the launcher explicitly: the one running this test."""
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
    assert "runs here on CPython 3.9" in error
    assert "PANTS_BOOTSTRAP_PYTHON" in error and "pyenv install" in error
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_explicit_interpreter_that_does_not_fit(tmp_path: Path) -> None:
    repo = _scratch_repo(tmp_path, _minimal_pants_toml())
    env = _base_env(tmp_path)
    env["PANTS_BOOTSTRAP_PYTHON"] = str(tmp_path / "missing" / "python3.9")
    result = _run(repo, ["--version"], env)
    assert result.returncode == 1
    error = _single_error(result.stderr)
    assert "PANTS_BOOTSTRAP_PYTHON=" in error and "is not a working CPython 3.9" in error


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
        results = list(pool.map(lambda _: _run(repo, ["--no-pantsd", "--version"], env), range(2)))
    for result in results:
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().splitlines()[-1] == "2.17.1"
    # Exactly one of the two installed Pants; the other waited for it.
    installs = sum(r.stderr.count("installing pantsbuild.pants") for r in results)
    assert installs == 1
    # Warm: no bootstrap output at all.
    warm = _run(repo, ["--no-pantsd", "--version"], env)
    assert warm.returncode == 0 and "pants bootstrap" not in warm.stderr


# --- Native client: one scratch repository and one pantsd shared by the tests below. ---------

NATIVE = "pants launcher: using native client"
PYTHON = "pants launcher: using python client"


def _warm_cache() -> Path:
    return (
        Path(os.environ.get("HOME", "~")).expanduser() / ".cache" / "pants-powertools" / "bootstrap"
    )


@pytest.fixture(scope="module")
def daemon_repo(tmp_path_factory):
    """A scratch repository (three `target`s, no backends) run with the shared warm bootstrap."""
    root = tmp_path_factory.mktemp("native")
    repo = _scratch_repo(root, _minimal_pants_toml())
    (repo / "BUILD").write_text('target(name="a")\ntarget(name="b")\ntarget(name="c")\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("PANTS_")}
    env["PANTS_LAUNCHER_DEBUG"] = "1"
    env["PANTS_BOOTSTRAP_CACHE"] = str(_warm_cache())
    yield repo, env
    stop_pantsd(repo)


def _pantsd_pid(repo: Path) -> int:
    (pid_file,) = repo.glob(".pids/*/pantsd/pid")
    return int(pid_file.read_text())


def _exits(pid: int, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


def _listed(result: subprocess.CompletedProcess) -> List[str]:
    return result.stdout.split()


TARGETS = ["//:a", "//:b", "//:c"]


def test_python_client_first_then_native_with_same_results(daemon_repo) -> None:
    repo, env = daemon_repo
    first = _run(repo, ["list", "::"], env)
    assert first.returncode == 0, first.stderr
    assert PYTHON in first.stderr and NATIVE not in first.stderr
    assert _listed(first) == TARGETS  # stdout carries only the targets...
    pid = _pantsd_pid(repo)
    warm = _run(repo, ["list", "::"], env)
    assert warm.returncode == 0, warm.stderr
    assert NATIVE in warm.stderr
    assert _listed(warm) == TARGETS and "//:a" not in warm.stderr  # ...and stderr none of them
    # A failing goal: same exit code and streams through both clients.
    native_fail = _run(repo, ["list", "//:missing"], env)
    python_fail = _run(repo, ["list", "//:missing"], {**env, "PANTS_NATIVE_CLIENT": "0"})
    assert NATIVE in native_fail.stderr and PYTHON in python_fail.stderr
    assert native_fail.returncode == python_fail.returncode != 0
    assert native_fail.stdout == python_fail.stdout == ""
    assert "missing" in native_fail.stderr and "missing" in python_fail.stderr
    assert _pantsd_pid(repo) == pid


def test_python_client_when_pantsd_is_off_or_forced(daemon_repo) -> None:
    repo, env = daemon_repo
    _run(repo, ["--version"], env)  # make sure pantsd runs
    pid = _pantsd_pid(repo)
    cases: List[Tuple[Dict[str, str], List[str]]] = [
        ({}, ["--no-pantsd", "--version"]),
        ({"PANTS_PANTSD": "false"}, ["--version"]),
        ({"PANTS_NATIVE_CLIENT": "0"}, ["--version"]),
        ({"PANTS_NO_NATIVE_CLIENT": "1"}, ["--version"]),
    ]
    for extra_env, args in cases:
        result = _run(repo, args, {**env, **extra_env})
        assert result.returncode == 0, result.stderr
        assert PYTHON in result.stderr, (extra_env, args, result.stderr)
        assert result.stdout == "2.17.1\n"
    assert _pantsd_pid(repo) == pid


def test_daemon_sees_the_same_environment(daemon_repo) -> None:
    repo, env = daemon_repo
    env = {**env, "PANTS_TEST_TIMEOUT_DEFAULT": "77"}
    python = _run(repo, ["help-advanced", "test"], {**env, "PANTS_NATIVE_CLIENT": "0"})
    native = _run(repo, ["help-advanced", "test"], env)
    assert PYTHON in python.stderr and NATIVE in native.stderr, native.stderr
    assert python.returncode == native.returncode == 0
    assert "PANTS_TEST_TIMEOUT_DEFAULT" in native.stdout and "77" in native.stdout
    assert native.stdout == python.stdout


def test_two_commands_at_once(daemon_repo) -> None:
    repo, env = daemon_repo
    _run(repo, ["list", "::"], env)
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _: _run(repo, ["list", "::"], env, timeout=300), range(2)))
    for result in results:
        assert result.returncode == 0, result.stderr
        assert NATIVE in result.stderr
        assert _listed(result) == TARGETS


def test_ctrl_c_ends_the_run_and_pantsd_stays(daemon_repo) -> None:
    repo, env = daemon_repo
    assert NATIVE in _run(repo, ["list", "::"], env).stderr
    pid = _pantsd_pid(repo)
    proc = subprocess.Popen(
        ["bash", str(repo / "pants"), "--loop", "list", "::"],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "//:a"  # the run is under way
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert NATIVE in stderr
    assert proc.returncode != 0
    after = _run(repo, ["list", "::"], env)
    assert after.returncode == 0 and NATIVE in after.stderr
    assert _listed(after) == TARGETS
    assert _pantsd_pid(repo) == pid


def test_stale_daemon_is_restarted_not_used(daemon_repo) -> None:
    repo, env = daemon_repo
    assert NATIVE in _run(repo, ["list", "::"], env).stderr
    pid = _pantsd_pid(repo)
    # An option in pantsd's fingerprint: the Python client must restart pantsd.
    other = _run(repo, ["--level=warn", "list", "::"], env)
    assert other.returncode == 0 and PYTHON in other.stderr and "fingerprint" in other.stderr
    assert _pantsd_pid(repo) != pid
    back = _run(repo, ["list", "::"], env)
    assert back.returncode == 0 and PYTHON in back.stderr
    pid = _pantsd_pid(repo)
    # A pants.toml edit: pantsd restarts itself; never reached through the native client.
    config = repo / "pants.toml"
    config.write_text(config.read_text() + "\n# edited\n")
    edited = _run(repo, ["list", "::"], env)
    assert edited.returncode == 0 and PYTHON in edited.stderr, edited.stderr
    assert _listed(edited) == TARGETS
    # The edit changes no option, so that run may still have been served by the old daemon,
    # which then sees pants.toml change and exits by itself (with its pid file), or the client
    # may have replaced it at once: either way the old daemon goes.
    assert _exits(pid), f"pantsd {pid} still runs after pants.toml changed"
    # The next runs start (or find) a new daemon and reach it through the native client.
    _run(repo, ["list", "::"], env)
    again = _run(repo, ["list", "::"], env)
    assert again.returncode == 0 and NATIVE in again.stderr, again.stderr
    assert _pantsd_pid(repo) != pid


def test_python_client_when_the_native_client_cannot_run(tmp_path: Path, daemon_repo) -> None:
    repo, env = daemon_repo
    warm = _warm_cache()
    venvs = sorted(warm.glob("pants-2.17.1-py3.9-*/bin/pants"))
    pinned = re.search(r'^version = "(v[^"]+)"', _minimal_pants_toml(), flags=re.M)
    assert pinned
    pex = sorted(
        p
        for p in (warm / "pex-cli").glob(f"pex-{pinned.group(1)}-*")
        if not p.name.endswith(".lock")
    )
    if not venvs or not pex:
        pytest.skip("needs the warm bootstrap cache")
    real_venv = venvs[0].parent.parent
    python = subprocess.run(
        [str(real_venv / "bin" / "python"), "-c", "import sys; print(sys.executable)"],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    ).stdout.strip()
    key = subprocess.run(
        ["cksum"], input=python, stdout=subprocess.PIPE, text=True, check=True
    ).stdout.split()[0]
    cache = tmp_path / "cache"
    fake = cache / f"pants-2.17.1-py3.9-{key}"
    (fake / "lib" / "python3.9" / "site-packages" / "pants" / "bin").mkdir(parents=True)
    (fake / "bin").symlink_to(real_venv / "bin")
    (fake / ".bootstrapped").write_text("2.17.1\n")
    bogus = fake / "lib" / "python3.9" / "site-packages" / "pants" / "bin" / "native_client"
    bogus.write_text("not a program\n")
    (cache / "pex-cli").mkdir()
    (cache / "pex-cli" / pex[0].name).symlink_to(pex[0])
    env = {**env, "PANTS_BOOTSTRAP_CACHE": str(cache), "PANTS_BOOTSTRAP_PYTHON": python}
    _run(repo, ["--version"], {**env, "PANTS_BOOTSTRAP_CACHE": str(warm)})  # pantsd runs
    for _ in range(2):
        result = _run(repo, ["--version"], env)
        assert result.returncode == 0, result.stderr
        assert PYTHON in result.stderr and "native client is missing or cannot run" in result.stderr
        assert result.stdout == "2.17.1\n"
    assert list((cache / "native-client").glob("*.unusable"))
    assert not os.access(bogus, os.X_OK), "the venv itself is left alone"


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))
