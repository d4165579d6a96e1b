"""`catalyst import`: a history file (Viva Engage export or Catalyst JSON Lines) into the feed's
IngestInteractions, with a progress bar, resumable, idempotent, and nothing lost without a trace
(docs/import.md).

Resumable: after every batch the feed acknowledged, a checkpoint file records how many interactions (in the
source's time order) are done, with a fingerprint of the input files; a new run with the same files starts
after them. Idempotent: source ids are stable (`message:<id>`, or the file's own), so whatever is sent again
the feed counts as a duplicate. Bad rows go to a reject file naming file, line and field: those the reader
refuses, and those the feed refuses (its INVALID_ARGUMENT names `interactions[i].<field>`; the batch is sent
again without them).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import grpc
from catalyst.feed.v1 import feed_pb2, feed_pb2_grpc
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from services.cli.clients import CliError
from services.cli.config import CliSettings
from services.cli.sources import EMPLOYEE_KEYS, History, Reject, Row, read_jsonl, read_viva_engage
from services.common.auth import Role
from services.common.grpc_client import bearer
from services.common.local_issuer import local_issuer

COMMANDS = ("import",)
FORMATS = ("viva-engage", "jsonl")
REJECTED_EXIT = 3  # some rows were rejected: the run finished, the reject file says which
_INDEX = re.compile(r"^interactions\[(\d+)\]\.?(\S*):")
_RETRIED = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED)

Send = Callable[[str, Sequence[feed_pb2.ImportedInteraction]], feed_pb2.IngestInteractionsResponse]


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="import an intranet's history (Viva Engage export or Catalyst JSON Lines)")
    p.add_argument("path", type=Path, help="the export's directory (Users.csv, Messages.csv) or a .jsonl file")
    p.add_argument("--format", choices=FORMATS, help="default: viva-engage for a directory, jsonl for a file")
    p.add_argument("--source", default="", help="source name, part of every event id (default: the format)")
    p.add_argument(
        "--employee-key",
        choices=EMPLOYEE_KEYS,
        default="email",
        help="Viva Engage: the Users.csv column that is the Catalyst employee id (email, or id as yammer:<id>)",
    )
    p.add_argument("--state-dir", type=Path, help="checkpoint and reject file (default: .import/<source>)")
    p.add_argument("--batch-size", type=int, default=500, help="interactions per call (the feed takes at most 500)")
    p.add_argument("--restart", action="store_true", help="ignore the checkpoint and send everything again")


@dataclass
class Checkpoint:
    """How far the feed acknowledged the source's interactions, for these exact input files."""

    source: str
    fingerprint: str
    done: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0

    @classmethod
    def load(cls, path: Path, source: str, fingerprint: str, restart: bool) -> Checkpoint:
        if restart or not path.exists():
            return cls(source, fingerprint)
        try:
            stored = cls(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as exc:
            raise CliError(f"{path}: not a checkpoint of catalyst import ({exc}); use --restart") from None
        if (stored.source, stored.fingerprint) != (source, fingerprint):
            raise CliError(
                f"{path}: the checkpoint belongs to other input files or another source; use --restart to send "
                "everything again (the feed drops what it already has) or --state-dir for a separate import"
            )
        return stored

    def save(self, path: Path) -> None:
        """Atomically (a crash leaves the old checkpoint or the new one, never half of one)."""
        part = path.with_suffix(".tmp")
        part.write_text(json.dumps(asdict(self)), encoding="utf-8")
        os.replace(part, path)


class RejectFile:
    """JSON Lines of rejected rows; a row already in it (a batch sent again after a crash) is not repeated."""

    def __init__(self, path: Path, fresh: bool) -> None:
        self.path = path
        if fresh:
            path.write_text("", encoding="utf-8")
        self._seen = set()
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                entry = json.loads(line)
                self._seen.add((entry["file"], entry["line"]))

    def add(self, rejects: Sequence[Reject]) -> int:
        new = [r for r in rejects if (r.file, r.line) not in self._seen]
        with self.path.open("a", encoding="utf-8") as out:
            for r in new:
                out.write(json.dumps(r.as_json(), ensure_ascii=False) + "\n")
                self._seen.add((r.file, r.line))
        return len(new)


def fingerprint(paths: Sequence[Path]) -> str:
    """Name, size and modification time of every input file: a changed file is a different import."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        stat = path.stat()
        digest.update(f"{path.name}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def read(path: Path, fmt: str, employee_key: str) -> tuple[History, list[Path]]:
    try:
        if fmt == "jsonl":
            return read_jsonl(path), [path]
        return read_viva_engage(path, employee_key), [path / "Users.csv", path / "Messages.csv"]
    except (OSError, ValueError) as exc:
        raise CliError(str(exc)) from None


def send_batch(
    send: Send, source: str, rows: list[Row], retry_seconds: float = 1.0, attempts: int = 30
) -> tuple[feed_pb2.IngestInteractionsResponse, list[Reject]]:
    """Sends one batch; rows the feed refuses (naming `interactions[i]`) are taken out and the rest sent again.
    Transient failures are retried; anything else stops the import (the checkpoint keeps its place)."""
    rejected: list[Reject] = []
    pending = list(rows)
    failures = 0
    while pending:
        try:
            return send(source, [r.interaction for r in pending]), rejected
        except grpc.RpcError as exc:
            code, details = exc.code(), exc.details() or ""
            if code in _RETRIED and failures < attempts:
                failures += 1
                time.sleep(retry_seconds)
                continue
            found = _INDEX.match(details) if code == grpc.StatusCode.INVALID_ARGUMENT else None
            if found is None or int(found.group(1)) >= len(pending):
                raise CliError(f"the feed refused the import: {code.name}: {details}") from None
            bad = pending.pop(int(found.group(1)))
            rejected.append(Reject(bad.file, bad.line, found.group(2) or "interaction", "the feed: " + details))
    return feed_pb2.IngestInteractionsResponse(), rejected


def grpc_sender(settings: CliSettings) -> tuple[Send, Callable[[], None]]:
    """IngestInteractions over one channel, with a service token (minted locally unless one is configured)."""
    token = settings.token or local_issuer(settings).mint("catalyst-import", [Role.SERVICE], ttl_seconds=24 * 3600)
    ch = grpc.insecure_channel(settings.feed_target)
    stub = feed_pb2_grpc.FeedServiceStub(ch)

    def send(source: str, items: Sequence[feed_pb2.ImportedInteraction]) -> feed_pb2.IngestInteractionsResponse:
        request = feed_pb2.IngestInteractionsRequest(source=source, interactions=items)
        timeout = max(60.0, settings.call_timeout_seconds)
        return stub.IngestInteractions(request, metadata=bearer(token), timeout=timeout)

    return send, ch.close


def import_history(args: argparse.Namespace, send: Send, console: Console) -> int:
    """Runs the import; returns the exit code (REJECTED_EXIT when rows were rejected)."""
    fmt = args.format or ("viva-engage" if args.path.is_dir() else "jsonl")
    source = args.source or fmt
    if not 1 <= args.batch_size <= 500:
        raise CliError("--batch-size must be between 1 and 500 (the feed's limit per call)")
    history, inputs = read(args.path, fmt, args.employee_key)
    state = args.state_dir or Path(".import") / source
    state.mkdir(parents=True, exist_ok=True)
    checkpoint_path = state / "checkpoint.json"
    checkpoint = Checkpoint.load(checkpoint_path, source, fingerprint(inputs), args.restart)
    fresh = checkpoint.done == 0
    rejects = RejectFile(state / "rejects.jsonl", fresh)
    checkpoint.rejected += rejects.add(history.rejects)
    rows = history.rows
    if checkpoint.done:
        console.print(f"Resuming after {checkpoint.done:,} of {len(rows):,} interactions ({checkpoint_path})")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(f"importing {source}", total=len(rows), completed=checkpoint.done)
        while checkpoint.done < len(rows):
            batch = rows[checkpoint.done : checkpoint.done + args.batch_size]
            response, refused = send_batch(send, source, batch)
            checkpoint.rejected += rejects.add(refused)
            checkpoint.accepted += response.accepted
            checkpoint.duplicates += response.duplicates
            checkpoint.done += len(batch)
            checkpoint.save(checkpoint_path)
            progress.update(task, completed=checkpoint.done)
    skipped = ", ".join(f"{n:,} {why}" for why, n in sorted(history.skipped.items())) or "none"
    console.print(
        f"{source}: {len(rows):,} interactions; {checkpoint.accepted:,} new, {checkpoint.duplicates:,} already "
        f"imported; skipped: {skipped}; rejected: {checkpoint.rejected:,}"
        + (f" (see {rejects.path})" if checkpoint.rejected else "")
    )
    return REJECTED_EXIT if checkpoint.rejected else 0
