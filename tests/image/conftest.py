"""The container image tests are slow (a first build takes minutes): only on request.

``pytest -m image tests/image`` runs them; script/test does, as a step of its
own after the main suites. Everywhere else they are skipped, with that reason.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "image: builds the container image with podman (slow; `-m image`)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "image" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(
        reason="slow: the container image is tested by `pytest -m image tests/image` "
        "(a step of script/test)"
    )
    for item in items:
        if item.get_closest_marker("image") is not None:
            item.add_marker(skip)
