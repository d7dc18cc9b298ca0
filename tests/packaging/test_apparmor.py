"""The AppArmor profile: it allows what the add-on needs, nothing more, and it compiles."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers.packaging import ADDON

# Paths the add-on touches at run time, with what it must be allowed to do there. Scripts need
# `r` besides `x` (their interpreter reads them); binaries need only `x`.
APPARMOR_NEEDS = {
    "/init": "rx",
    "/command/with-contenv": "rx",
    "/package/admin/s6-overlay-3.2.1.0/command/with-contenv": "rx",
    "/package/admin/s6-2.13.2.0/command/s6-supervise": "mrx",
    "/run/s6-rc:s6-rc-init:aBcD/servicedirs/sec1000/run": "rx",
    "/run/service/sec1000/finish": "rx",
    "/run/s6/basedir/bin/halt": "x",
    "/run/s6/container_environment/SUPERVISOR_TOKEN": "rw",
    "/etc/s6-overlay/s6-rc.d/sec1000/run": "r",
    "/usr/bin/bashio": "rx",
    "/usr/lib/bashio/bashio.sh": "r",
    "/bin/bash": "x",
    "/usr/bin/curl": "x",
    "/usr/bin/jq": "x",
    "/usr/local/bin/python3.13": "x",
    "/usr/local/bin/sec1000": "rx",
    "/usr/local/lib/python3.13/asyncio/base_events.py": "r",
    "/usr/local/lib/python3.13/site-packages/sec1000/web/templates/base.html": "r",
    "/usr/local/lib/python3.13/site-packages/aiohttp/_http_parser.cpython-313-aarch64-linux-musl.so": "mr",
    "/usr/local/lib/libpython3.13.so.1.0": "mr",
    "/lib/ld-musl-x86_64.so.1": "mr",
    "/usr/lib/libssl.so.3": "mr",
    "/etc/resolv.conf": "r",
    "/etc/hosts": "r",
    "/etc/ssl/certs/ca-certificates.crt": "r",
    "/etc/mime.types": "r",
    "/usr/share/zoneinfo/Europe/Berlin": "r",
    "/proc/self/status": "r",
    "/data/": "r",
    "/data/options.json": "rw",
    "/data/.options.x1y2": "rw",
    "/data/watchdog_restore.json": "rwk",
    "/tmp/.bashio/addons.self.options.config.cache": "rw",
    "/dev/tty": "rw",
}


# Paths it must not write, nor run, nor (for "rwx") read at all.
APPARMOR_FORBIDS = {
    "/etc/passwd": "wx",
    "/etc/s6-overlay/s6-rc.d/sec1000/run": "w",
    "/init": "w",
    "/bin/bash": "w",
    "/usr/local/bin/sec1000": "w",
    "/usr/local/lib/python3.13/site-packages/sec1000/options.py": "wx",
    "/package/admin/s6-2.13.2.0/command/s6-supervise": "w",
    "/data/options.json": "x",
    "/tmp/payload": "x",
    "/config/configuration.yaml": "rwx",
    "/homeassistant/secrets.yaml": "rwx",
    "/ssl/privkey.pem": "rwx",
    "/share/file": "rwx",
    "/media/file": "rwx",
    "/backup/slug.tar": "rwx",
    "/root/.ssh/id_ed25519": "rwx",
    "/sys/kernel/debug/x": "rwx",
    "/dev/mem": "rwx",
    "/dev/sda": "rwx",
}


APPARMOR_VARIABLES = {"@{PROC}": "/proc", "@{pid}": "[0-9]+", "@{pids}": "[0-9]+"}


def apparmor_file_rules(profile: str) -> list[tuple[re.Pattern[str], str]]:
    """(path regex, permissions) of every file rule in the profile; `x` stands for any exec mode."""
    rules = []
    for line in profile.splitlines():
        match = re.fullmatch(r"\s*(?:owner\s+)?((?:/|@\{)\S*)\s+([a-zA-Z]+),\s*", line)
        if match:
            glob, perms = match.groups()
            rules.append((re.compile(_apparmor_glob(glob)), re.sub(r"[iupcIUPC]x", "x", perms)))
    return rules


def _apparmor_glob(glob: str) -> str:
    for name, value in APPARMOR_VARIABLES.items():
        glob = glob.replace(name, "\0" + value + "\0")
    out, in_group, parts = [], 0, glob.split("\0")
    for index, part in enumerate(parts):
        if index % 2:  # a variable's value is a regex already
            out.append(part)
            continue
        i = 0
        while i < len(part):
            char = part[i]
            if part.startswith("**", i):
                out.append(".*")
                i += 2
                continue
            out.append(
                {"*": "[^/]*", "?": "[^/]", "{": "(?:", "}": ")"}.get(char)
                or ("|" if char == "," and in_group else re.escape(char))
            )
            in_group += {"{": 1, "}": -1}.get(char, 0)
            i += 1
    return "".join(out)


def apparmor_allows(rules: list[tuple[re.Pattern[str], str]], path: str) -> set[str]:
    """Every permission the profile's file rules give on a path."""
    return {perm for pattern, perms in rules if pattern.fullmatch(path) for perm in perms}


def test_apparmor_glob_matching_is_faithful() -> None:
    """The checker's own reading of AppArmor globs: `*` stops at `/`, `**` does not."""
    rules = apparmor_file_rules(
        "  /a/*/b rw,\n  /c/** r,\n  /d/{x,y*}/e ix,\n  @{PROC}/@{pid}/stat r,\n"
    )
    assert apparmor_allows(rules, "/a/1/b") == {"r", "w"}
    assert apparmor_allows(rules, "/a/1/2/b") == set()
    assert apparmor_allows(rules, "/c/1/2/3") == {"r"}
    assert apparmor_allows(rules, "/d/yes/e") == {"x"}
    assert apparmor_allows(rules, "/d/z/e") == set()
    assert apparmor_allows(rules, "/proc/42/stat") == {"r"}


def test_apparmor_profile_allows_what_the_addon_needs() -> None:
    rules = apparmor_file_rules((ADDON / "apparmor.txt").read_text())
    missing = {
        path: "".join(sorted(set(needed) - apparmor_allows(rules, path)))
        for path, needed in APPARMOR_NEEDS.items()
        if set(needed) - apparmor_allows(rules, path)
    }
    assert missing == {}


def test_apparmor_profile_is_tight() -> None:
    profile = (ADDON / "apparmor.txt").read_text()
    # The Supervisor reads the one profile name from the one line starting with "profile ".
    assert len(re.findall(r"^profile \S+ ", profile, re.M)) == 1
    rules = apparmor_file_rules(profile)
    too_much = {
        path: "".join(sorted(set(forbidden) & apparmor_allows(rules, path)))
        for path, forbidden in APPARMOR_FORBIDS.items()
        if set(forbidden) & apparmor_allows(rules, path)
    }
    assert too_much == {}
    body = [line.split("#")[0].strip() for line in profile.splitlines()]
    body = [line for line in body if line]
    assert "file," not in body, "no blanket file access"
    assert not [line for line in body if line.startswith(("capability", "mount", "ptrace"))]
    assert not re.search(r"\b[uU]x\b|\bp[xX]\b", profile), "no unconfined or foreign-profile exec"
    networks = {line for line in body if line.startswith("network")}
    assert networks <= {
        "network inet stream,",
        "network inet6 stream,",
        "network inet dgram,",
        "network inet6 dgram,",
        "network unix stream,",
        "network unix dgram,",
    }
    assert "network inet stream," in networks
    writable = {pattern.pattern for pattern, perms in rules if {"w", "a"} & set(perms)}
    assert all(re.match(r"/(data|tmp|run|dev/(tty|null))\b", p) for p in writable), writable


def test_apparmor_profile_compiles() -> None:
    parser = shutil.which("apparmor_parser") or (
        "/usr/sbin/apparmor_parser" if Path("/usr/sbin/apparmor_parser").exists() else None
    )
    if parser is None:
        pytest.fail("apparmor_parser is not installed: scripts/dev test installs Debian's apparmor")
    result = subprocess.run(
        [
            parser,
            "--skip-kernel-load",
            "--skip-cache",
            "--quiet",
            "-o",
            os.devnull,
            str(ADDON / "apparmor.txt"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
