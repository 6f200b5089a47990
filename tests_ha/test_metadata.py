"""The cheap checks hassfest and HACS's validation make, which cannot run here.

Also: every translation key the code raises exists, en.json matches
strings.json, and the quality scale names a status for every rule.
"""

from __future__ import annotations

import json
import re
import struct
import tomllib
from pathlib import Path

import pytest

from custom_components.sixtydb.const import DOMAIN
from custom_components.sixtydb.errors import FALLBACK_CODE, TRANSLATED_CODES

REPO = Path(__file__).resolve().parents[1]
INTEGRATION = REPO / "custom_components" / DOMAIN
MANIFEST = json.loads((INTEGRATION / "manifest.json").read_text())
STRINGS = json.loads((INTEGRATION / "strings.json").read_text())
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())

# hassfest's required keys for a custom integration (script/hassfest/manifest.py).
REQUIRED_MANIFEST_KEYS = {
    "domain",
    "name",
    "codeowners",
    "documentation",
    "integration_type",
    "iot_class",
    "requirements",
    "version",
}


def test_manifest_required_keys_and_values() -> None:
    """The keys hassfest and HACS require, with this integration's values."""
    assert MANIFEST.keys() >= REQUIRED_MANIFEST_KEYS
    assert MANIFEST["domain"] == INTEGRATION.name == DOMAIN
    assert MANIFEST["name"] == "60db"
    assert MANIFEST["config_flow"] is True
    assert MANIFEST["integration_type"] == "service"
    assert MANIFEST["iot_class"] == "cloud_push"
    assert MANIFEST["loggers"] == ["wyoming_60db"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", MANIFEST["version"])


def test_manifest_key_order() -> None:
    """domain, name, then the rest sorted (hassfest's manifest sort)."""
    keys = list(MANIFEST)
    assert keys[:2] == ["domain", "name"]
    assert keys[2:] == sorted(keys[2:])


def test_requirement_pins_this_package_at_its_version() -> None:
    """The pin must match pyproject.toml, or HA installs another release than was tested."""
    project = PYPROJECT["project"]
    assert MANIFEST["requirements"] == [f"{project['name']}=={project['version']}"]
    assert MANIFEST["version"] == project["version"]


def test_hacs_json() -> None:
    """HACS: a name, and the oldest Home Assistant this works on."""
    hacs = json.loads((REPO / "hacs.json").read_text())
    assert hacs["name"] == MANIFEST["name"]
    assert hacs["homeassistant"] == "2025.4.0"
    assert hacs.get("content_in_root", False) is False
    allowed = {
        "name",
        "content_in_root",
        "zip_release",
        "filename",
        "hide_default_branch",
        "country",
        "homeassistant",
        "hacs",
        "persistent_directory",
        "render_readme",
    }
    assert hacs.keys() <= allowed


def test_translations_match_strings() -> None:
    """A custom integration ships translations/en.json; it must say what strings.json says."""
    english = json.loads((INTEGRATION / "translations" / "en.json").read_text())
    assert english == STRINGS


def test_every_raised_key_is_translated() -> None:
    """Each translation key the code uses has a text, and each text is used."""
    exceptions = set(STRINGS["exceptions"])
    source = "\n".join(path.read_text() for path in INTEGRATION.glob("*.py"))
    raised = set(re.findall(r'ha_error\(\s*"([a-z_]+)"', source))
    raised |= set(re.findall(r'translation_key="([a-z_]+)"', source)) - {"no_credits"}
    raised |= TRANSLATED_CODES | {FALLBACK_CODE}
    assert raised == exceptions
    flow_errors = set(re.findall(r'"base": "([a-z_]+)"', source))
    assert flow_errors == set(STRINGS["config"]["error"])
    assert flow_errors >= {"invalid_auth", "cannot_connect", "no_credits", "unknown"}
    assert "no_credits" in STRINGS["issues"]


@pytest.mark.parametrize(("name", "size"), [("icon.png", 256), ("icon@2x.png", 512)])
def test_brand_icons(name: str, size: int) -> None:
    """Brand images (HA 2026.3+ reads them from the integration's brand/ folder)."""
    data = (INTEGRATION / "brand" / name).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (size, size)


def test_brand_logo() -> None:
    """The logo exists and is a PNG (any aspect ratio)."""
    assert (INTEGRATION / "brand" / "logo.png").read_bytes()[:4] == b"\x89PNG"


ALL_RULES = {
    # Bronze
    "action-setup", "appropriate-polling", "brands", "common-modules",
    "config-flow-test-coverage", "config-flow", "dependency-transparency", "docs-actions",
    "docs-high-level-description", "docs-installation-instructions",
    "docs-removal-instructions", "entity-event-setup", "entity-unique-id", "has-entity-name",
    "runtime-data", "test-before-configure", "test-before-setup", "unique-config-entry",
    # Silver
    "action-exceptions", "config-entry-unloading", "docs-configuration-parameters",
    "docs-installation-parameters", "entity-unavailable", "integration-owner",
    "log-when-unavailable", "parallel-updates", "reauthentication-flow", "test-coverage",
    # Gold
    "devices", "diagnostics", "discovery-update-info", "discovery", "docs-data-update",
    "docs-examples", "docs-known-limitations", "docs-supported-devices",
    "docs-supported-functions", "docs-troubleshooting", "docs-use-cases", "dynamic-devices",
    "entity-category", "entity-device-class", "entity-disabled-by-default",
    "entity-translations", "exception-translations", "icon-translations",
    "reconfiguration-flow", "repair-issues", "stale-devices",
    # Platinum
    "async-dependency", "inject-websession", "strict-typing",
}  # fmt: skip


def _quality_scale() -> dict[str, str]:
    text = (INTEGRATION / "quality_scale.yaml").read_text()
    rules = dict(re.findall(r"^  ([a-z-]+): (done|todo)$", text, re.MULTILINE))
    for rule, status in re.findall(
        r"^  ([a-z-]+):\n    status: (done|todo|exempt)\n    comment: \S", text, re.MULTILINE
    ):
        rules[rule] = status
    return rules


def test_quality_scale_names_every_rule() -> None:
    """Every rule has a status (a todo or an exemption with its reason)."""
    assert _quality_scale().keys() == ALL_RULES


def test_quality_scale_is_honest_about_what_is_left() -> None:
    """What is not done is exactly this; changing it needs a look at the rule."""
    todo = {rule for rule, status in _quality_scale().items() if status == "todo"}
    assert todo == {"dependency-transparency", "integration-owner"}
    assert MANIFEST["codeowners"] == []  # integration-owner is todo because of this
