"""Processes the benchmark starts and measures: the FHIR server, the service, the floor, the proxy."""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """A server process, its log, and how long it took from spawn to its first good answer."""

    name: str
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path
    startup_seconds: float

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def worker_rss_mb(self) -> list[float]:
        """Resident memory of each worker: the children of a ``--workers N`` supervisor, or the
        process itself when it serves alone."""
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        workers = [int(child) for child in children if _is_worker(int(child))] or [pid]
        return [_rss_mb(worker) for worker in workers]


def start(
    name: str, command: list[str], env: dict[str, str], base_url: str, ready_path: str, logs: Path
) -> Server:
    """Spawn ``command`` and wait (20 s at most) until ``GET base_url + ready_path`` answers 200."""
    log = logs / f"{name}.log"
    began = time.perf_counter()
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT)
    deadline = began + 20
    with httpx.Client(timeout=1) as client:
        while time.perf_counter() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited at start-up; its log:\n{log.read_text()[-3000:]}")
            try:
                if client.get(base_url + ready_path).status_code == 200:
                    return Server(name, process, base_url, log, time.perf_counter() - began)
            except httpx.TransportError:
                pass
            time.sleep(0.01)
    process.kill()
    raise RuntimeError(f"{name} did not answer {ready_path} within 20 s; its log:\n{log.read_text()[-3000:]}")


def _is_worker(pid: int) -> bool:
    """uvicorn's workers are multiprocessing children (not its resource tracker)."""
    try:
        return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")
