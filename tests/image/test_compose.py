"""compose.yaml, the README's Docker Compose example: consistent with the image.

Docker is not available here, so this reads the file: the key reaches the
server as a Compose secret, at the path SIXTYDB_API_KEY_FILE names, and the
published port is the one the image listens on. Fast: part of the default run.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def service() -> dict[str, Any]:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    services: dict[str, Any] = compose["services"]
    assert list(services) == ["wyoming-60db"]
    return {**services["wyoming-60db"], "_secrets": compose.get("secrets", {})}


def test_key_is_a_compose_secret(service: dict[str, Any]) -> None:
    env = service["environment"]
    assert not any("API_KEY=" in str(item) for item in env), "never the key itself"
    assert "SIXTYDB_API_KEY" not in env
    [secret] = service["secrets"]
    assert env["SIXTYDB_API_KEY_FILE"] == f"/run/secrets/{secret}"
    assert "file" in service["_secrets"][secret]


def test_port_and_build_match_the_dockerfile(service: dict[str, Any]) -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "EXPOSE 10300" in dockerfile
    assert "10300:10300" in service["ports"]
    assert service["build"]["context"] == "."
    assert re.search(r"^ARG BUILD_FROM=", dockerfile, re.MULTILINE)
    assert "BUILD_FROM" in service["build"]["args"]
