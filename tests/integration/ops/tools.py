"""Finds the third-party tools the operations tests drive (installed by `bash deploy/tools.sh`).

A missing tool fails the test with the command that installs it: these tests never skip.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CACHE_BIN = ROOT / ".cache" / "bin"
K8S_SCHEMAS = ROOT / ".cache" / "k8s-schemas" / "v1.33.0-strict"
NODE_CLIENT = ROOT / "tests" / "clients" / "node"


def tool(name: str) -> str:
    """Absolute path of `name`, from .cache/bin first, then PATH."""
    local = CACHE_BIN / name
    if local.is_file():
        return str(local)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: run `make tools` (part of `make test`)", pytrace=False)
    return found


def k8s_schema_location() -> str:
    """kubeconform's -schema-location template for the offline Kubernetes schemas."""
    if not (K8S_SCHEMAS / ".done").is_file():
        pytest.fail(f"Kubernetes schemas missing in {K8S_SCHEMAS}: run `bash deploy/tools.sh`", pytrace=False)
    return f"{K8S_SCHEMAS}/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json"


def node_client() -> Path:
    """The Node.js client package, with its dependencies installed."""
    if not (NODE_CLIENT / "node_modules" / "@grpc" / "grpc-js").is_dir():
        pytest.fail("the Node.js client's packages are missing: run `bash deploy/tools.sh`", pytrace=False)
    return NODE_CLIENT
