"""Run pytest-homeassistant-custom-component 0.13.375 (made for HA 2026.10.4) on HA 2026.11.0.

DROP THIS FILE (and the lines of script/test-ha that install it) as soon as a
pytest-homeassistant-custom-component release for Home Assistant 2026.11 is
published: then pin that release in script/test-ha instead.

script/test-ha copies this file into the site-packages of the "current"
suite's virtualenv as ``sixtydb_ha_2026_11_shim.py``, next to a
``sixtydb_ha_2026_11_shim.pth`` that imports it. Python runs ``.pth`` import
lines at interpreter start-up, before pytest loads any plugin. Nothing else
imports this module, and nothing here runs in a real Home Assistant.

It fixes the two incompatibilities of 0.13.375 with 2026.11.0
(docs/home-assistant.md §4):

1. Home Assistant's package ``__init__`` aliases ``httpx`` → ``httpx2`` and
   ``voluptuous`` → ``probatio``, and must run before anything imports
   ``httpx``, as it does when Home Assistant starts. The test plugin imports
   ``respx`` (hence ``httpx``) before any ``homeassistant`` module, so
   ``import homeassistant`` is done here, first.

2. The test package's ``common.py`` does ``from homeassistant.components.logger
   import _clear_logger_overwrites`` (for its ``async_call_logger_set_level``
   helper). 2026.11 still has that function, unchanged, in
   ``homeassistant.components.logger.helpers`` but no longer imports it into
   the package. It is re-exported from there, the moment the logger package
   is first imported (an import hook, so start-up does not import Home
   Assistant's core for every Python process of the virtualenv). Should a
   later release drop the helper itself, a replacement with the same effect
   (clearing the ``logger.set_level`` overrides in ``hass.data``) is used.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType
from typing import Any

LOGGER_PACKAGE = "homeassistant.components.logger"
EXPORT = "_clear_logger_overwrites"


def _clear_logger_overwrites_fallback(hass: Any) -> None:
    """Clear what ``logger.set_level`` overrode (2026.10's behaviour). Used for testing."""
    from homeassistant.components.logger.helpers import DATA_LOGGER

    settings = hass.data.get(DATA_LOGGER)
    if settings is not None:
        settings.overrides.clear()


def _export(package: ModuleType) -> None:
    if hasattr(package, EXPORT):
        return  # a release that still exports it: nothing to do
    try:
        helpers = importlib.import_module(f"{LOGGER_PACKAGE}.helpers")
        function = getattr(helpers, EXPORT)
    except (ImportError, AttributeError):
        function = _clear_logger_overwrites_fallback
    setattr(package, EXPORT, function)


class _ExportAfterImport(importlib.abc.MetaPathFinder):
    """Adds the export to the logger package right after it is first executed."""

    def find_spec(
        self, fullname: str, path: Any = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != LOGGER_PACKAGE:
            return None
        sys.meta_path.remove(self)  # once, and so that find_spec below finds the real one
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_and_export(module: ModuleType) -> None:
            exec_module(module)
            _export(module)

        loader.exec_module = exec_and_export  # type: ignore[method-assign]
        return spec


def install() -> None:
    """Both shims; never breaks the interpreter (pip also runs in this virtualenv)."""
    try:
        import homeassistant  # noqa: F401  # shim 1: its __init__ first
    except ImportError:
        return  # Home Assistant not installed (yet)
    if LOGGER_PACKAGE in sys.modules:
        _export(sys.modules[LOGGER_PACKAGE])
    else:
        sys.meta_path.insert(0, _ExportAfterImport())


install()
