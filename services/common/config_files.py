"""Loading a validated YAML config file (policy, scoring model, badge rules, programme catalogue) with one
readable error that names the file and every location, so a mistake stops the service at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def load_validated(
    path: Path, schema: type[M], what: str, error: type[Exception] = SystemExit, context: dict[str, Any] | None = None
) -> M:
    """`path` read as YAML and validated against `schema`; `error` (SystemExit: the process stops with the
    message) says what is wrong, e.g. `invalid policy file deploy/config/policy.yaml:\n  visibility.rankings: ...`."""
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise error(f"cannot read {what} {path}: {exc}") from None
    try:
        return schema.model_validate(raw, context=context)
    except ValidationError as exc:
        lines = [f"  {'.'.join(str(p) for p in err['loc']) or '(file)'}: {err['msg']}" for err in exc.errors()]
        raise error(f"invalid {what} {path}:\n" + "\n".join(lines)) from None
