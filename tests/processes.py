"""Real processes for tests: `claimsieve serve` on a free loopback port, ready or failed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def claimsieve(*args: str, data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run a `claimsieve` command on a data folder; it must succeed."""
    done = subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        cwd=ROOT,
        env={**os.environ, "CLAIMSIEVE_DATA_DIR": str(data_dir), **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done


def serve(data_dir: Path, port: int, log: Path, *args: str, **env: str) -> subprocess.Popen[bytes]:
    """Start `claimsieve serve` (add "--no-auth" to ``args`` for a service without keys)."""
    environment = {**os.environ, "CLAIMSIEVE_DATA_DIR": str(data_dir), **env}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--port", str(port), *args],
            cwd=ROOT,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def wait_ready(process: subprocess.Popen[bytes], port: int, log: Path, limit: float) -> float:
    """Seconds until `/readyz` answered 200; the test fails with the log's tail otherwise."""
    began = time.monotonic()
    while time.monotonic() - began < limit:
        if process.poll() is not None:
            pytest.fail(f"server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return time.monotonic() - began
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    pytest.fail(f"server not ready after {limit} s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
