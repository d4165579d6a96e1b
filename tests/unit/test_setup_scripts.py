"""What `make demo` and `make test` install on a fresh Debian machine (issue 23): the demo only what it runs,
the tests their tools too, built with a Go toolchain new enough for them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def dry_run(target: str) -> str:
    """The commands `make <target>` would run, without running them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    done = subprocess.run(["make", "-n", target], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_demo_installs_no_test_tools_and_the_tests_install_them() -> None:
    assert "deploy/tools.sh" not in dry_run("demo")
    test = dry_run("test")
    assert "deploy/tools.sh" in test and "deploy/system-deps.sh" in test


@pytest.mark.parametrize(
    ("printed", "fits"),
    [
        ("go version go1.19.8 linux/amd64", False),  # Debian 12's golang-go
        ("go version go1.23.9 linux/amd64", False),
        ("go version go1.24.0 linux/amd64", True),  # kubeconform v0.7.0's go.mod asks for 1.24
        ("go version go1.26.8 linux/amd64", True),
        ("", False),
    ],
)
def test_only_a_go_new_enough_for_the_tools_is_used(tmp_path: Path, printed: str, fits: bool) -> None:
    go = tmp_path / "go"
    go.write_text(f"#!/bin/sh\necho '{printed}'\n")
    go.chmod(0o755)
    check = f"source {ROOT / 'deploy/tools.sh'}; go_fits {go}"
    assert (subprocess.run(["bash", "-c", check], timeout=30).returncode == 0) is fits
