"""Policy files for tests: the default policy (deploy/config/policy.yaml) with some visibility switches changed."""

from __future__ import annotations

from pathlib import Path

import yaml

from services.common.policy import DEFAULT_POLICY_FILE


def policy_file(directory: Path, **visibility: object) -> Path:
    """Writes the default policy with the given `visibility` switches into `directory`; returns its path."""
    policy = yaml.safe_load(DEFAULT_POLICY_FILE.read_text())
    policy["visibility"].update(visibility)
    path = directory / f"policy-{'-'.join(f'{k}-{v}' for k, v in sorted(visibility.items())) or 'default'}.yaml"
    path.write_text(yaml.safe_dump(policy))
    return path


def ranking_policy(directory: Path) -> Path:
    """Rankings and colleagues' scores of the people who opted in (a company whose works council agreed)."""
    return policy_file(directory, rankings="opted_in", colleague_scores="opted_in")
