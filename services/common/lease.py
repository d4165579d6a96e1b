"""A lease in one Redis key: among replicas, only its holder does a singleton job (e.g. relaying an
outbox to Kafka), so two replicas never publish the same entry. It expires unless renewed."""

from __future__ import annotations

import redis.asyncio as aioredis

# Takes the lease when free, renews it when already ours; 1 when held, 0 when another owner holds it.
_TAKE = """
local owner = redis.call('GET', KEYS[1])
if owner == false or owner == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisLease:
    def __init__(self, redis: aioredis.Redis, key: str) -> None:
        self._key = key
        self._take = redis.register_script(_TAKE)
        self._release = redis.register_script(_RELEASE)

    async def hold(self, owner: str, seconds: float) -> bool:
        """Takes or renews the lease for `seconds`; False while another owner holds it."""
        return int(await self._take(keys=[self._key], args=[owner, int(seconds * 1000)])) == 1

    async def release(self, owner: str) -> None:
        """Gives the lease up early (only if `owner` still holds it), so a replica can take over at once."""
        await self._release(keys=[self._key], args=[owner])
