"""A user of the real Redis refused some commands: Redis answering, and refusing those."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import uuid4

from pydantic import SecretStr
from redis.asyncio import Redis

from shared.settings import RedisSettings


@asynccontextmanager
async def refusing(redis: Redis, *commands: str) -> AsyncIterator[RedisSettings]:
    """Settings of a user who may run any command but `commands` (deleted afterwards);
    `redis.acl_setuser(str(username), enabled=True, commands=["+xack"])` allows one again."""
    user, password = f"caravan-refused-{uuid4().hex[:8]}", uuid4().hex
    await redis.acl_setuser(
        user,
        enabled=True,
        passwords=[f"+{password}"],
        keys=["*"],
        channels=["*"],
        commands=["+@all", *(f"-{command}" for command in commands)],
    )
    try:
        yield RedisSettings(
            url=os.environ["REDIS_URL"], username=user, password=SecretStr(password)
        )
    finally:
        await redis.acl_deluser(user)
