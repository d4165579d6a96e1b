"""The compiled planner (setup.py) is built in three places; they must use the same versions of its build tools."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_mypy_is_pinned_to_one_version_for_every_build() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = {
        "build-system": [r for r in project["build-system"]["requires"] if r.startswith("mypy")],
        "dev": [r for r in project["project"]["optional-dependencies"]["dev"] if r.startswith("mypy")],
        "Dockerfile": re.findall(r"mypy==[\w.]+", (ROOT / "deploy/docker/Dockerfile").read_text()),
    }
    assert all(len(found) == 1 for found in pins.values()), pins
    assert len({found[0] for found in pins.values()}) == 1, pins


def test_the_build_generates_the_planners_protobuf_code_with_the_projects_grpcio_tools() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    build = [r for r in project["build-system"]["requires"] if r.startswith("grpcio-tools")]
    runtime = [r for r in project["project"]["dependencies"] if r.startswith("grpcio-tools")]
    assert len(build) == 1 and build == runtime, (build, runtime)
