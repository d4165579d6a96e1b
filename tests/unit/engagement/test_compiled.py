"""The engagement worker runs compiled modules (docs/decisions/0006, 0007, 0008): they must be built from the
sources next to them, since Python imports a compiled module in preference to its `.py`."""

from __future__ import annotations

import inspect
import sysconfig
from pathlib import Path

import services.engagement
from services.engagement import _plan, _slice, scoring

SUFFIX = sysconfig.get_config_var("EXT_SUFFIX")
PACKAGE = Path(services.engagement.__file__).resolve().parent
# source -> the library its code is compiled into (mypyc's module is a thin shim around `scoring__mypyc`, the
# only file a rebuild replaces when its source changed); the planner's also holds the code generated from proto/
BUILDS = {"_slice.c": "_slice", "_plan.c": "_plan", "scoring.py": "scoring__mypyc"}


def test_the_compiled_modules_are_what_runs() -> None:
    assert inspect.isbuiltin(scoring.figures), "scoring runs from source: run `make ext`"
    assert inspect.isbuiltin(_slice.write)
    assert inspect.ismethoddescriptor(_plan.Planner.plan)


def test_every_build_is_newer_than_its_source_and_none_is_left_over() -> None:
    for source, library in BUILDS.items():
        built = PACKAGE / (library + SUFFIX)
        assert built.exists(), f"{built.name} is missing: run `make ext`"
        assert built.stat().st_mtime >= (PACKAGE / source).stat().st_mtime, (
            f"{built.name} is older than {source}: run `make ext`"
        )
    for proto in (PACKAGE.parents[1] / "proto").rglob("*.proto"):
        assert (PACKAGE / ("_plan" + SUFFIX)).stat().st_mtime >= proto.stat().st_mtime, (
            f"the planner is older than {proto.name}: run `make ext`"
        )
    expected = {library + SUFFIX for library in BUILDS.values()} | {"scoring" + SUFFIX}
    stale = {p.name for p in PACKAGE.glob("*" + SUFFIX)} - expected
    assert not stale, f"compiled modules without a source would shadow it: {sorted(stale)}; run `make ext`"
