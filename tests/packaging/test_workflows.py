"""The repository's CI: the GitHub workflows (lint, test, build), Dependabot, and the linters they
run, run here too."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.helpers.packaging import ADDON, ROOT, config


def workflow(name: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())


def _steps(flow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in flow["jobs"].values() for step in job.get("steps", [])]


def test_lint_workflow_runs_every_linter() -> None:
    steps = _steps(workflow("lint.yaml"))
    uses = " ".join(step.get("uses", "") for step in steps)
    runs = " ".join(step.get("run", "") for step in steps)
    for action in (
        "frenck/action-addon-linter@",
        "hadolint/hadolint-action@",
        "frenck/action-yamllint@",
    ):
        assert action in uses, action
    assert "ruff" in uses + runs and "shellcheck --shell=bash" in runs
    linter = next(s for s in steps if "action-addon-linter" in s.get("uses", ""))
    assert linter["with"]["path"].strip("./") == ADDON.name


def test_test_workflow_runs_ci_run() -> None:
    runs = [step.get("run", "") for step in _steps(workflow("test.yaml"))]
    assert any(re.fullmatch(r"(bash )?\.ci/run", run.strip()) for run in runs), runs


def test_build_workflow_builds_every_arch_with_the_builder_actions() -> None:
    flow = workflow("build.yaml")
    assert json.loads(flow["env"]["ARCHITECTURES"]) == sorted(config()["arch"])
    steps = _steps(flow)
    build = next(
        s for s in steps if "home-assistant/builder/actions/build-image@" in s.get("uses", "")
    )
    required = {"arch", "image", "image-tags", "version", "container-registry-password"}
    assert required <= set(build["with"]), required - set(build["with"])
    assert build["with"]["context"] == ADDON.name
    assert any("publish-multi-arch-manifest@" in s.get("uses", "") for s in steps)
    assert any("prepare-multi-arch-matrix@" in s.get("uses", "") for s in steps)
    # The version the images are tagged with is read from config.yaml.
    version_step = next(s for s in steps if s.get("id") == "version")
    script = re.search(r"version=\$\((.*)\)$", version_step["run"], re.M).group(1)  # type: ignore[union-attr]
    result = subprocess.run(
        ["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == config()["version"]


def test_build_workflow_builds_pull_requests_and_publishes_releases() -> None:
    flow = workflow("build.yaml")
    triggers = flow[True]  # YAML 1.1 reads the key `on` as true
    assert "pull_request" in triggers and triggers["release"]["types"] == ["published"]
    jobs = flow["jobs"]
    build = next(
        s
        for s in jobs["build"]["steps"]
        if "home-assistant/builder/actions/build-image@" in s.get("uses", "")
    )
    assert build["with"]["push"] == "${{ github.event_name == 'release' }}"
    assert jobs["manifest"]["if"] == "github.event_name == 'release'"
    tag_check = next(s for s in jobs["init"]["steps"] if "tag_name" in str(s.get("env")))
    assert tag_check["if"] == "github.event_name == 'release'"
    assert tag_check["env"]["TAG"] == "${{ github.event.release.tag_name }}"
    assert tag_check["run"] == 'test "${TAG}" = "v${VERSION}"'
    # The base image the build verifies is the one the Dockerfile builds from.
    base = re.search(r"^ARG BUILD_FROM=(\S+)$", (ADDON / "Dockerfile").read_text(), re.M)
    assert base and build["with"]["cosign-base-verify"] == base.group(1)


def test_dependabot_keeps_the_actions_and_the_pinned_dependencies_current() -> None:
    dependabot = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())
    assert dependabot["version"] == 2
    watched = {(u["package-ecosystem"], u["directory"]) for u in dependabot["updates"]}
    manifests = {
        "github-actions": ".github/workflows",
        "pip": "pyproject.toml",
        "npm": "package.json",
    }
    assert {ecosystem for ecosystem, _ in watched} == set(manifests)
    for ecosystem, directory in watched:
        assert (ROOT / directory.strip("/") / manifests[ecosystem]).exists(), (ecosystem, directory)
    assert ("pip", f"/{ADDON.name}") in watched
    for update in dependabot["updates"]:
        assert update["schedule"]["interval"] in {"daily", "weekly", "monthly"}


def test_yamllint_passes() -> None:
    linter = pytest.importorskip("yamllint.cli", reason="yamllint is not installed")
    with pytest.raises(SystemExit) as exit_info:
        linter.run(["--strict", "-c", str(ROOT / ".yamllint"), str(ROOT)])
    assert exit_info.value.code == 0


def test_every_yaml_file_parses() -> None:
    files = [
        p
        for p in ROOT.rglob("*.y*ml")
        if not {".venv", ".cache", "node_modules", ".git"} & set(p.parts)
    ]
    assert len(files) >= 8
    for path in files:
        yaml.safe_load(path.read_text())


def test_repository_scripts_pass_shellcheck() -> None:
    """What the lint workflow checks, checked here too: scripts/dev, .ci/run, scripts/*.sh."""
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is missing: scripts/dev test installs it with apt-get"
    scripts = [ROOT / "scripts" / "dev", ROOT / ".ci" / "run", *(ROOT / "scripts").glob("*.sh")]
    assert ROOT / "scripts" / "python_from_debian.sh" in scripts
    result = subprocess.run(
        [shellcheck, *map(str, scripts)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout
