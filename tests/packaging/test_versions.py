"""One version everywhere: config.yaml, the CHANGELOG, the package, the image, and DOCS' part for
each release."""

from __future__ import annotations

import re
import tomllib

import sec1000

from tests.helpers.packaging import ADDON, config, docs_section, release_headings


def test_changelog_has_unreleased_and_this_version() -> None:
    changelog = (ADDON / "CHANGELOG.md").read_text()
    versions = re.findall(r"^## \[([^\]]+)\]", changelog, re.M)
    assert versions[:2] == ["Unreleased", config()["version"]], versions
    assert re.search(
        rf"^## \[{re.escape(config()['version'])}\] - \d{{4}}-\d\d-\d\d$", changelog, re.M
    )
    assert "### Added" in changelog


def test_the_version_is_one_value() -> None:
    """What the Supervisor compares to offer an update (config.yaml), the CHANGELOG's newest
    release, the package's version and the image's default label are one value."""
    version = config()["version"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), version
    project = tomllib.loads((ADDON / "pyproject.toml").read_text())["project"]
    dockerfile = (ADDON / "Dockerfile").read_text()
    assert release_headings()[0] == version
    assert project["version"] == version
    assert sec1000.__version__ == version
    assert re.findall(r"^ARG BUILD_VERSION=(\S+)$", dockerfile, re.M) == [version]


def test_docs_say_what_each_release_brings() -> None:
    """Versions and updates has a `### X.Y.Z` part for every release of the CHANGELOG."""
    described = re.findall(r"^### (\d+\.\d+\.\d+)$", docs_section("Versions and updates"), re.M)
    assert set(release_headings()) <= set(described)
