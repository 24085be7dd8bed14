"""Events across gateway replicas through Redis: one replica watches each source, all deliver.

Each source has a leader, elected with a Redis key that expires unless renewed (``SET NX PX``):
only the leader polls that source, so a change is detected once for the whole deployment. The
leader publishes every event on one Redis channel; every replica, leader included, receives it
and hands it to its own subscribers, so each subscriber gets each event exactly once whichever
replica it is connected to. The leader also stores its watermarks, so a successor resumes there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from datetime import datetime

import redis.asyncio as redis
from redis.exceptions import RedisError

from sources import Position
from sources._changes import CaseEvent, event_from_json, event_to_json

log = logging.getLogger("complaint_graph.bus")


class BusUnavailable(Exception):
    """Redis did not take an event or give a watermark; the caller tries again later."""


class RedisBus:
    def __init__(self, url: str, prefix: str = "complaint-graph", lease_seconds: float = 10.0):
        self.client = redis.from_url(url, decode_responses=True)
        self.prefix = prefix
        self.lease_ms = int(lease_seconds * 1000)
        self.replica = uuid.uuid4().hex
        self.channel = f"{prefix}:events"
        self.leading: set[str] = set()
        self._listener: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()
        """Set while the channel is subscribed: clear from its loss until it is subscribed
        again, when events published meanwhile never reach this replica."""

    async def start(
        self, deliver: Callable[[CaseEvent], None], interrupted: Callable[[], None]
    ) -> None:
        """Hand every event on the channel to ``deliver``. Should the channel's connection
        drop, ``interrupted`` is called (events published meanwhile never reach this replica)
        and the channel is subscribed again."""
        pubsub = self.client.pubsub()
        await pubsub.subscribe(self.channel)
        self.subscribed.set()
        self._listener = asyncio.create_task(
            self._listen(pubsub, deliver, interrupted), name="redis-events"
        )

    async def _listen(
        self,
        pubsub: redis.client.PubSub,
        deliver: Callable[[CaseEvent], None],
        interrupted: Callable[[], None],
    ) -> None:
        while True:
            try:
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        deliver(event_from_json(message["data"]))
            except RedisError as exc:
                log.warning("events: Redis channel lost, subscribing again: %s", exc)
                self.subscribed.clear()
                interrupted()
            finally:
                await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]  # typed from redis 8
            pubsub = await self._subscribe_again()
            self.subscribed.set()

    async def _subscribe_again(self) -> redis.client.PubSub:
        delay = 0.05
        while True:
            pubsub = self.client.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                return pubsub
            except RedisError as exc:
                await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]  # typed from redis 8
                log.warning("events: Redis channel unavailable, retrying: %s", exc)
                await asyncio.sleep(delay)  # back off: Redis is down, not a race
                delay = min(delay * 2, 2.0)

    async def lead(self, source_id: str) -> bool:
        """Take or keep the lease on watching ``source_id``; False while another replica has it,
        or while Redis does not answer within a third of the lease (a renewal that took longer
        could end after the lease did, with another replica watching by then)."""
        key = f"{self.prefix}:leader:{source_id}"
        leading = False
        try:
            async with asyncio.timeout(self.lease_ms / 3000):
                leading = await self._take_or_keep(key)
        except (RedisError, TimeoutError) as exc:
            log.warning("events: Redis unavailable, not watching %s: %r", source_id, exc)
        # Either way the lease was taken or kept: after Redis was away for less than the lease,
        # the key is still this replica's, and /readyz must say it leads again.
        if leading:
            self.leading.add(source_id)
        else:
            self.leading.discard(source_id)
        return leading

    async def _take_or_keep(self, key: str) -> bool:
        if await self.client.set(key, self.replica, nx=True, px=self.lease_ms):
            return True
        if await self.client.get(key) == self.replica:
            await self.client.pexpire(key, self.lease_ms)
            return True
        return False

    async def publish(self, event: CaseEvent, position: Position) -> None:
        source = event.record.source
        try:
            await self.client.publish(self.channel, event_to_json(event))
            await self.client.hset(
                f"{self.prefix}:positions",
                source,
                f"{position.value.isoformat()}|{position.local_id}",
            )
        except RedisError as exc:
            raise BusUnavailable(f"Redis did not take the event: {exc}") from exc

    async def position(self, source_id: str) -> Position | None:
        """The last watermark any leader stored for ``source_id``."""
        try:
            stored = await self.client.hget(f"{self.prefix}:positions", source_id)
        except RedisError as exc:
            raise BusUnavailable(f"Redis did not give the watermark: {exc}") from exc
        if not stored:
            return None
        value, _, local_id = str(stored).partition("|")
        return Position(datetime.fromisoformat(value), source_id, local_id)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        for source_id in list(self.leading):
            key = f"{self.prefix}:leader:{source_id}"
            with contextlib.suppress(RedisError):
                if await self.client.get(key) == self.replica:
                    await self.client.delete(key)
        await self.client.aclose()
