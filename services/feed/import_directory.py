"""`python -m services.feed.import_directory FILE`: loads a directory export (CSV or YAML) into the
feed through the HR RPC UpsertEmployees, so it takes the same checks and emits the same events.

CSV: a header with employee_id, display_name, department_id and optionally is_manager (true/false/1/0).
YAML: a list of mappings with the same keys, or {employees: [...]}.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import sys
from pathlib import Path

import yaml
from catalyst.feed.v1 import feed_pb2, feed_pb2_grpc

from services.common.auth import Role
from services.common.grpc_client import bearer, channel
from services.common.local_issuer import local_issuer
from services.feed.config import FeedSettings

REQUIRED = ("employee_id", "display_name", "department_id")
_TRUE = {"1", "true", "yes", "y", "x"}
_FALSE = {"", "0", "false", "no", "n"}


class DirectoryFileError(ValueError):
    pass


def _flag(value: object, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value if value is not None else "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise DirectoryFileError(f"{where}: is_manager must be true or false, not '{value}'")


def _rows(records: list[dict], name: str) -> list[feed_pb2.Employee]:
    employees = []
    for i, record in enumerate(records, start=1):
        where = f"{name} entry {i}"
        if not isinstance(record, dict):
            raise DirectoryFileError(f"{where}: expected a mapping with {', '.join(REQUIRED)}")
        missing = [k for k in REQUIRED if not str(record.get(k) or "").strip()]
        if missing:
            raise DirectoryFileError(f"{where}: missing {', '.join(missing)}")
        employees.append(
            feed_pb2.Employee(
                employee_id=str(record["employee_id"]).strip(),
                display_name=str(record["display_name"]).strip(),
                department_id=str(record["department_id"]).strip(),
                is_manager=_flag(record.get("is_manager"), where),
            )
        )
    if not employees:
        raise DirectoryFileError(f"{name}: contains no employees")
    return employees


def parse_directory(text: str, name: str) -> list[feed_pb2.Employee]:
    """Reads CSV (by extension .csv) or YAML (.yaml/.yml) into directory entries."""
    suffix = Path(name).suffix.lower()
    if suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        missing = [k for k in REQUIRED if k not in (reader.fieldnames or [])]
        if missing:
            raise DirectoryFileError(f"{name}: the header lacks {', '.join(missing)}")
        return _rows(list(reader), name)
    if suffix in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise DirectoryFileError(f"{name}: not valid YAML: {exc}") from None
        if isinstance(data, dict):
            data = data.get("employees")
        if not isinstance(data, list):
            raise DirectoryFileError(f"{name}: expected a list of employees (or a mapping with 'employees')")
        return _rows(data, name)
    raise DirectoryFileError(f"{name}: use a .csv, .yaml or .yml file")


async def upload(target: str, token: str, employees: list[feed_pb2.Employee], batch: int) -> int:
    changed = 0
    async with channel(target) as ch:
        stub = feed_pb2_grpc.FeedServiceStub(ch)
        for start in range(0, len(employees), batch):
            request = feed_pb2.UpsertEmployeesRequest(employees=employees[start : start + batch])
            response = await stub.UpsertEmployees(request, metadata=bearer(token), timeout=60)
            changed += response.upserted
    return changed


def main(argv: list[str] | None = None) -> int:
    settings = FeedSettings()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path)
    parser.add_argument("--target", default=f"127.0.0.1:{settings.grpc_port}", help="feed gRPC address")
    parser.add_argument("--token", help="HR bearer token (default: mint one with the local issuer)")
    args = parser.parse_args(argv)
    try:
        employees = parse_directory(args.file.read_text(encoding="utf-8"), str(args.file))
    except (OSError, DirectoryFileError) as exc:
        print(f"import_directory: {exc}", file=sys.stderr)
        return 2
    token = args.token or local_issuer(settings).mint("directory-import", [Role.HR], 600)
    changed = asyncio.run(upload(args.target, token, employees, settings.max_directory_batch))
    print(f"{len(employees)} employees read, {changed} created or changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
