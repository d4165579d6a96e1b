"""`python -m services.common.mint_token --subject e-1 --role hr [--ttl 3600]`: prints a bearer
token signed by the local issuer, for local use and demos (refused in production)."""

from __future__ import annotations

import argparse

from services.common.auth import Role
from services.common.local_issuer import local_issuer
from services.common.settings import CommonSettings, load


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subject", required=True, help="employee id (or service name) the token speaks for")
    parser.add_argument(
        "--role",
        action="append",
        choices=[r.value for r in Role],
        help="role to grant; repeat for several (default: employee)",
    )
    parser.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")
    args = parser.parse_args(argv)
    if not args.subject.strip():
        parser.error("--subject must not be empty")
    if args.ttl <= 0:
        parser.error("--ttl must be positive")
    settings = load(CommonSettings)
    roles = [Role(r) for r in (args.role or [Role.EMPLOYEE.value])]
    token = local_issuer(settings).mint(args.subject.strip(), roles, args.ttl)
    print(token)
    return token


if __name__ == "__main__":
    main()
