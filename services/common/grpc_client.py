"""Client-side helpers: a channel and the bearer-token metadata every Catalyst call carries."""

from __future__ import annotations

import grpc


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


def channel(target: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(target)
