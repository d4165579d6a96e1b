"""The README's walkthrough and the runnable blocks of docs/operations.md, run as written against `make up`.

Each document's blocks run in order in one bash (`set -euo pipefail`, so variables carry from block to block and
any failing command or gRPC error status fails the run), from the repository root, with the environment of a
fresh terminal and the runtime state in a temporary directory. The shell gets a network namespace of its own
(`unshare`): `make up` takes the default ports (Kafka 9092, Redis 6379, gRPC 50051-50053, metrics 9101-9106)
the documents name, whatever else runs on the machine, including the broker `make test` started for the other
tests. Waits are the documents' own: `make up` waits for every port, `make seed` for a badge event on the topic.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT, unavailable

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

README = ROOT / "README.md"
OPERATIONS = ROOT / "docs" / "operations.md"
WALKTHROUGH = ("Running it yourself", "Calling the APIs")
RUNNABLE = "<!-- runnable -->"
MARK = "::block"
FENCE = re.compile(r"^(\s*)```(\w*)\s*$")
SCRIPT_TIMEOUT_SECONDS = 900
# A fresh terminal has none of what `make test` or the developer's shell set for the services and make.
INHERITED = re.compile(r"^(CATALYST_|MAKE|MFLAGS$|PYTHONPATH$|PYTHON$|VIRTUAL_ENV$)")

# What a block's output must show besides a zero exit status: (document, command in the block, text in its output).
# An answer that exits 0 but says nothing (GetBadges `{}`, an empty topic for kcat) fails here.
EXPECTED = [
    (README, "make seed", "is an Intranet Ambassador"),
    (README, "FeedService/CreatePost", '"post_id"'),
    (README, "EngagementService/GetScore", '"total"'),
    (README, "RecognitionService/GetBadges", '"intranet_ambassador"'),
    (README, "RespondToInvitation", "AMBASSADOR_STATUS_ACCEPTED"),
    (README, "protoc --decode catalyst.events.v1.Envelope", "badge_granted {"),
    (README, "ambassadors", "accepted"),
    (README, "catalyst endorse", "Endorsed"),
    (OPERATIONS, "FeedService/CreatePost", '"post_id"'),
    (OPERATIONS, "protoc --decode catalyst.events.v1.Envelope", "badge_granted {"),
    (OPERATIONS, "feed-client.mjs", '"post_id"'),
]


@dataclass(frozen=True)
class Block:
    """A fenced shell block: where it is (`README.md:42`), under which `##` heading, whether the line before it
    marks it runnable, and its text."""

    source: str
    section: str
    runnable: bool
    text: str


def shell_blocks(path: Path) -> Iterator[Block]:
    """Every ```bash block of a markdown file, dedented when it sits in a list."""
    lines = path.read_text().splitlines()
    section, i = "", 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            section = line[3:].strip()
        fence = FENCE.match(line)
        if fence is None:
            i += 1
            continue
        indent, language, start = len(fence.group(1)), fence.group(2), i
        i += 1
        while not FENCE.match(lines[i]):
            i += 1
        if language in ("bash", "sh"):
            text = "\n".join(body[indent:] for body in lines[start + 1 : i])
            marked = start > 0 and lines[start - 1].strip() == RUNNABLE
            yield Block(f"{path.relative_to(ROOT)}:{start + 1}", section, marked, text)
        i += 1


def walkthrough() -> list[Block]:
    return [b for b in shell_blocks(README) if b.section in WALKTHROUGH]


def operations() -> list[Block]:
    return [b for b in shell_blocks(OPERATIONS) if b.runnable]


@pytest.fixture(scope="module")
def own_network() -> list[str]:
    """The command prefix that runs a program in a network namespace of its own with loopback up."""
    prefix = ["unshare", "--net"] if os.geteuid() == 0 else ["unshare", "--user", "--map-root-user", "--net"]
    probe = subprocess.run([*prefix, "ip", "link", "set", "lo", "up"], capture_output=True, text=True)
    if probe.returncode != 0:
        detail = f"`{' '.join(prefix)} ip link set lo up` (util-linux, iproute2): {probe.stderr.strip()}"
        unavailable(f"a network namespace of its own for `make up` on the default ports, {detail}")
    return prefix


@dataclass
class Run:
    returncode: int
    transcript: str
    outputs: dict[str, str]
    leftovers: list[str]


def run_blocks(blocks: Sequence[Block], prefix: list[str], state: Path) -> Run:
    """Runs the blocks in one bash in its own network namespace; afterwards stops, by the pids in the state
    directory's pid files, whatever the blocks left running (and reports it)."""
    lines = ["set -euo pipefail", "ip link set lo up"]
    for block in blocks:
        lines += [f"printf '\\n%s %s\\n' {MARK} {shlex.quote(block.source)}", block.text]
    script = state / "blocks.sh"
    script.write_text("\n".join(lines) + "\n")
    env = {k: v for k, v in os.environ.items() if not INHERITED.match(k)} | {"CATALYST_RUN_DIR": str(state / "run")}
    log = state / "transcript.log"
    with log.open("wb") as out:
        shell = subprocess.Popen(
            [*prefix, "bash", str(script)], cwd=ROOT, env=env, stdout=out, stderr=out, start_new_session=True
        )
        try:
            returncode = shell.wait(SCRIPT_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(shell.pid, signal.SIGKILL)
            returncode = shell.wait()
    transcript = log.read_text(errors="replace")
    return Run(returncode, transcript, split_outputs(transcript), stop_leftovers(state / "run"))


def split_outputs(transcript: str) -> dict[str, str]:
    """Each block's output, by the block's source, from the markers the script prints before every block."""
    outputs: dict[str, str] = {}
    current = None
    for line in transcript.splitlines():
        if line.startswith(f"{MARK} "):
            current = line.removeprefix(f"{MARK} ")
            outputs[current] = ""
        elif current is not None:
            outputs[current] += line + "\n"
    return outputs


def stop_leftovers(run_dir: Path) -> list[str]:
    """Kills the processes of this run whose pid files are still there; returns their names. A pid counts as
    this run's only while its environment names this run's state directory (pids are reused)."""
    left = []
    for pidfile in sorted(run_dir.glob("**/*.pid")):
        pid = pidfile.read_text().strip()
        try:
            environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"CATALYST_RUN_DIR={run_dir}".encode() in environment:
            os.kill(int(pid), signal.SIGKILL)
            left.append(pidfile.stem)
    return left


def service_logs(run_dir: Path, lines: int = 15) -> str:
    logs = sorted(run_dir.glob("services/*.log")) + sorted(run_dir.glob("*/logs/*.log"))
    return "\n".join(f"== {p.name}\n" + "\n".join(p.read_text(errors="replace").splitlines()[-lines:]) for p in logs)


def check(run: Run, blocks: Sequence[Block], document: Path, state: Path) -> None:
    if run.returncode != 0:
        failed = list(run.outputs)[-1] if run.outputs else "before the first block"
        pytest.fail(
            f"the block at {failed} failed (exit status {run.returncode}); as written:\n"
            f"{next((b.text for b in blocks if b.source == failed), '')}\n\n"
            f"transcript (last 80 lines):\n{chr(10).join(run.transcript.splitlines()[-80:])}\n\n"
            f"logs:\n{service_logs(state / 'run')}",
            pytrace=False,
        )
    assert not run.leftovers, f"still running after the blocks ended: {run.leftovers}"
    for expected_document, command, text in EXPECTED:
        if expected_document != document:
            continue
        holding = [b for b in blocks if command in b.text]
        assert holding, f"{document.name} no longer runs `{command}`: update EXPECTED in {Path(__file__).name}"
        output = "".join(run.outputs.get(b.source, "") for b in holding)
        assert text in output, f"`{command}` ({holding[0].source}) printed no {text!r}:\n{output[-3000:]}"


def test_the_readme_walkthrough_runs_as_written(own_network: list[str], tmp_path: Path) -> None:
    blocks = walkthrough()
    assert {b.section for b in blocks} == set(WALKTHROUGH), "a walkthrough section lost its shell blocks"
    assert "make up" in blocks[0].text and blocks[-1].text.strip().startswith("make down")
    run = run_blocks(blocks, own_network, tmp_path)
    check(run, blocks, README, tmp_path)


def test_the_runnable_operations_commands_run_as_written(own_network: list[str], tmp_path: Path) -> None:
    """The operator's guide assumes a running system: `make up` before its blocks, `make down` after."""
    blocks = operations()
    assert len(blocks) >= 2, f"docs/operations.md marks fewer blocks {RUNNABLE} than it did"
    setup = Block("make up", "", True, "make up")
    teardown = Block("make down", "", True, "make down")
    run = run_blocks([setup, *blocks, teardown], own_network, tmp_path)
    check(run, blocks, OPERATIONS, tmp_path)
