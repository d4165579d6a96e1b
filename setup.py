"""The C extension of the engagement worker's hot path (docs/decisions/0006); the rest is in pyproject.toml.

Building it needs a C compiler and the Python headers (`make setup` installs them on Debian).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "services.engagement._slice",
            ["services/engagement/_slice.c"],
            extra_compile_args=["-O2", "-Wall", "-Werror"],
        )
    ]
)
