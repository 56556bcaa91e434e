"""Stopping the pantsd of a scratch repository that a test ran real Pants in."""

from __future__ import annotations

import os
import signal
from pathlib import Path


def stop_pantsd(repo: Path) -> None:
    """Pants 2.17 has no goal that stops pantsd (`kill-pantsd` only runs without it), so the
    daemon is signalled through its pid file."""
    for pid_file in repo.glob(".pids/*/pantsd/pid"):
        try:
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        except (ValueError, ProcessLookupError):
            pass
