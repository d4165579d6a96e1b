"""mypy builds the compiled planner (setup.py) in three places; they must use the same version."""

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
