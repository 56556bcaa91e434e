"""The pex CLI venv's set-up script, run against a stand-in pex: made when missing, made again
when its interpreter is gone, left alone when it works."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pants_powertools.util_rules.third_party import _MAKE_PEX_CLI_VENV

# Stands in for `PEX_TOOLS=1 pex venv DIR`: a venv-like DIR with bin/python and bin/pex3.
_FAKE_PEX = """
import os, sys
assert os.environ.get("PEX_TOOLS") == "1", "the venv tool must be asked for"
assert sys.argv[1] == "venv", sys.argv
bin_dir = os.path.join(sys.argv[2], "bin")
os.makedirs(bin_dir)
os.symlink(sys.executable, os.path.join(bin_dir, "python"))
with open(os.path.join(bin_dir, "pex3"), "w") as f:
    f.write("made by run %s\\n" % os.environ["RUN"])
"""


def _make(tmp_path: Path, run: str) -> Path:
    fake = tmp_path / "fake-pex.py"
    fake.write_text(_FAKE_PEX)
    subprocess.run(
        [sys.executable, "-S", "-c", _MAKE_PEX_CLI_VENV, "cache", "key", str(fake)],
        cwd=tmp_path,
        env={"RUN": run, "PATH": os.environ.get("PATH", "")},
        check=True,
    )
    return tmp_path / "cache/key"


def test_the_venv_is_made_once_and_made_again_when_broken(tmp_path: Path) -> None:
    venv = _make(tmp_path, "1")
    assert (venv / "bin/pex3").read_text() == "made by run 1\n"
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["key"]  # no .tmp left

    _make(tmp_path, "2")
    assert (venv / "bin/pex3").read_text() == "made by run 1\n"  # it works: kept

    # Its interpreter is gone (e.g. pyenv removed that version): the link dangles.
    (venv / "bin/python").unlink()
    (venv / "bin/python").symlink_to(tmp_path / "no-such-python")
    _make(tmp_path, "3")
    assert (venv / "bin/pex3").read_text() == "made by run 3\n"
    assert (venv / "bin/python").exists()
