"""The child processes of `make run` (manage.py serve): started in their own session, so a Ctrl-C
reaches only serve, which then stops them one by one in the right order; and tied to serve's life
(Linux), so a serve that is killed outright takes none of them with it into the background."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

_PR_SET_PDEATHSIG = 1
# Looked up here, in the parent: between fork and exec the child only makes the call (no dlopen,
# whose lock another thread of the parent might hold).
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def die_with_parent() -> None:
    """preexec_fn: SIGTERM this child when the process that started it dies (Linux only)."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    stop_timeout: float = 10.0

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def terminate(self) -> None:
        """SIGTERM: Daphne, Celery and Redis all shut down cleanly on it."""
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)

    def wait_stopped(self) -> None:
        """Wait for it to exit after terminate(); past `stop_timeout`, SIGKILL its whole process
        group (a Celery worker's pool processes too)."""
        try:
            self.process.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        # Pool processes left behind by a worker that was stopped the hard way.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def stop(self) -> None:
        self.terminate()
        self.wait_stopped()


def spawn(name: str, argv: list[str], *, env: dict[str, str], cwd: Path, stop_timeout: float = 10.0) -> Child:
    """Start `argv` with serve's stdout and stderr, in a session of its own."""
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )
    return Child(name=name, process=process, stop_timeout=stop_timeout)
