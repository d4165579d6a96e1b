"""Compiled parts of the engagement worker's hot path; the rest of the packaging is in pyproject.toml.

* `services/engagement/_slice.c`, the state slices in C (docs/decisions/0006);
* the batch planner (`events.py`, `batch.py`) and the scoring rules it and the emitter call (`scoring.py`),
  compiled by mypyc from their plain, type-checked Python (docs/decisions/0007). Python imports the compiled module in preference to the source next to it, so
  `make ext` rebuilds both whenever a source changes.

Building needs a C compiler and the Python headers (`make setup` installs them on Debian) and mypy.
"""

from mypyc.build import mypycify
from setuptools import Extension, setup

PLANNER = [f"services/engagement/{name}.py" for name in ("events", "batch", "scoring")]

setup(
    ext_modules=[
        Extension(
            "services.engagement._slice",
            ["services/engagement/_slice.c"],
            extra_compile_args=["-O2", "-Wall", "-Werror"],
        ),
        *mypycify(PLANNER, opt_level="3", group_name="services.engagement.planner", target_dir=".cache/mypyc"),
    ]
)
