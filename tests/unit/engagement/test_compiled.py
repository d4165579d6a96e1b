"""The engagement worker runs compiled modules (docs/decisions/0006, 0007): they must be built from the sources
next to them, since Python imports a compiled module in preference to its `.py`."""

from __future__ import annotations

import inspect
import sysconfig
from pathlib import Path

import services.engagement
from services.engagement import _slice, batch, events, scoring

SUFFIX = sysconfig.get_config_var("EXT_SUFFIX")
PACKAGE = Path(services.engagement.__file__).resolve().parent
# source -> the library its code is compiled into (mypyc's modules are thin shims around the group library
# `planner__mypyc`, the only file a rebuild replaces when their source changed)
BUILDS = {"_slice.c": "_slice", **{f"{name}.py": "planner__mypyc" for name in ("events", "batch", "scoring")}}


def test_the_compiled_modules_are_what_runs() -> None:
    assert all(inspect.isbuiltin(f) for f in (events.check, batch.plan, scoring.figures)), (
        "the planner runs from source: run `make ext`"
    )
    assert inspect.isbuiltin(_slice.write)


def test_every_build_is_newer_than_its_source() -> None:
    for source, library in BUILDS.items():
        built = PACKAGE / (library + SUFFIX)
        assert built.exists(), f"{built.name} is missing: run `make ext`"
        assert built.stat().st_mtime >= (PACKAGE / source).stat().st_mtime, (
            f"{built.name} is older than {source}: run `make ext`"
        )
