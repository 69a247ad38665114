"""The container image, built and started on this machine as CI can: ``scripts/image.sh build``
(a debootstrap base, ``buildah bud --isolation chroot``), then ``scripts/image.sh run`` (``buildah
run --isolation chroot``, on the host's network) with a trusted issuers file mounted read-only."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests import signing
from tests.conftest import ROOT, _free_port

pytestmark = [pytest.mark.deploy, pytest.mark.slow]  # builds and starts an image

SCRIPT = ROOT / "scripts" / "image.sh"
IMAGE = "localhost/aimss-cds:test"
ISSUERS_IN_IMAGE = "/etc/aimss-cds/issuers.json"
SERVICE_UID = 10001  # deploy/Containerfile's user
WAIT = 60.0


@pytest.fixture(scope="module")
def built() -> str:
    """The image of this tree; the base is made on first use (1-3 minutes), then reused."""
    if os.geteuid() != 0:
        pytest.fail("scripts/image.sh needs root (buildah's chroot isolation and debootstrap)")
    done = subprocess.run([str(SCRIPT), "build"], env=os.environ | {"IMAGE": IMAGE}, check=False,
                          capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return IMAGE


@dataclass
class Running:
    base: str  # http://127.0.0.1:PORT, the port the container listens on (host network)
    port: int
    script: subprocess.Popen[bytes]
    log: Path
    processes: set[int]  # the image's processes seen while it started


def container_processes(root: int) -> list[int]:
    """Every process below ``root`` that runs the image's Python, found through /proc."""
    children: dict[int, list[int]] = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            lines = status.read_text().splitlines()
            fields = dict(line.split(":\t", 1) for line in lines if ":\t" in line)
        except OSError:
            continue  # gone meanwhile
        children.setdefault(int(fields["PPid"]), []).append(int(status.parent.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            todo.append(child)
            try:
                if Path(f"/proc/{child}/cmdline").read_bytes().startswith(b"/opt/aimss-cds/"):
                    found.append(child)
            except OSError:
                pass  # gone meanwhile
    return found


def uids(pid: int) -> list[int]:
    """Real, effective, saved and filesystem uid of a process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return [int(uid) for uid in line.split()[1:]]
    raise AssertionError(f"no Uid line for {pid}")


@pytest.fixture(scope="module")
def running(built: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    folder = tmp_path_factory.mktemp("image")
    issuers = signing.write_issuers_file(folder)
    issuers.chmod(0o644)
    port = _free_port()
    env = os.environ | {
        "IMAGE": built, "HOST": "127.0.0.1", "PORT": str(port),
        "AIMSS_TRUSTED_ISSUERS_FILE": ISSUERS_IN_IMAGE,
        "AIMSS_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
    }
    log = folder / "container.log"
    with open(log, "wb") as out:
        script = subprocess.Popen(
            [str(SCRIPT), "run", "-v", f"{issuers}:{ISSUERS_IN_IMAGE}:ro"],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    seen: set[int] = set()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + WAIT
        while True:
            if script.poll() is not None:
                pytest.fail("the container exited: " + log.read_text()[-3000:])
            seen.update(container_processes(script.pid))
            try:
                if httpx.get(base + "/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"not ready in {WAIT:.0f} s: " + log.read_text()[-3000:])
            time.sleep(0.2)
        seen.update(container_processes(script.pid))
        yield Running(base, port, script, log, seen)
    finally:
        if script.poll() is None:
            script.send_signal(signal.SIGTERM)
            try:
                script.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                os.killpg(script.pid, signal.SIGKILL)
                script.wait(timeout=10)
        for pid in seen:  # normally long gone; killed only if still the image's process
            with contextlib.suppress(OSError):
                if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"/opt/aimss-cds/"):
                    os.kill(pid, signal.SIGKILL)


def health(port: int) -> int:
    """The exit status of the image's own HEALTHCHECK, run once against ``port``."""
    env = os.environ | {"IMAGE": IMAGE, "PORT": str(port)}
    done = subprocess.run([str(SCRIPT), "health"], env=env, check=False, capture_output=True,
                          timeout=WAIT)
    return done.returncode


def test_health_and_discovery_answer_with_jwt_checks_on(running):
    assert httpx.get(running.base + "/health", timeout=5).json() == {"status": "ok"}
    unsigned = httpx.get(running.base + "/cds-services", timeout=5)
    assert (unsigned.status_code, unsigned.content) == (401, b"")
    signed = httpx.get(running.base + "/cds-services", timeout=5, headers=signing.bearer(
        "/cds-services", base=running.base))
    assert signed.status_code == 200
    services = {s["id"] for s in signed.json()["services"]}
    assert services == {"aimss-patient-view", "aimss-order-select"}


def test_the_service_runs_as_its_own_user_not_root(running):
    processes = container_processes(running.script.pid)
    assert len(processes) >= 3, "a parent and two workers"  # the image serves with 2 workers
    for pid in processes:
        assert uids(pid) == [SERVICE_UID] * 4, f"process {pid}"


def test_the_image_health_check_passes_and_fails_with_the_service(running):
    assert health(running.port) == 0
    running.script.send_signal(signal.SIGTERM)
    assert running.script.wait(timeout=WAIT) == 0, running.log.read_text()[-3000:]
    deadline = time.monotonic() + WAIT  # multiprocessing's resource tracker ends just after
    while (left := [pid for pid in running.processes if Path(f"/proc/{pid}").exists()]):
        assert time.monotonic() < deadline, f"processes {left} outlived the container"
        time.sleep(0.1)
    assert "Application shutdown complete" in running.log.read_text()
    assert health(running.port) != 0
