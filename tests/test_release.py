"""`scripts/dev release X.Y.Z` (scripts/release.py), run on a copy of the repository's files."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers.packaging import ROOT

# Every file the release reads or writes, at its place in the repository.
FILES = (
    "sec1000_addon/config.yaml",
    "sec1000_addon/pyproject.toml",
    "sec1000_addon/sec1000/__init__.py",
    "sec1000_addon/Dockerfile",
    "sec1000_addon/CHANGELOG.md",
    "sec1000_addon/DOCS.md",
)
ENTRY = "### Fixed\n\n- A fix made for this test.\n"
DATE = "2031-02-03"


def current(root: Path) -> str:
    config = yaml.safe_load((root / "sec1000_addon" / "config.yaml").read_text())
    return str(config["version"])


def bump_minor(version: str) -> str:
    major, minor, _ = (int(part) for part in version.split("."))
    return f"{major}.{minor + 1}.0"


def describe_in_docs(root: Path, version: str) -> None:
    """Write the DOCS part a release needs: what users get in `version`."""
    docs = root / "sec1000_addon" / "DOCS.md"
    text = docs.read_text()
    heading = "## Versions and updates\n"
    assert heading in text
    docs.write_text(text.replace(heading, f"{heading}\n### {version}\n\n- A fix.\n", 1))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of the release's files, with one entry in [Unreleased] (the repository's own may
    be empty right after a release)."""
    for name in FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, tmp_path / name)
    changelog = tmp_path / "sec1000_addon" / "CHANGELOG.md"
    text = changelog.read_text()
    changelog.write_text(text.replace("## [Unreleased]\n", f"## [Unreleased]\n\n{ENTRY}", 1))
    return tmp_path


def release(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "release.py"), *args, "--root", str(root)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def snapshot(root: Path) -> dict[str, str]:
    return {name: (root / name).read_text() for name in FILES}


def test_a_release_moves_unreleased_under_its_version_and_sets_every_version(
    repo: Path,
) -> None:
    before = current(repo)
    new = bump_minor(before)
    describe_in_docs(repo, new)
    unreleased = (repo / "sec1000_addon" / "CHANGELOG.md").read_text()
    body = unreleased.split("## [Unreleased]\n", 1)[1].split(f"\n## [{before}]", 1)[0].strip()

    result = release(repo, new, "--date", DATE)

    assert result.returncode == 0, result.stderr
    changelog = (repo / "sec1000_addon" / "CHANGELOG.md").read_text()
    headings = re.findall(r"^## \[([^\]]+)\](.*)$", changelog, re.M)
    assert headings[:3] == [("Unreleased", ""), (new, f" - {DATE}"), (before, headings[2][1])]
    assert changelog.split("## [Unreleased]\n", 1)[1].startswith(f"\n## [{new}] - {DATE}\n")
    moved = changelog.split(f"## [{new}] - {DATE}\n", 1)[1].split(f"\n## [{before}]", 1)[0]
    assert moved.strip() == body and ENTRY.strip() in moved
    assert re.search(rf"^\[Unreleased\]: \S+/compare/v{new}\.\.\.HEAD$", changelog, re.M)
    assert re.search(rf"^\[{re.escape(new)}\]: \S+/compare/v{before}\.\.\.v{new}$", changelog, re.M)
    assert current(repo) == new
    addon = repo / "sec1000_addon"
    assert f'version = "{new}"' in (addon / "pyproject.toml").read_text()
    assert f'__version__ = "{new}"' in (addon / "sec1000" / "__init__.py").read_text()
    assert f"ARG BUILD_VERSION={new}\n" in (addon / "Dockerfile").read_text()


@pytest.mark.parametrize("how", ["same", "lower", "lower_major"])
def test_a_version_that_is_not_higher_is_refused_and_nothing_is_written(
    repo: Path, how: str
) -> None:
    major, minor, patch = (int(part) for part in current(repo).split("."))
    version = {
        "same": f"{major}.{minor}.{patch}",
        "lower": f"{major}.{minor}.{patch - 1}" if patch else f"{major}.{minor - 1}.9",
        "lower_major": f"{major - 1}.99.99" if major else "0.0.0",
    }[how]
    describe_in_docs(repo, version)
    before = snapshot(repo)
    result = release(repo, version)
    assert result.returncode == 2
    assert "not higher than the current version" in result.stderr
    assert snapshot(repo) == before


@pytest.mark.parametrize("version", ["1.2", "v1.2.3", "1.2.3-rc1", "01.2.3", "1.2.3.4", ""])
def test_a_version_that_is_not_semantic_is_refused(repo: Path, version: str) -> None:
    before = snapshot(repo)
    result = release(repo, version)
    assert result.returncode == 2 and "not a version X.Y.Z" in result.stderr
    assert snapshot(repo) == before


def test_a_release_without_entries_is_refused(repo: Path) -> None:
    first = bump_minor(current(repo))
    describe_in_docs(repo, first)
    assert release(repo, first).returncode == 0
    second = bump_minor(first)
    describe_in_docs(repo, second)
    before = snapshot(repo)
    result = release(repo, second)
    assert result.returncode == 2 and "[Unreleased] is empty" in result.stderr
    assert snapshot(repo) == before


def test_a_release_docs_do_not_describe_is_refused(repo: Path) -> None:
    before = snapshot(repo)
    result = release(repo, "99.0.0")  # a version DOCS has no part for
    assert "### 99.0.0" not in before["sec1000_addon/DOCS.md"]
    assert result.returncode == 2 and "Versions and updates" in result.stderr
    assert snapshot(repo) == before


def test_files_that_disagree_on_the_version_are_refused(repo: Path) -> None:
    init = repo / "sec1000_addon" / "sec1000" / "__init__.py"
    init.write_text(re.sub(r'__version__ = "[^"]+"', '__version__ = "9.9.9"', init.read_text()))
    new = bump_minor(current(repo))
    describe_in_docs(repo, new)
    before = snapshot(repo)
    result = release(repo, new)
    assert result.returncode == 2 and "not one value" in result.stderr
    assert snapshot(repo) == before


def test_scripts_dev_release_runs_the_release_script(repo: Path) -> None:
    new = bump_minor(current(repo))
    describe_in_docs(repo, new)
    result = subprocess.run(
        [str(ROOT / "scripts" / "dev"), "release", new, "--date", DATE, "--root", str(repo)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert current(repo) == new
