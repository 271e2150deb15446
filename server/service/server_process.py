"""Run ``server/serve.py`` as a child process on an ephemeral loopback port (benchmarks, tests, scripts)."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

SERVE = Path(__file__).resolve().parents[1] / "serve.py"
_LISTENING = re.compile(r"listening on (tcp://[^\s]+)")


class ServerStartError(RuntimeError):
    """serve.py exited or did not report its endpoint in time; the message holds its log tail."""


class ServerProcess:
    """A ``serve.py`` child; its log goes to ``log_path`` (keep the log level at INFO or below:
    the endpoint is read from its "listening on" line)."""

    def __init__(self, data_dir: Path, *args: str, bind: str = "tcp://127.0.0.1:*", device: str | None = "cpu",
                 timeout: float = 180.0):
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / f"serve-{time.time_ns()}.log"
        command = [sys.executable, str(SERVE), "--bind", bind, "--data", str(self.data_dir), *args]
        if device:
            command += ["--device", device]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=self.data_dir)
        self.endpoint = self._wait_for_endpoint(timeout)

    def _wait_for_endpoint(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = _LISTENING.search(self.log())
            if match:
                return match.group(1)
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.proc.kill()
        self.proc.wait()
        raise ServerStartError(f"serve.py did not start (exit {self.proc.returncode}):\n{self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill9(self) -> int:
        """SIGKILL: no cleanup, no flush; returns the exit status."""
        os.kill(self.proc.pid, signal.SIGKILL)
        return self.proc.wait(timeout=30)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait (SIGKILL after ``timeout``); returns the exit status."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                return self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
