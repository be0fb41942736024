"""Where the project and its virtual environments are, how its processes end, who listens."""

from __future__ import annotations

import os
from pathlib import Path
import signal
import socket
import subprocess

ROOT = Path(__file__).resolve().parent.parent


def venvs() -> Path:
    """The folder ``scripts/setup`` made the virtual environments in."""
    return Path(os.environ.get("OCTOPLUGOUT_VENVS", ROOT / ".venvs")).absolute()


def stop_process_group(
    process: subprocess.Popen[bytes] | None,
    sig: signal.Signals = signal.SIGTERM,
    seconds: float = 20.0,
) -> None:
    """Stop a process started in its own session, and all it started; SIGKILL if it lingers."""
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, sig)
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def groups_alive(groups: list[int]) -> int:
    """How many of these process groups still have a process."""
    alive = 0
    for group in groups:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            continue
        alive += 1
    return alive


def port_open(port: int, timeout: float = 0.2) -> bool:
    """Whether something accepts connections on this loopback port."""
    with socket.socket() as sock:
        sock.settimeout(timeout)
        return sock.connect_ex(("127.0.0.1", port)) == 0
