"""The Raspberry Pi path (Raspberry Pi OS bookworm: aarch64, Python 3.11, glibc 2.36,
systemd), checked as far as this machine can.

- Every runtime dependency, with the ``zeroconf`` extra, resolves to binary wheels for
  aarch64 / CPython 3.11, so a Pi installs without a compiler. Needs PyPI (CI has it).
- The systemd unit the README shows (``docs/wyoming-60db.service``) passes
  ``systemd-analyze verify``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
UNIT = REPO / "docs" / "wyoming-60db.service"
UNIT_EXECUTABLE = "/home/pi/wyoming-60db/bin/wyoming-60db"

# What pip on the Pi accepts: manylinux wheels for glibc 2.17 … 2.36 (bookworm). pip does
# not widen one --platform to older glibc versions, so each is named.
BOOKWORM_PLATFORMS = [f"manylinux_2_{minor}_aarch64" for minor in range(36, 16, -1)]


def requirements() -> list[str]:
    return [*PROJECT["dependencies"], *PROJECT["optional-dependencies"]["zeroconf"]]


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    "platforms",
    [
        # The check as the issue states it: wheels for the oldest aarch64 glibc (2.17).
        pytest.param(["manylinux2014_aarch64"], id="manylinux2014"),
        # What a Pi's pip actually picks: the newest releases with a bookworm-compatible wheel.
        pytest.param(BOOKWORM_PLATFORMS, id="bookworm"),
    ],
)
def test_dependencies_have_aarch64_wheels(platforms: list[str], tmp_path: Path) -> None:
    platform_args = [arg for platform in platforms for arg in ("--platform", platform)]
    target = ["--python-version", "3.11", "--implementation", "cp", "--abi", "cp311"]
    download = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:"]
    done = subprocess.run(
        [*download, *platform_args, *target, "--dest", str(tmp_path), *requirements()],
        capture_output=True,
        text=True,
        check=False,
        timeout=280,
        # This machine's pip has a `constraint` setting (a local torch cap) that has no
        # business in a download for another machine.
        env={**os.environ, "PIP_CONSTRAINT": "", "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert done.returncode == 0, done.stderr
    files = sorted(path.name for path in tmp_path.iterdir())
    assert all(name.endswith(".whl") for name in files), files
    for name in files:
        tags = name.removesuffix(".whl").split("-")[-3:]
        python, _abi, platform = tags
        assert platform == "any" or "aarch64" in platform, name
        assert python.startswith(("py3", "cp311")), name
    downloaded = {name.split("-")[0].lower().replace("_", "-") for name in files}
    assert {"wyoming", "aiohttp", "numpy", "soxr", "sentence-stream", "zeroconf"} <= downloaded


def verify(unit: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_unit_verifies(tmp_path: Path) -> None:
    """``systemd-analyze verify`` on the README's unit.

    The unit names the Pi's paths (/home/pi/...), which do not exist here, and verify
    refuses an ExecStart that is not executable. So the copy verified here runs this
    checkout's own ``wyoming-60db`` instead; every other line is the file's. verify
    reports bad keys and values on stderr but still exits 0, so stderr must be empty.
    """
    text = UNIT.read_text()
    assert f"ExecStart={UNIT_EXECUTABLE} " in text
    executable = Path(sys.executable).parent / "wyoming-60db"
    assert os.access(executable, os.X_OK)
    unit = tmp_path / UNIT.name
    unit.write_text(text.replace(UNIT_EXECUTABLE, str(executable)))
    done = verify(unit)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr

    # The check can fail: a misspelt key is reported, a missing executable is an error.
    misspelt = tmp_path / "misspelt.service"
    misspelt.write_text(unit.read_text().replace("Restart=always", "Restrat=always"))
    assert "Restrat" in verify(misspelt).stderr
    missing = tmp_path / "missing.service"
    missing.write_text(text)  # the Pi's path, absent here
    assert verify(missing).returncode != 0


def test_systemd_unit_runs_what_the_readme_installs() -> None:
    """The unit starts the pip install of the README, with the key from a file."""
    lines = UNIT.read_text().splitlines()
    (exec_start,) = [line for line in lines if line.startswith("ExecStart=")]
    assert "--api-key-file /home/pi/.60db-key" in exec_start
    assert "--api-key " not in exec_start  # never the key itself on a command line
    assert "User=pi" in lines
    assert "WantedBy=multi-user.target" in lines


def test_readme_shows_the_unit_file() -> None:
    """Once the README points at the file, the unit it shows is the file, verbatim."""
    readme = (REPO / "README.md").read_text()
    if "docs/wyoming-60db.service" not in readme:
        pytest.skip("README.md does not show docs/wyoming-60db.service yet")
    blocks = [block.split("\n```", 1)[0] for block in readme.split("```ini\n")[1:]]
    shown = [block for block in blocks if "ExecStart=" in block and "wyoming-60db" in block]
    assert shown == [UNIT.read_text().rstrip("\n")]
