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
        port: int = sock.getsockname()[1]
        return port


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
    return spawn(name, command, env, base_url, ready_path, logs).ready()


@dataclass
class Starting:
    """A spawned server not yet known to answer: ``ready()`` waits for it. Several spawned
    together start in the time of the slowest rather than of them all."""

    name: str
    process: subprocess.Popen[bytes]
    base_url: str
    ready_path: str
    log: Path
    began: float

    def ready(self) -> Server:
        deadline = self.began + 20
        with httpx.Client(timeout=1) as client:
            while time.perf_counter() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited at start-up; its log:\n{self.log.read_text()[-3000:]}")
                try:
                    if client.get(self.base_url + self.ready_path).status_code == 200:
                        return Server(self.name, self.process, self.base_url, self.log,
                                      time.perf_counter() - self.began)
                except httpx.TransportError:
                    pass
                time.sleep(0.01)
        self.process.kill()
        raise RuntimeError(
            f"{self.name} did not answer {self.ready_path} within 20 s; its log:\n{self.log.read_text()[-3000:]}"
        )


def spawn(
    name: str, command: list[str], env: dict[str, str], base_url: str, ready_path: str, logs: Path
) -> Starting:
    log = logs / f"{name}.log"
    began = time.perf_counter()
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT)
    return Starting(name, process, base_url, ready_path, log, began)


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
