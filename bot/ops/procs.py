"""Small process helpers shared by the benchmark and the production launcher."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Dict, List, Tuple


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def spawn(command: List[str], cwd: Path, env: Dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start a child in its own process group (so it and its children stop together), output to a log."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
    return subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop_group(process: subprocess.Popen[bytes], grace_seconds: float = 10.0) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def _status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def rss_mib(pid: int) -> float:
    """Resident memory now, in MiB (0 if the process is gone)."""
    return _status_kib(pid, "VmRSS") / 1024


def peak_rss_mib(pid: int) -> float:
    """Highest resident memory the process has had, in MiB."""
    return _status_kib(pid, "VmHWM") / 1024


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process has used so far, in seconds (0 if it is gone).

    Per handled message this is a figure that other programs loading the machine barely change, unlike
    throughput or latency.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # Fields after the command name (which may contain spaces), from field 3 on: utime is 14, stime 15.
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds(stat_text: str | None = None) -> Tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, summed over its cores (/proc/stat).

    Busy is everything but idle and iowait: the difference between two readings, divided by the seconds
    between them, is how many cores were in use, whoever used them (database, nginx, load generator).
    """
    text = stat_text if stat_text is not None else Path("/proc/stat").read_text()
    ticks = [int(value) for value in text.splitlines()[0].split()[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    total = sum(ticks[:8])  # guest time is already counted in user time
    hertz = os.sysconf("SC_CLK_TCK")
    return (total - idle) / hertz, total / hertz


def wait_for_port(port: int, timeout: float, process: subprocess.Popen[bytes] | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.2)
    return False
