"""Arguments packed once (`bulk`) make the same RESP command as hiredis packing them each time."""

from __future__ import annotations

import hiredis

from services.common.redis_batch import bulk, command


def test_prepacked_arguments_make_the_same_command_as_hiredis() -> None:
    packed = command([bulk(b"ZADD"), bulk(b"eng:dirty:3"), bulk(b"1.5"), bulk("émile".encode())])
    assert packed == hiredis.pack_command(("ZADD", "eng:dirty:3", "1.5", "émile"))
