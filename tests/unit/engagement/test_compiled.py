"""The engagement worker runs compiled modules (docs/decisions/0006, 0007): they must be built from the sources
next to them, since Python imports a compiled module in preference to its `.py`."""

from __future__ import annotations

import importlib.util
import sysconfig
from pathlib import Path

import pytest

SUFFIX = sysconfig.get_config_var("EXT_SUFFIX")
# module -> (its source, the library its code is compiled into: mypyc's modules are thin shims around the
# group library `planner__mypyc`, which is the only file a rebuild replaces when their source changed)
COMPILED = {
    "services.engagement._slice": ("_slice.c", "_slice"),
    "services.engagement.events": ("events.py", "planner__mypyc"),
    "services.engagement.batch": ("batch.py", "planner__mypyc"),
}


@pytest.mark.parametrize("module", sorted(COMPILED))
def test_the_compiled_module_is_what_runs_and_is_newer_than_its_source(module: str) -> None:
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None
    origin = Path(spec.origin)
    assert origin.name.endswith(SUFFIX), f"{module} runs from {origin.name}, not a compiled build: run `make ext`"
    source_name, library = COMPILED[module]
    source = origin.with_name(source_name)
    built = origin.with_name(library + SUFFIX)
    assert built.stat().st_mtime >= source.stat().st_mtime, f"{built.name} is older than {source.name}: run `make ext`"
