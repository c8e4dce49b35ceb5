"""The ``compactrig`` command line as a user runs it: the installed console script, in its own process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support import REPO


def compactrig_command(*args: str) -> list[str]:
    """The command line that runs ``compactrig ARGS``: the installed script, else ``python -m``."""
    script = Path(sys.executable).with_name("compactrig")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "compactrig.cli"]
    return [*command, *args]


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the installed ``compactrig`` console script as a user would."""
    return subprocess.run(compactrig_command(*args), capture_output=True, text=True, cwd=cwd or REPO,
                          timeout=timeout)
