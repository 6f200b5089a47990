"""The app folder against the rules the Home Assistant Supervisor enforces.

The rules are those of home-assistant/supervisor (``supervisor/apps/validate.py``,
``apps/options.py``, ``store/validate.py``, ``store/data.py``, ``validate.py``),
restated here for the keys this app uses. Reading YAML needs PyYAML; the
version checks and the file checks run without it.
"""

from __future__ import annotations

import json
import os
import re
import struct
import tomllib
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from wyoming_60db import __version__
from wyoming_60db.app import AppOptions

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "wyoming-60db"

# ------------------------------------------------------------- the Supervisor's rules

ARCH_ALL = {"aarch64", "amd64"}  # supervisor/const.py; armhf, armv7, i386 are deprecated
RE_SLUG = re.compile(r"^[-_.A-Za-z0-9]+$")
RE_DOCKER_PORT = re.compile(r"^\d+(?:/tcp|/udp)?$")
RE_DOCKER_IMAGE_BUILD = re.compile(
    r"^([a-zA-Z\-\.:\d{}]+/)*?([\-\w{}]+)/([\-\w{}]+)(:[\.\-\w{}]+)?$"
)
RE_SCHEMA_ELEMENT = re.compile(
    r"^(?:"
    r"|bool"
    r"|email"
    r"|url"
    r"|port"
    r"|device(?:\((?P<filter>subsystem=[a-z]+)\))?"
    r"|str(?:\((?P<s_min>\d+)?,(?P<s_max>\d+)?\))?"
    r"|password(?:\((?P<p_min>\d+)?,(?P<p_max>\d+)?\))?"
    r"|int(?:\((?P<i_min>-?\d+)?,(?P<i_max>-?\d+)?\))?"
    r"|float(?:\((?P<f_min>-?\d*\.?\d+)?,(?P<f_max>-?\d*\.?\d+)?\))?"
    r"|match\((?P<match>.*)\)"
    r"|list\((?P<list>.+)\)"
    r")\??$"
)
# A few keys the app's config.yaml may use, with their types (apps/validate.py).
CONFIG_KEYS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "version": str,
    "slug": str,
    "description": str,
    "arch": list,
    "url": str,
    "init": bool,
    "discovery": list,
    "options": dict,
    "schema": dict,
    "ports": dict,
    "ports_description": dict,
    "backup_exclude": list,
    "map": list,
    "image": str,
    "homeassistant": str,
    "startup": str,
    "boot": str,
    "stage": str,
}
REQUIRED_CONFIG_KEYS = {"name", "version", "slug", "description", "arch"}


def is_url(value: object) -> bool:
    parsed = urlparse(str(value))
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


def check_schema_element(element: Any, where: str) -> None:
    """``SCHEMA_ELEMENT``: a type string, a one-element list of one, or a dict of them."""
    if isinstance(element, str):
        assert RE_SCHEMA_ELEMENT.match(element), f"{where}: unknown schema type {element!r}"
    elif isinstance(element, list):
        assert len(element) == 1, f"{where}: a list schema holds exactly one element type"
        assert not isinstance(element[0], list), f"{where}: a list may not hold a list"
        check_schema_element(element[0], where)
    elif isinstance(element, dict):
        for key, value in element.items():
            check_schema_element(value, f"{where}.{key}")
    else:
        raise AssertionError(f"{where}: schema element {element!r} is no type")


def validate_value(typ: str, value: Any, where: str) -> Any:
    """``AppOptions._single_validate`` (apps/options.py), without devices and secrets."""
    assert value is not None, f"{where}: missing required option"
    match = RE_SCHEMA_ELEMENT.match(typ)
    assert match, f"{where}: unknown type {typ!r}"
    bounds = {name: match.group(name) for name in ("s_min", "s_max", "p_min", "p_max")}
    if typ.startswith(("str", "password")):
        assert isinstance(value, str), f"{where}: {value!r} is not a string"
        low = bounds["s_min"] or bounds["p_min"]
        high = bounds["s_max"] or bounds["p_max"]
        assert low is None or len(value) >= float(low), f"{where}: too short"
        assert high is None or len(value) <= float(high), f"{where}: too long"
        return value
    if typ.startswith(("int", "float")):
        number = int(value) if typ.startswith("int") else float(value)
        prefix = typ[0]
        low, high = match.group(f"{prefix}_min"), match.group(f"{prefix}_max")
        assert low is None or number >= float(low), f"{where}: {number} < {low}"
        assert high is None or number <= float(high), f"{where}: {number} > {high}"
        return number
    if typ.startswith("bool"):
        assert isinstance(value, bool), f"{where}: {value!r} is not true or false"
        return value
    if typ.startswith("match"):
        assert re.match(match.group("match"), str(value)), f"{where}: {value!r} does not match"
        return str(value)
    if typ.startswith("list"):
        choices = match.group("list").split("|")
        assert str(value) in choices, f"{where}: {value!r} not in {choices}"
        return str(value)  # the Supervisor stores the choice as text
    if typ.startswith("port"):
        assert 1 <= int(value) <= 65535, f"{where}: bad port"
        return int(value)
    raise AssertionError(f"{where}: type {typ!r} not covered by this checker")


def validate_options(schema: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """``AppOptions.__call__``: every option in the schema, every required one present."""
    result: dict[str, Any] = {}
    for key, value in options.items():
        assert key in schema, f"option {key!r} is not in the schema"
        typ = schema[key]
        if isinstance(typ, list):
            assert isinstance(value, list), f"{key}: not a list"
            result[key] = [validate_value(typ[0], item, key) for item in value]
        else:
            assert isinstance(typ, str), f"{key}: nested schemas are not used here"
            result[key] = validate_value(typ, value, key)
    for key, typ in schema.items():
        element = typ[0] if isinstance(typ, list) and typ else typ
        if key not in result:
            assert isinstance(element, str) and element.endswith("?"), (
                f"required option {key!r} has no default in options"
            )
    return result


# ---------------------------------------------------------------------- files


def package_version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as file:
        version: str = tomllib.load(file)["project"]["version"]
        return version


def config_text_version() -> str:
    """config.yaml's top-level ``version``, read without a YAML parser."""
    text = (APP / "config.yaml").read_text(encoding="utf-8")
    match = re.search(r"^version:\s*[\"']?([^\"'\s#]+)[\"']?\s*(?:#.*)?$", text, re.MULTILINE)
    assert match, "config.yaml has no top-level version"
    return match.group(1)


def load_yaml(path: Path) -> Any:
    yaml = pytest.importorskip(
        "yaml",
        reason="PyYAML is not installed in this environment (it belongs in the test extra); "
        "the YAML rules are not checked",
    )
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def png_size(path: Path) -> tuple[int, int]:
    """Width and height of a valid PNG (signature, IHDR and every chunk's CRC checked)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    position, kinds = 8, []
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"{path.name}: bad CRC in {kind!r}"
        kinds.append(kind)
        position += 12 + length
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds
    ihdr = data[16:24]
    width, height = struct.unpack(">II", ihdr)
    return width, height


# ---------------------------------------------------------------------- versions


def test_versions_are_in_step() -> None:
    version = package_version()
    assert config_text_version() == version, "wyoming-60db/config.yaml's version"
    manifest = json.loads(
        (ROOT / "custom_components" / "sixtydb" / "manifest.json").read_text(encoding="utf-8")
    )
    if "version" in manifest:
        assert manifest["version"] == version, "manifest.json's version"
    pins = [r for r in manifest.get("requirements", []) if r.startswith("wyoming-60db")]
    assert pins in ([], [f"wyoming-60db=={version}"]), "manifest.json's requirement"
    if __version__ != "0.0.0":  # installed: the metadata is the package's
        assert __version__ == version


def test_the_supervisor_finds_exactly_one_app() -> None:
    """``store/data.py`` reads each ``**/config.{yaml,yml,json}`` outside dot folders, rootfs."""
    ignored = {"__pycache__", "build", "dist", "node_modules"}  # never in the git tree
    found = []
    for directory, subdirectories, files in os.walk(ROOT):
        subdirectories[:] = [
            name
            for name in subdirectories
            if not name.startswith(".")
            and name != "rootfs"
            and name not in ignored
            and not name.endswith(".egg-info")
        ]
        found += [
            Path(directory, name).relative_to(ROOT)
            for name in files
            if Path(name).stem == "config" and Path(name).suffix in (".yaml", ".yml", ".json")
        ]
    assert found == [Path("wyoming-60db/config.yaml")]
    assert [p.name for p in ROOT.glob("repository.*")] == ["repository.yaml"]


def test_icon_and_logo() -> None:
    assert png_size(APP / "icon.png") == (128, 128)
    width, height = png_size(APP / "logo.png")
    assert 200 <= width <= 300 and 80 <= height <= 120


def test_dockerfile_builds_from_the_supervisors_arguments() -> None:
    lines = [
        line.strip()
        for line in (APP / "Dockerfile").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines[0].startswith("ARG BUILD_FROM")
    assert lines[1] in ("FROM ${BUILD_FROM}", "FROM $BUILD_FROM")
    assert "ARG BUILD_VERSION" in lines
    text = "\n".join(lines)
    assert "wyoming-60db==${BUILD_VERSION}" in text
    assert re.search(r"^ENTRYPOINT \[.*\"-m\", \"wyoming_60db\.app\"\]$", text, re.MULTILINE)
    assert "HEALTHCHECK" in text and "--health-check" in text
    assert "EXPOSE 10300" in text


# ---------------------------------------------------------------------- YAML rules


def test_repository_yaml() -> None:
    repository = load_yaml(ROOT / "repository.yaml")
    assert isinstance(repository.get("name"), str)
    assert is_url(repository.get("url"))
    assert isinstance(repository.get("maintainer", ""), str)


def test_config_yaml_follows_the_supervisors_rules() -> None:
    config = load_yaml(APP / "config.yaml")
    assert isinstance(config, dict)
    assert set(config) >= REQUIRED_CONFIG_KEYS
    unknown = set(config) - set(CONFIG_KEYS)
    assert not unknown, f"keys this checker does not cover: {unknown}"
    for key, value in config.items():
        assert isinstance(value, CONFIG_KEYS[key]), f"{key}: {value!r}"
    assert str(config["version"]) == package_version()
    assert RE_SLUG.match(config["slug"])
    assert config["slug"] == APP.name, "the folder is named after the slug"
    assert set(config["arch"]) == ARCH_ALL and len(config["arch"]) == len(ARCH_ALL)
    assert is_url(config["url"])
    assert config["init"] is False  # the Python entry point is the container's process
    assert config["discovery"] == ["wyoming"]
    # Wyoming's port, reachable by Home Assistant only unless the user maps it.
    assert config["ports"] == {"10300/tcp": None}
    for port, host_port in config["ports"].items():
        assert RE_DOCKER_PORT.match(port)
        assert host_port is None or 1 <= int(host_port) <= 65535


def test_options_and_schema() -> None:
    config = load_yaml(APP / "config.yaml")
    schema, options = config["schema"], config["options"]
    assert set(schema) == {
        "api_key", "languages", "voice", "stt_encoding", "tts_sample_rate",
        "tts_speed", "end_of_speech_by_60db", "vad_sensitivity", "debug_logging",
    }  # fmt: skip
    for key, element in schema.items():
        check_schema_element(element, key)
    assert schema["api_key"] == "password?", "the key is a password, and optional (demo)"
    assert schema["stt_encoding"] == "list(linear|mulaw)"
    assert schema["tts_sample_rate"] == "list(8000|16000|24000|48000)"
    assert schema["debug_logging"] == "bool"
    assert "api_key" not in options, "no default key: a missing key runs the demo"
    stored = validate_options(schema, options)
    # What the Supervisor writes to /data/options.json, the app reads.
    assert AppOptions.from_json(json.loads(json.dumps(stored))) == AppOptions()


@pytest.mark.parametrize(
    ("key", "good", "bad"),
    [
        ("languages", ["auto", "en", "de-DE", "pt_BR"], ["english", "e1", ""]),
        ("stt_encoding", ["linear", "mulaw"], ["opus"]),
        ("tts_sample_rate", [8000, "16000", 24000, "48000"], [22050, "44100"]),
        ("tts_speed", [0.5, 1, 2.0], [0.4, 2.1]),
        ("vad_sensitivity", ["default", "relaxed", "aggressive"], ["eager", ""]),
    ],
)
def test_schema_types_accept_what_the_server_accepts(
    key: str, good: list[Any], bad: list[Any]
) -> None:
    schema = load_yaml(APP / "config.yaml")["schema"]
    typ = schema[key][0] if isinstance(schema[key], list) else schema[key]
    for value in good:
        stored = validate_value(typ, value, key)
        data = {key: [stored] if isinstance(schema[key], list) else stored}
        AppOptions.from_json(data)  # the app takes it
    for value in bad:
        with pytest.raises(AssertionError):
            validate_value(typ, value, key)


def test_build_yaml() -> None:
    build = load_yaml(APP / "build.yaml")
    config = load_yaml(APP / "config.yaml")
    assert set(build) <= {"build_from", "args", "labels", "squash"}
    build_from = build["build_from"]
    assert set(build_from) == set(config["arch"])
    for arch, image in build_from.items():
        assert RE_DOCKER_IMAGE_BUILD.match(image)
        assert re.fullmatch(rf"ghcr\.io/home-assistant/{arch}-base-debian:(trixie|bookworm)", image)
    for mapping in ("args", "labels"):
        pairs = build.get(mapping, {}).items()
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in pairs)


def test_translations_name_every_option() -> None:
    config = load_yaml(APP / "config.yaml")
    translations = load_yaml(APP / "translations" / "en.yaml")
    assert set(translations) <= {"configuration", "network"}
    configuration = translations["configuration"]
    assert set(configuration) == set(config["schema"])
    for key, entry in configuration.items():
        assert isinstance(entry.get("name"), str) and entry["name"], key
        assert isinstance(entry.get("description", ""), str), key
    assert set(translations["network"]) == set(config["ports"])
    assert all(isinstance(text, str) for text in translations["network"].values())
