"""The release artifacts: the sdist and the wheel build, pass ``twine check``, and the
wheel installed into a fresh venv runs ``wyoming-60db --version`` and ``--demo``.

One build per session (about 8 s) and one fresh venv (about 6 s with the wheelhouse
cached). The build runs without isolation, with the dev extra's setuptools: the release
workflow builds with isolation, the same backend. The fresh venv installs with
``pip install --no-index`` from a wheelhouse kept in pytest's cache folder; only when that
wheelhouse lacks a dependency (first run, changed ranges) does pip download it from PyPI.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import tarfile
import time
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from wyoming.client import AsyncTcpClient
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize

from tests.conftest import free_port as free_port  # noqa: PLC0414 - re-exported

REPO = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
VERSION: str = PROJECT["version"]
SLOW = pytest.mark.timeout(600)
# pip as a user runs it, minus this machine's version check and its `constraint` setting.
PIP_ENV = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_CONSTRAINT": ""}


def run(*args: str | Path, timeout: float = 300, **kwargs: object) -> str:
    """Run a command; fail with its output if it fails. Returns stdout."""
    done = subprocess.run(
        [str(arg) for arg in args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,  # type: ignore[call-overload]
    )
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return str(done.stdout)


@dataclass(frozen=True)
class Dist:
    sdist: Path
    wheel: Path


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    """``python -m build``: the sdist, then the wheel built from it."""
    out = tmp_path_factory.mktemp("dist")
    # Building writes the checkout's egg-info, as the editable installs of script/test-ha
    # do: take their lock.
    with (REPO / ".ha-env-install.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, REPO, env=PIP_ENV)
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return Dist(sdist, wheel)


def wheelhouse(config: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Dependency wheels, kept across sessions in pytest's cache folder when there is one."""
    cache = getattr(config, "cache", None)
    if cache is not None:
        return Path(cache.mkdir("wyoming-60db-wheelhouse"))
    return tmp_path_factory.mktemp("wheelhouse")


@pytest.fixture(scope="session")
def fresh_venv(
    dist: Dist, pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A new venv holding only the wheel and its dependencies.

    It gets no pip of its own (ensurepip costs 20 s here): this venv's pip installs into
    it with ``--python``, and skips compiling bytecode (another 10 s).
    """
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    house = wheelhouse(pytestconfig, tmp_path_factory)
    install: list[str | Path] = [sys.executable, "-m", "pip", "--python", venv / "bin" / "python"]
    install += ["install", "--no-compile", "--no-index", "--find-links", house, dist.wheel]
    if subprocess.run(install, capture_output=True, check=False, env=PIP_ENV).returncode != 0:
        # Only the dependencies go into the wheelhouse, never this package's wheel: a
        # stale build of the same version must not be picked up next time.
        download = [sys.executable, "-m", "pip", "download", "--only-binary=:all:"]
        run(*download, "--dest", house, *PROJECT["dependencies"], env=PIP_ENV)
        run(*install, env=PIP_ENV)
    return venv


@SLOW
def test_sdist_and_wheel_pass_twine_check(dist: Dist) -> None:
    assert dist.sdist.name == f"wyoming_60db-{VERSION}.tar.gz"
    assert dist.wheel.name == f"wyoming_60db-{VERSION}-py3-none-any.whl"
    output = run(sys.executable, "-m", "twine", "check", "--strict", dist.sdist, dist.wheel)
    assert output.count("PASSED") == 2


def package_files() -> set[str]:
    """Every file of the package in the checkout that must ship: code and data, not docs."""
    return {
        path.relative_to(REPO).as_posix()
        for path in (REPO / "wyoming_60db").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in {".pyc", ".md"}
    }


@SLOW
def test_wheel_holds_the_whole_package(dist: Dist) -> None:
    """Code and data (py.typed; any JSON a later module adds) and nothing else."""
    with zipfile.ZipFile(dist.wheel) as wheel:
        names = set(wheel.namelist())
        metadata = wheel.read(f"wyoming_60db-{VERSION}.dist-info/METADATA").decode()
        entry_points = wheel.read(f"wyoming_60db-{VERSION}.dist-info/entry_points.txt").decode()
    shipped = {name for name in names if not name.startswith("wyoming_60db-")}
    assert package_files() <= shipped
    assert "wyoming_60db/py.typed" in shipped
    assert {name.split("/")[0] for name in shipped} == {"wyoming_60db"}  # no tests, no bench
    assert f"\nVersion: {VERSION}\n" in metadata
    assert "\nLicense-Expression: MIT\n" in metadata
    assert "wyoming-60db = wyoming_60db.__main__:run" in entry_points


@SLOW
def test_sdist_builds_on_its_own(dist: Dist) -> None:
    """The wheel is built from the sdist, so the sdist holds the package and its readme."""
    with tarfile.open(dist.sdist) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert {"pyproject.toml", "README.md", "PKG-INFO"} <= names
    assert package_files() <= names


@SLOW
def test_fresh_venv_runs_the_version(fresh_venv: Path, tmp_path: Path) -> None:
    assert run(fresh_venv / "bin" / "wyoming-60db", "--version", cwd=tmp_path).strip() == VERSION
    # The venv's own copy runs, not the checkout's.
    where = run(
        fresh_venv / "bin" / "python",
        "-c",
        "import wyoming_60db; print(wyoming_60db.__file__, wyoming_60db.__version__)",
        cwd=tmp_path,
    ).split()
    assert Path(where[0]).is_relative_to(fresh_venv)
    assert where[1] == VERSION


@contextlib.contextmanager
def demo_server(venv: Path, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``wyoming-60db --demo`` from the venv on a loopback port; SIGTERM at the end."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SIXTYDB_")}
    with log.open("wb") as output:
        process = subprocess.Popen(
            [venv / "bin" / "wyoming-60db", "--demo", "--uri", f"tcp://127.0.0.1:{port}"],
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=log.parent,
            env=env,
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def describe(port: int, deadline: float) -> Info:
    """``describe`` → ``info``, retried while the server is still starting."""
    while True:
        try:
            async with AsyncTcpClient("127.0.0.1", port) as client:
                await client.write_event(Describe().event())
                async with asyncio.timeout(5):
                    while (event := await client.read_event()) is not None:
                        if Info.is_type(event.type):
                            return Info.from_event(event)
        except OSError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.2)


async def synthesize(port: int, text: str) -> list[str]:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Synthesize(text=text).event())
        types: list[str] = []
        async with asyncio.timeout(10):
            while (event := await client.read_event()) is not None:
                types.append(event.type)
                if event.type in {"audio-stop", "error"}:
                    break
        return types


@SLOW
async def test_fresh_venv_demo_answers_describe_and_speaks(
    fresh_venv: Path, tmp_path: Path
) -> None:
    """The emulator's code and data come from the wheel: --demo serves a real catalog."""
    port = free_port()
    log = tmp_path / "server.log"
    with demo_server(fresh_venv, port, log) as process:
        info = await describe(port, time.monotonic() + 30)
        types = await synthesize(port, "Hello from the wheel.")
        assert process.poll() is None, log.read_text()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0, log.read_text()  # a graceful shutdown
    (asr,) = info.asr
    (tts,) = info.tts
    assert asr.name == tts.name == "60db"
    assert asr.version == tts.version == VERSION
    assert asr.models[0].languages
    assert len(tts.voices) >= 2
    assert types[0] == "audio-start"
    assert types[-1] == "audio-stop"
    assert types.count("audio-chunk") >= 1
    assert "Traceback" not in log.read_text()
