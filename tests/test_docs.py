"""The project's documents exist, and every ``§`` reference in the repository resolves.

The rule (docs/README.md): a reference names its document earlier on the same
line (``60db-protocol.md §2.3.2, §2.3.3``, ``home-assistant.md §2``); a ``§``
with no document named before it on its line means ``docs/60db-protocol.md``.
Inside the two sectioned documents a bare ``§`` means the document itself.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest

ROOT: Final = Path(__file__).resolve().parents[1]
DOCS: Final = ROOT / "docs"
PROTOCOL: Final = "60db-protocol.md"
HOME_ASSISTANT: Final = "home-assistant.md"
SECTIONED: Final = (PROTOCOL, HOME_ASSISTANT)
OLD_NAMES: Final = {"ha-and-wyoming.md": HOME_ASSISTANT}
DOCUMENTS: Final = (*SECTIONED, "architecture.md", "README.md")

# docs/ follows its own rule (a bare § means the document itself), tested on its
# own. CHANGELOG.md is a record of releases: an entry keeps the words it was
# released with, so it is not rewritten when a section is renamed. This file
# holds broken references on purpose, to test the rule.
NOT_SCANNED_DIRS: Final = ("docs/",)
NOT_SCANNED_FILES: Final = frozenset({"CHANGELOG.md", "tests/test_docs.py"})
# Without git (an unpacked sdist): everything but these.
_WALK_SKIPPED: Final = re.compile(
    r"(^|/)(\.[^/]*|__pycache__|build|dist|[^/]*\.egg-info|\.venv[^/]*|\.ha-env[^/]*)(/|$)"
)

# A document name (any folder before it: docs/, shared/, ../docs/), an outside
# document whose sections are not ours (``RFC 6455 §7.4.1``), or a § reference.
_TOKEN: Final = re.compile(
    r"(?P<document>(?:60db-protocol|home-assistant|ha-and-wyoming)\.md)"
    r"|(?P<outside>\bRFC\s?\d+)"
    r"|§\s?(?P<section>\d+(?:\.\d+)*)"
)
_HEADING: Final = re.compile(r"^#{1,6}\s+(?P<number>\d+(?:\.\d+)*)\.?(?:\s|$)")
_FENCE: Final = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True, slots=True)
class Reference:
    """One ``§`` on one line, and the document it refers to."""

    document: str
    section: str
    written: str
    """The reference as the line has it, with its document if one was named."""


@dataclass(frozen=True, slots=True)
class OldName:
    """A document named by the name it had outside the repository."""

    name: str


def references(line: str, default: str = PROTOCOL) -> Iterator[Reference | OldName]:
    """The references on one line, each bound to the nearest document named before it."""
    document: str | None = None
    outside = False
    for match in _TOKEN.finditer(line):
        if match["outside"]:
            outside = True
            continue
        if match["document"]:
            outside = False
            name = match["document"]
            if name in OLD_NAMES:
                yield OldName(name)
            document = OLD_NAMES.get(name, name)
            continue
        if outside:
            continue  # a section of someone else's document
        section = match["section"]
        written = f"{document} §{section}" if document else f"§{section}"
        yield Reference(document or default, section, written)


def headings(text: str) -> list[str]:
    """The section numbers of a document's headings (``## 2. STT`` → ``2``), in order."""
    numbers: list[str] = []
    in_fence = False
    for line in text.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence and (match := _HEADING.match(line)):
            numbers.append(match["number"])
    return numbers


def sections() -> dict[str, frozenset[str]]:
    """Every sectioned document's heading numbers."""
    return {name: frozenset(headings((DOCS / name).read_text("utf-8"))) for name in SECTIONED}


def problems(
    path: str, text: str, known: dict[str, frozenset[str]], default: str = PROTOCOL
) -> Iterator[str]:
    """``path:line: reference`` for each reference that does not resolve."""
    for number, line in enumerate(text.splitlines(), start=1):
        for found in references(line, default):
            if isinstance(found, OldName):
                yield f"{path}:{number}: {found.name} (old name: use {OLD_NAMES[found.name]})"
            elif found.section not in known[found.document]:
                yield f"{path}:{number}: {found.written} (no such heading in docs/{found.document})"


def scanned_files() -> list[str]:
    """Tracked files, and new ones not yet added, minus those the rule does not cover."""
    try:
        listing = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
            timeout=30,
        ).stdout.decode("utf-8")
        paths: Iterable[str] = filter(None, listing.split("\0"))
    except (OSError, subprocess.SubprocessError):
        paths = (
            p.relative_to(ROOT).as_posix()
            for p in ROOT.rglob("*")
            if not _WALK_SKIPPED.search(p.relative_to(ROOT).as_posix())
        )
    return sorted(
        path
        for path in set(paths)
        if not path.startswith(NOT_SCANNED_DIRS)
        and path not in NOT_SCANNED_FILES
        and (ROOT / path).is_file()  # listed by git but deleted in the working tree
    )


def read_text(path: Path) -> str | None:
    """The file's text, or None for a binary file."""
    data = path.read_bytes()
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


# ---------------------------------------------------------------------- the documents


@pytest.mark.parametrize("name", DOCUMENTS)
def test_document_exists(name: str) -> None:
    assert (DOCS / name).is_file(), f"docs/{name} is missing"
    assert (DOCS / name).read_text("utf-8").strip(), f"docs/{name} is empty"


@pytest.mark.parametrize("name", SECTIONED)
def test_section_numbers_are_unique(name: str) -> None:
    numbers = headings((DOCS / name).read_text("utf-8"))
    repeated = sorted({number for number in numbers if numbers.count(number) > 1})
    assert not repeated, f"docs/{name} has these section numbers twice: {repeated}"


def test_architecture_names_every_package() -> None:
    text = (DOCS / "architecture.md").read_text("utf-8")
    packages = sorted(
        path.parent.relative_to(ROOT).as_posix()
        for path in (ROOT / "wyoming_60db").glob("*/__init__.py")
    )
    assert packages, "no package found under wyoming_60db/"
    missing = [package for package in packages if f"{package}/" not in text]
    assert not missing, f"docs/architecture.md does not mention {missing}"


# ---------------------------------------------------------------------- the references


def test_every_reference_in_the_repository_resolves() -> None:
    known = sections()
    found: list[str] = []
    checked = 0
    for path in scanned_files():
        text = read_text(ROOT / path)
        if text is None or ("§" not in text and not any(old in text for old in OLD_NAMES)):
            continue
        checked += 1
        found.extend(problems(path, text, known))
    assert checked, "no file with a § reference found: is the scan looking in the right place?"
    assert not found, f"{len(found)} references do not resolve:\n" + "\n".join(found)


@pytest.mark.parametrize("name", DOCUMENTS)
def test_references_inside_the_documents_resolve(name: str) -> None:
    # A bare § inside a sectioned document means the document itself.
    default = name if name in SECTIONED else PROTOCOL
    text = (DOCS / name).read_text("utf-8")
    found = list(problems(f"docs/{name}", text, sections(), default))
    assert not found, "\n".join(found)


# ---------------------------------------------------------------------- the rule itself


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("# §2.3.1: the start message", [(PROTOCOL, "2.3.1")]),
        ("(60db-protocol.md §2.3.2, §2.3.3)", [(PROTOCOL, "2.3.2"), (PROTOCOL, "2.3.3")]),
        (
            "HA waits (home-assistant.md §2), see §2.1",
            [(HOME_ASSISTANT, "2"), (HOME_ASSISTANT, "2.1")],
        ),
        (
            "HA's chunks (home-assistant.md §2); 60db's frames (60db-protocol.md §2.3.2)",
            [(HOME_ASSISTANT, "2"), (PROTOCOL, "2.3.2")],
        ),
        ("see docs/home-assistant.md § 4.", [(HOME_ASSISTANT, "4")]),
        ("the §9 variants, like §9.22.", [(PROTOCOL, "9"), (PROTOCOL, "9.22")]),
        ("no reference here: 60db-protocol.md", []),
        ("close codes (RFC 6455 §7.4.1), as 60db uses them (§2.6)", []),
        ("RFC 6455 §7.4.1, then 60db-protocol.md §2.6", [(PROTOCOL, "2.6")]),
    ],
)
def test_a_reference_binds_to_the_nearest_document_before_it(
    line: str, expected: list[tuple[str, str]]
) -> None:
    found = [(r.document, r.section) for r in references(line) if isinstance(r, Reference)]
    assert found == expected


def test_unresolved_references_are_listed_with_path_and_line() -> None:
    known = {PROTOCOL: frozenset({"2", "2.3.1"}), HOME_ASSISTANT: frozenset({"2"})}
    text = "ok §2.3.1\nmissing §2.3.9\nold (shared/ha-and-wyoming.md §2)\nhome-assistant.md §5\n"
    assert list(problems("a.py", text, known)) == [
        "a.py:2: §2.3.9 (no such heading in docs/60db-protocol.md)",
        "a.py:3: ha-and-wyoming.md (old name: use home-assistant.md)",
        "a.py:4: home-assistant.md §5 (no such heading in docs/home-assistant.md)",
    ]


def test_headings_are_read_outside_code_blocks_only() -> None:
    text = "## 1. One\n```sh\n# 2 not a heading\n```\n### 1.1 Sub\n#### 1.1.1\n## Appendix\n"
    assert headings(text) == ["1", "1.1", "1.1.1"]
