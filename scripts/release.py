"""Cut a release: `scripts/dev release X.Y.Z`.

In one step it moves the CHANGELOG's [Unreleased] entries under `## [X.Y.Z] - <date>`, leaves an
empty [Unreleased] above them, updates the compare links at the bottom, and sets X.Y.Z
everywhere the version lives: `config.yaml` (what the Supervisor compares to offer an
update), `pyproject.toml`, `sec1000/__init__.py` and the Dockerfile's default `BUILD_VERSION`.

It refuses (exit 2, nothing written) a version that is not X.Y.Z, one that is not higher
than the current one, files that disagree on the current version, an empty [Unreleased],
and DOCS.md without a `### X.Y.Z` part under "Versions and updates" (what users get).
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VERSION = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)")
UNRELEASED = "## [Unreleased]"
DOCS_SECTION = "## Versions and updates"


@dataclass(frozen=True, slots=True)
class VersionSpot:
    """One file that holds the version, and the one line pattern that holds it there."""

    path: str
    pattern: re.Pattern[str]  # group 1 is the version

    def read(self, root: Path) -> str:
        text = (root / self.path).read_text(encoding="utf-8")
        found = self.pattern.findall(text)
        if len(found) != 1:
            raise ReleaseError(f"{self.path}: expected one version line, found {len(found)}")
        return str(found[0])

    def write(self, root: Path, version: str, text: str | None = None) -> str:
        text = (root / self.path).read_text(encoding="utf-8") if text is None else text
        return self.pattern.sub(lambda m: m.group(0).replace(m.group(1), version), text, count=1)


SPOTS = (
    VersionSpot("sec1000_addon/config.yaml", re.compile(r'^version: "([^"]+)"$', re.M)),
    VersionSpot("sec1000_addon/pyproject.toml", re.compile(r'^version = "([^"]+)"$', re.M)),
    VersionSpot(
        "sec1000_addon/sec1000/__init__.py", re.compile(r'^__version__ = "([^"]+)"$', re.M)
    ),
    VersionSpot("sec1000_addon/Dockerfile", re.compile(r"^ARG BUILD_VERSION=(\S+)$", re.M)),
)
CHANGELOG = "sec1000_addon/CHANGELOG.md"
DOCS = "sec1000_addon/DOCS.md"
RELEASE_HEADING = re.compile(r"^## \[(\d+\.\d+\.\d+)\] - (\d{4}-\d\d-\d\d)$", re.M)
LINK = re.compile(r"^\[([^\]]+)\]: (\S+)$", re.M)


class ReleaseError(Exception):
    """The release is refused; the message says why."""


def parse(version: str) -> tuple[int, int, int]:
    """X.Y.Z as three numbers; anything else is refused."""
    match = VERSION.fullmatch(version)
    if match is None:
        raise ReleaseError(f"{version!r} is not a version X.Y.Z (semantic versioning)")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def current_version(root: Path) -> str:
    """The one version every spot and the CHANGELOG's newest release heading hold."""
    versions = {spot.path: spot.read(root) for spot in SPOTS}
    headings = RELEASE_HEADING.findall((root / CHANGELOG).read_text(encoding="utf-8"))
    if not headings:
        raise ReleaseError(f"{CHANGELOG}: no release heading '## [X.Y.Z] - YYYY-MM-DD'")
    versions[CHANGELOG] = headings[0][0]
    if len(set(versions.values())) != 1:
        shown = ", ".join(f"{path} {version}" for path, version in versions.items())
        raise ReleaseError(f"the version is not one value: {shown}")
    return versions[CHANGELOG]


def cut_changelog(text: str, version: str, previous: str, date: str) -> str:
    """[Unreleased] becomes `## [version] - date` under a new empty [Unreleased]."""
    start = text.find(UNRELEASED + "\n")
    if start < 0:
        raise ReleaseError(f"{CHANGELOG}: no '{UNRELEASED}' heading")
    body_start = start + len(UNRELEASED) + 1
    newest = RELEASE_HEADING.search(text, body_start)
    body_end = newest.start() if newest else len(text)
    body = text[body_start:body_end].strip()
    if not body:
        raise ReleaseError(f"{CHANGELOG}: [Unreleased] is empty; nothing to release")
    text = text[:start] + f"{UNRELEASED}\n\n## [{version}] - {date}\n\n{body}\n\n" + text[body_end:]
    return relink(text, version, previous)


def relink(text: str, version: str, previous: str) -> str:
    """[Unreleased] compares from the new tag; the new version compares with the previous."""
    links = dict(LINK.findall(text))
    unreleased = links.get("Unreleased")
    if unreleased is None or "/compare/" not in unreleased:
        return text
    base = unreleased.split("/compare/")[0]
    text = text.replace(
        f"[Unreleased]: {unreleased}",
        f"[Unreleased]: {base}/compare/v{version}...HEAD\n"
        f"[{version}]: {base}/compare/v{previous}...v{version}",
    )
    return text


def docs_describe(text: str, version: str) -> bool:
    """DOCS.md's "Versions and updates" part has a `### version` part (what users get)."""
    start = text.find(DOCS_SECTION + "\n")
    if start < 0:
        return False
    section = text[start:]
    end = re.search(r"^## ", section[len(DOCS_SECTION) :], re.M)
    if end:
        section = section[: len(DOCS_SECTION) + end.start()]
    return re.search(rf"^### {re.escape(version)}\b", section, re.M) is not None


def release(root: Path, version: str, date: str) -> str:
    """Cut `version` in the checkout at `root`; returns the version it replaced."""
    wanted = parse(version)
    previous = current_version(root)
    if wanted <= parse(previous):
        raise ReleaseError(f"{version} is not higher than the current version {previous}")
    if not docs_describe((root / DOCS).read_text(encoding="utf-8"), version):
        raise ReleaseError(
            f"{DOCS}: '{DOCS_SECTION}' has no '### {version}' part saying what users get"
        )
    changelog = cut_changelog(
        (root / CHANGELOG).read_text(encoding="utf-8"), version, previous, date
    )
    # Everything is checked and built before the first file is written.
    written = {spot.path: spot.write(root, version) for spot in SPOTS}
    written[CHANGELOG] = changelog
    for path, text in written.items():
        (root / path).write_text(text, encoding="utf-8")
    return previous


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/dev release", description=__doc__)
    parser.add_argument("version", help="the new version, X.Y.Z, higher than the current one")
    parser.add_argument("--date", default=dt.datetime.now(dt.UTC).date().isoformat())
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        if not re.fullmatch(r"\d{4}-\d\d-\d\d", args.date):
            raise ReleaseError(f"--date {args.date!r} is not YYYY-MM-DD")
        previous = release(args.root, args.version, args.date)
    except ReleaseError as err:
        print(f"release refused: {err}", file=sys.stderr)
        return 2
    print(f"released {args.version} (was {previous}): CHANGELOG, config.yaml, pyproject.toml,")
    print("sec1000/__init__.py and the Dockerfile now say it; commit them on their own.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
