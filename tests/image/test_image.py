"""The container image (Dockerfile, script/image), run from its own files.

Containers cannot be run on this project's machines, but a built image's files
can be reached (docs/home-assistant.md §5). So script/image builds the image
with podman, the test mounts it (``podman image mount``) and runs the image's
own ENTRYPOINT with chroot: as the image's USER, with the image's environment,
in its WORKDIR. That is what ``docker run`` starts, minus the namespaces (the
network is this machine's: every server here listens on loopback).

Needs root (mount, chroot) and podman, which script/image installs when apt
can. Where podman cannot be installed or used, the tests are skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
from wyoming.info import Info

from tests.conftest import describe, free_port
from wyoming_60db.emulator import Emulator, EmulatorSettings

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "script" / "image"
BUILD_TIMEOUT = 40 * 60  # a first build also makes the base: minutes, mostly downloads
START_TIMEOUT = 60.0  # from exec to answering describe, demo emulator included
STOP_TIMEOUT = 15.0
KEY = "sk_test_image_secret_key_123"

pytestmark = [pytest.mark.image, pytest.mark.timeout(BUILD_TIMEOUT + 600)]


@dataclass(frozen=True, slots=True)
class Image:
    """A built image, mounted: its files and what ``podman image inspect`` says."""

    name: str
    root: Path
    config: Mapping[str, Any]
    healthcheck: Mapping[str, Any]
    uid: int
    gid: int

    def env(self, **overrides: str) -> dict[str, str]:
        """The image's environment (ENV), with overrides."""
        pairs = (entry.split("=", 1) for entry in self.config.get("Env") or [])
        return {**dict(pairs), **overrides}

    def command(self, env: Mapping[str, str], argv: Sequence[str]) -> list[str]:
        """``argv`` run in the image as its user, in its WORKDIR, with only ``env``."""
        return [
            "chroot",
            f"--userspec={self.uid}:{self.gid}",
            f"--groups={self.gid}",
            str(self.root),
            "/usr/bin/env",
            "-i",
            f"--chdir={self.config.get('WorkingDir') or '/'}",
            *(f"{name}={value}" for name, value in env.items()),
            *argv,
        ]

    def entrypoint(self) -> list[str]:
        return [*(self.config.get("Entrypoint") or []), *(self.config.get("Cmd") or [])]


def podman(*args: str) -> str:
    return subprocess.run(
        ["podman", *args], capture_output=True, text=True, check=True, timeout=120
    ).stdout


def podman_unusable() -> str | None:
    """Why podman cannot be used here, or None when it can."""
    if shutil.which("podman") is None:
        return "podman is not installed and could not be installed"
    info = subprocess.run(["podman", "info"], capture_output=True, text=True, check=False)
    if info.returncode != 0:
        return f"podman does not work here: {info.stderr.strip()[-500:]}"
    return None


def user_ids(root: Path, user: str) -> tuple[int, int]:
    """USER (a name or uid[:gid]) as numbers, from the image's own /etc/passwd."""
    name, _, group = user.partition(":")
    for line in (root / "etc" / "passwd").read_text().splitlines():
        fields = line.split(":")
        if name in (fields[0], fields[2]):
            return int(fields[2]), int(group) if group.isdigit() else int(fields[3])
    if name.isdigit():
        return int(name), int(group or name)
    raise AssertionError(f"USER {user!r} is not in the image's /etc/passwd")


def report(config: pytest.Config, build_output: str, seconds: float) -> None:
    """script/image's summary (what it made, how long it took) on the terminal."""
    summary = [line for line in build_output.splitlines() if line.startswith("image: ")]
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        for line in [*summary, f"image: {seconds:.0f} s in all"]:
            reporter.write_line(line)


@pytest.fixture(scope="module")
def image(request: pytest.FixtureRequest) -> Iterator[Image]:
    """Build (or reuse, from podman's cache) the image, and mount it."""
    if os.geteuid() != 0:
        pytest.skip("needs root: podman image mount and chroot")
    if shutil.which("podman") is None and shutil.which("apt-get") is None:
        pytest.skip("no podman, and no apt-get to install it")
    start = time.monotonic()
    build = subprocess.run(
        [SCRIPT],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    if build.returncode != 0:
        if reason := podman_unusable():
            pytest.skip(reason)
        pytest.fail(f"script/image failed:\n{build.stdout[-6000:]}")
    report(request.config, build.stdout, time.monotonic() - start)
    name = subprocess.run(
        [SCRIPT, "--tag"], capture_output=True, text=True, check=True
    ).stdout.strip()
    inspected = json.loads(podman("image", "inspect", name))[0]
    root = Path(podman("image", "mount", name).strip())
    try:
        # podman keeps the health check beside Config; docker keeps it in Config.
        healthcheck = inspected.get("Healthcheck") or inspected["Config"].get("Healthcheck")
        uid, gid = user_ids(root, inspected["Config"].get("User") or "0")
        yield Image(name, root, inspected["Config"], healthcheck or {}, uid, gid)
    finally:
        podman("image", "unmount", name)


@dataclass(slots=True)
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: IO[bytes]
    final_output: str | None = None  # kept when the log file closes

    def output(self) -> str:
        if self.final_output is not None:
            return self.final_output
        self.log.seek(0)
        return self.log.read().decode(errors="replace")


@contextlib.contextmanager
def run_entrypoint(image: Image, **env: str) -> Iterator[Server]:
    """The image's ENTRYPOINT and CMD, listening on a free loopback port."""
    port = free_port()
    environ = image.env(SIXTYDB_URI=f"tcp://127.0.0.1:{port}", **env)
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            image.command(environ, image.entrypoint()), stdout=log, stderr=subprocess.STDOUT
        )
        server = Server(process, port, log)
        try:
            yield server
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            server.final_output = server.output()


def stop(server: Server) -> int:
    """SIGTERM, as ``docker stop`` sends; the exit status."""
    server.process.send_signal(signal.SIGTERM)
    try:
        return server.process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise AssertionError(
            f"no exit {STOP_TIMEOUT} s after SIGTERM:\n{server.output()}"
        ) from None


async def first_info(server: Server) -> Info:
    """``describe`` as soon as the server answers it."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if server.process.poll() is not None:
            raise AssertionError(f"exited with {server.process.returncode}:\n{server.output()}")
        try:
            async with asyncio.timeout(5):
                return await describe(server.port)
        except (OSError, TimeoutError):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no answer in {START_TIMEOUT} s:\n{server.output()}"
                ) from None
            await asyncio.sleep(0.2)


def health_check(image: Image, port: int) -> subprocess.CompletedProcess[bytes]:
    """The image's own HEALTHCHECK command, run as the container engine would."""
    kind, *args = image.healthcheck["Test"]
    argv = {"CMD": args, "CMD-SHELL": ["/bin/sh", "-c", *args]}[kind]
    timeout = image.healthcheck.get("Timeout") or 30e9  # nanoseconds
    env = image.env(SIXTYDB_URI=f"tcp://0.0.0.0:{port}")
    return subprocess.run(
        image.command(env, argv), capture_output=True, timeout=timeout / 1e9, check=False
    )


def process_uids(pid: int) -> set[int]:
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    return {int(uid) for uid in line.split()[1:]}


def test_image_is_configured_as_documented(image: Image) -> None:
    assert image.uid != 0 and image.gid != 0, "the server must not run as root"
    assert "10300/tcp" in (image.config.get("ExposedPorts") or {})
    assert image.env()["SIXTYDB_URI"] == "tcp://0.0.0.0:10300"
    assert image.healthcheck.get("Test"), "no HEALTHCHECK (an OCI-format build drops it)"
    assert image.entrypoint()
    # The venv is the server's, and pip's build secrets stayed out of the image.
    assert (image.root / "opt/wyoming-60db/bin/wyoming-60db").is_file()
    assert not (image.root / "run/secrets").exists()
    assert not (image.root / "etc/pip.conf").exists()
    assert "PIP_CONFIG_FILE" not in image.env()


async def test_without_a_key_it_serves_the_demo_and_is_healthy(image: Image) -> None:
    with run_entrypoint(image) as server:
        info = await first_info(server)
        assert [program.name for program in info.asr] == ["60db"]
        assert [program.name for program in info.tts] == ["60db"]
        assert info.tts[0].voices, "the emulator's voices"
        assert process_uids(server.process.pid) == {image.uid}

        healthy = health_check(image, server.port)
        assert healthy.returncode == 0, healthy.stderr.decode(errors="replace")
        # Not a check that always passes: with nothing on the port it fails.
        assert health_check(image, free_port()).returncode != 0

        assert stop(server) == 0, server.output()
    output = server.output()
    assert "starting in --demo mode" in output
    assert "Demo mode: the built-in 60db emulator" in output


@contextlib.contextmanager
def secret_in_image(image: Image, name: str, text: str) -> Iterator[str]:
    """A file at /run/secrets/NAME in the image's root, as Docker/Compose secrets appear.

    A bind mount over the image's /run, for this test only: removed again before
    the image is unmounted, and the directory deleted only once nothing is mounted.
    """
    target = image.root / "run"
    with tempfile.TemporaryDirectory() as source:
        secrets = Path(source, "secrets")
        secrets.mkdir()
        Path(source).chmod(0o755)
        secret = secrets / name
        secret.write_text(text + "\n")
        # Owned by the container's user, readable by it alone: a key file of the host's
        # first user, bind-mounted by Compose, looks like this inside.
        os.chown(secret, image.uid, image.gid)
        secret.chmod(0o400)
        subprocess.run(["mount", "--bind", source, str(target)], check=True)
        try:
            yield f"/run/secrets/{name}"
        finally:
            if subprocess.run(["umount", str(target)], check=False).returncode != 0:
                subprocess.run(["umount", "-l", str(target)], check=True)
            assert not os.path.ismount(target)


@pytest.fixture
async def keyed_emulator() -> AsyncIterator[Emulator]:
    """60db stand-in that accepts KEY and nothing else."""
    async with Emulator(EmulatorSettings(api_key=KEY)) as emulator:
        yield emulator


async def test_key_from_a_secret_file(image: Image, keyed_emulator: Emulator) -> None:
    with (
        secret_in_image(image, "sixtydb_api_key", KEY) as key_file,
        run_entrypoint(
            image, SIXTYDB_API_KEY_FILE=key_file, SIXTYDB_API_URL=keyed_emulator.base_url
        ) as server,
    ):
        info = await first_info(server)
        assert [program.name for program in info.asr] == ["60db"]
        assert keyed_emulator.stats.rest_requests, "the server asked 60db (the emulator)"
        assert keyed_emulator.stats.rejected_auth == 0
        assert stop(server) == 0, server.output()
    output = server.output()
    assert "demo" not in output.lower()
    assert "60db account 43" in output  # the emulator's account: the key was accepted
    assert KEY not in output
