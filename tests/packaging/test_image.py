"""The image: the Dockerfile, and the s6 service that runs `sec1000 serve` in it (no Docker engine
here: the files are read, and the service scripts run with bashio stubbed)."""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from sec1000.cli import build_parser
from sec1000.options import LOG_LEVELS

from tests.helpers.packaging import ADDON, config

SERVICE = ADDON / "rootfs" / "etc" / "s6-overlay" / "s6-rc.d" / "sec1000"


def test_dockerfile_names_a_default_build_from() -> None:
    dockerfile = (ADDON / "Dockerfile").read_text()
    assert re.search(
        r"^ARG BUILD_FROM=ghcr\.io/home-assistant/base-python:3\.13-alpine3\.24$", dockerfile, re.M
    )
    assert re.search(r"^FROM \$\{BUILD_FROM\}$", dockerfile, re.M)
    # Supervisor 2026.04+ reads no build.yaml (and logs one as deprecated): this default rules.
    assert not (ADDON / "build.yaml").exists(), "build.yaml is deprecated"
    for label in ("title", "description", "source", "licenses", "version"):
        assert f"org.opencontainers.image.{label}=" in dockerfile, label
    assert re.search(
        r"^\s*org\.opencontainers\.image\.version=\"\$\{BUILD_VERSION\}\"", dockerfile, re.M
    )


def test_dockerfile_copies_what_pip_needs_to_build_the_package() -> None:
    """pip builds from pyproject.toml, which also names the readme: both must be in the image."""
    dockerfile = (ADDON / "Dockerfile").read_text()
    project = tomllib.loads((ADDON / "pyproject.toml").read_text())["project"]
    copied = {
        word
        for line in dockerfile.splitlines()
        if line.startswith("COPY ")
        for word in line.split()[1:-1]
    }
    assert {"pyproject.toml", project["readme"], "sec1000", "rootfs"} <= copied
    assert (ADDON / project["readme"]).is_file()
    assert re.search(r"^RUN pip install --no-cache-dir /usr/src/sec1000\b", dockerfile, re.M)
    assert config()["version"] == project["version"], "config.yaml and pyproject.toml versions"


def test_service_scripts_pass_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is missing: scripts/dev test installs it with apt-get"
    scripts = [SERVICE / "run", SERVICE / "finish"]
    result = subprocess.run(
        [shellcheck, "--shell=bash", *map(str, scripts)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def test_service_is_an_enabled_longrun_after_base() -> None:
    assert (SERVICE / "type").read_text().strip() == "longrun"
    assert (SERVICE.parent / "user" / "contents.d" / "sec1000").is_file()
    assert (SERVICE / "dependencies.d" / "base").is_file()
    for name in ("run", "finish"):
        assert (SERVICE / name).stat().st_mode & 0o111, f"{name} is not executable"


def test_run_execs_serve_with_the_options_and_the_log_level() -> None:
    """`exec`: sec1000 itself gets SIGTERM from s6 and restores the limiter before exiting."""
    run = (SERVICE / "run").read_text()
    assert run.startswith("#!/command/with-contenv bashio\n")
    commands = [line for line in _logical_lines(run) if not line.startswith("#")]
    assert commands[-1].startswith("exec sec1000 "), "the last command must exec sec1000"
    last = commands[-1].split()
    assert last[:4] == ["exec", "sec1000", "--log-level", '"${log_level}"']
    assert last[4] == "serve" and "/data/options.json" in last[last.index("--options") + 1]
    assert "bashio::config 'log_level'" in run


@pytest.mark.parametrize("level", LOG_LEVELS)
def test_run_hands_sec1000_arguments_its_parser_accepts(level: str, tmp_path: Path) -> None:
    """Run the run script with bashio stubbed: the command line it execs must parse, and every
    option log level must become a level Python's logging knows."""
    argv_file = tmp_path / "argv"
    stub = tmp_path / "bin" / "sec1000"
    stub.parent.mkdir()
    stub.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{argv_file}"\n')
    stub.chmod(0o755)
    prelude = (
        'bashio::config() { [ "$1" = log_level ] && printf \'%s\\n\' "$LEVEL"; }\n'
        "bashio::log.info() { :; }\nbashio::log.warning() { :; }\n"
    )
    subprocess.run(
        ["bash", "-c", prelude + f'source "{SERVICE / "run"}"'],
        env={"PATH": f"{stub.parent}:/usr/bin:/bin", "LEVEL": level},
        check=True,
        timeout=30,
    )
    argv = argv_file.read_text().splitlines()
    args = build_parser().parse_args(argv)
    assert args.command == "serve"
    assert args.options == Path("/data/options.json") and args.data_dir == Path("/data")
    assert args.port == 8099 and not args.demo
    assert isinstance(logging.getLevelName(args.log_level.upper()), int), args.log_level


def test_finish_never_stops_the_app_or_halts_the_container() -> None:
    """After a crash s6 must start sec1000 again, so it can finish an interrupted restore."""
    finish = (SERVICE / "finish").read_text()
    code = "\n".join(line for line in _logical_lines(finish) if not line.startswith("#"))
    for word in ("halt", "kill", "s6-svc", "s6-svscanctl", "exitcode"):
        assert word not in code, word


def _logical_lines(script: str) -> list[str]:
    """The script's lines with backslash continuations joined, blank lines dropped."""
    return [line.strip() for line in script.replace("\\\n", " ").splitlines() if line.strip()]
