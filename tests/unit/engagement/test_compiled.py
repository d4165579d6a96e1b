"""The engagement worker runs compiled modules (docs/decisions/0006, 0007): they must be built from the sources
next to them, since Python imports a compiled module in preference to its `.py`."""

from __future__ import annotations

import importlib.util
import sysconfig
from pathlib import Path

import pytest

SUFFIX = sysconfig.get_config_var("EXT_SUFFIX")
COMPILED = {
    "services.engagement._slice": "_slice.c",
    "services.engagement.events": "events.py",
    "services.engagement.batch": "batch.py",
}


@pytest.mark.parametrize("module", sorted(COMPILED))
def test_the_compiled_module_is_what_runs_and_is_newer_than_its_source(module: str) -> None:
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None
    built = Path(spec.origin)
    assert built.name.endswith(SUFFIX), f"{module} runs from {built.name}, not a compiled build: run `make ext`"
    source = built.with_name(COMPILED[module])
    assert built.stat().st_mtime >= source.stat().st_mtime, f"{built.name} is older than {source.name}: run `make ext`"
