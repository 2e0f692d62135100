"""The one meaning of "Redis is down": the errors a client raises when the server cannot be reached
or stops answering (refused, reset, timed out). Every retry loop, every 503 and the watch tool catch
this group, imported from here (or through `shared.streams`), never a copy of it.

A leaf module (it imports only redis-py), so that `shared.metrics`, which `shared.streams` imports,
can use it too. The sync and the asyncio clients raise the same classes.
"""

from __future__ import annotations

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# OSError covers the socket's own errors (the builtin ConnectionError among them).
REDIS_DOWN: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, OSError)
