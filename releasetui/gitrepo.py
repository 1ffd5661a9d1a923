"""Running git on this machine, in one way: ``git -C DIR ...``, stdin closed, bounded, and None (never an
exception) when git is missing, times out or fails.  The source, diff, the file selection and the demo use it."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Optional, Union

TIMEOUT = 60.0


def run_git(directory: Union[str, Path], *args: str, timeout: float = TIMEOUT, text: bool = True,
            env: Optional[dict] = None) -> Optional[subprocess.CompletedProcess]:
    """The finished ``git -C directory args...`` (whatever its exit status), or None when it could not run."""
    try:
        return subprocess.run(["git", "-C", str(directory), *args], capture_output=True, text=text, timeout=timeout,
                              stdin=subprocess.DEVNULL, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return None


def git_text(directory: Union[str, Path], *args: str, timeout: float = TIMEOUT) -> Optional[str]:
    """What a successful git command printed (stripped), or None when it failed or could not run."""
    proc = run_git(directory, *args, timeout=timeout)
    return proc.stdout.strip() if proc is not None and proc.returncode == 0 else None
