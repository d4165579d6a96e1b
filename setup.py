"""Compiled parts of the engagement worker's hot path; the rest of the packaging is in pyproject.toml.

* `services/engagement/_slice.c`, the state slices in C (docs/decisions/0006);
* `services/engagement/_plan.c`, a record's decoding, validation and mapping to ops in C (docs/decisions/0008),
  with the Envelope's protobuf-c code generated here from proto/ (the contract stays the one source);
* the scoring rules the emitter calls per published employee (`scoring.py`), compiled by mypyc from plain,
  type-checked Python (docs/decisions/0007). Python imports the compiled module in preference to the source
  next to it, so `make ext` rebuilds them whenever a source changes.

Building needs a C compiler, the Python headers, protobuf-c (`make setup` installs them on Debian), mypy and
grpcio-tools.
"""

import shutil
import subprocess
import sys
from pathlib import Path

from mypyc.build import mypycify
from setuptools import Extension, setup

GENERATED = Path(".cache/pb-c")
# The Envelope and every message it can carry; the last one is found on grpc_tools' include path.
PROTOS = sorted(str(p) for p in Path("proto/catalyst/events/v1").glob("*.proto")) + ["google/protobuf/timestamp.proto"]


def protobuf_c_sources() -> list[str]:
    """Generates the C code for the Envelope's protos (protoc from grpcio-tools, the protoc-gen-c plugin)."""
    plugin = shutil.which("protoc-gen-c")
    if plugin is None:
        sys.exit("protoc-gen-c is missing: install protobuf-c-compiler and libprotobuf-c-dev (make setup does)")
    if GENERATED.exists():
        shutil.rmtree(GENERATED)
    GENERATED.mkdir(parents=True)
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-Iproto", f"--plugin=protoc-gen-c={plugin}",
         f"--c_out={GENERATED}", *PROTOS],
        check=True,
    )
    return sorted(str(p) for p in GENERATED.rglob("*.pb-c.c"))


setup(
    ext_modules=[
        Extension(
            "services.engagement._slice",
            ["services/engagement/_slice.c"],
            extra_compile_args=["-O2", "-Wall", "-Werror"],
        ),
        Extension(
            "services.engagement._plan",
            ["services/engagement/_plan.c", *protobuf_c_sources()],
            include_dirs=[str(GENERATED)],
            libraries=["protobuf-c"],
            extra_compile_args=["-O2", "-Wall", "-Werror"],
        ),
        *mypycify(["services/engagement/scoring.py"], opt_level="3", target_dir=".cache/mypyc"),
    ]
)
