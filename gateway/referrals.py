"""What an agency's own systems referred on, read again while its subscriptions are open.

An agency subscriber may see the cases its systems handed to other agencies. Which those are is
read when it subscribes (``AgencyAccess.referred_by_agency``); a case handed on later must reach
it too. So when an event is refused to an agency subscriber only for want of that, and a fresher
list could show the case, the broker holds the event (and, to keep the order, every later event
of that subscriber) and asks this agency's :class:`AgencyReferrals` for a refresh.

Cost, bounded: one refresh is one ``Federation.referred_by`` (one call to each of the agency's
own sources that lists its referrals), shared by every subscriber of the agency. At most one
runs per agency at a time, at least ``REFRESH_SECONDS`` after the previous one started, and it
serves every event refused before it started: a poll batch or a burst from Redis costs one, not
one per event or subscriber. No refresh is asked while nothing is refused. A refresh that fails
(the agency's system down or slow past ``REFRESH_TIMEOUT_SECONDS``) keeps the previous list,
logs why, and the held events are judged by that list: nothing is shown that was not shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from sources import Federation, SourceError

log = logging.getLogger("complaint_graph.events")

REFRESH_SECONDS = 1.0
"""Least time between the starts of two refreshes for one agency: while other agencies' cases
keep changing, an agency's subscribers wait up to this long (plus the refresh) for events held
behind a refused one."""

REFRESH_TIMEOUT_SECONDS = 5.0
"""A refresh taking longer fails (held events then wait no longer than this)."""


class AgencyReferrals:
    """The latest list of cases ``agency``'s systems referred on, refreshed on demand.

    Refreshes are numbered from 1 in the order they start; an event refused now must wait for
    the refresh numbered :meth:`request`, the first to start after it arrived (one already
    running may have read the agency's referrals before the referral was written).
    """

    def __init__(
        self,
        federation: Federation,
        agency: str,
        refreshed: Callable[[AgencyReferrals], None],
    ) -> None:
        self.federation = federation
        self.agency = agency
        self.referred: frozenset[tuple[str, str]] = frozenset()
        self.finished = 0
        """The number of the last refresh that ended, whether or not it succeeded."""
        self._started = 0
        self._wanted = 0
        self._last_start: float | None = None
        self._refreshed = refreshed
        self._task: asyncio.Task[None] | None = None
        lists = any(
            s.agency.code == agency and s.capabilities.lists_referrals
            for s in federation.sources.values()
        )
        self._revealable = frozenset(
            s.id
            for s in federation.sources.values()
            if lists and s.agency.code != agency and federation.only_source_of(s.agency.code) is s
        )

    def allows(self, source: str, local_id: str) -> bool:
        return (source, local_id) in self.referred

    def could_reveal(self, source: str) -> bool:
        """Whether a fresher list could name a case of ``source``: the agency's own systems can
        list their referrals, and ``source`` is the only one of another agency."""
        return source in self._revealable

    def request(self) -> int:
        """The number of the refresh that judges an event refused now; it is scheduled."""
        wanted = self._started + 1
        self._wanted = max(self._wanted, wanted)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"referrals:{self.agency}")
        return wanted

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self.finished < self._wanted:
                if self._last_start is not None:
                    # Rate, not synchronisation: refreshes of one agency stay this far apart.
                    await asyncio.sleep(self._last_start + REFRESH_SECONDS - loop.time())
                self._last_start = loop.time()
                self._started += 1
                number = self._started
                await self._refresh()
                self.finished = number
                self._refreshed(self)
        finally:
            self._task = None

    async def _refresh(self) -> None:
        try:
            async with asyncio.timeout(REFRESH_TIMEOUT_SECONDS):
                self.referred = await self.federation.referred_by(self.agency)
        except TimeoutError:
            log.warning(
                "events: referrals of %s not read again within %g s; the previous list stays",
                self.agency,
                REFRESH_TIMEOUT_SECONDS,
            )
        except SourceError as exc:
            log.warning(
                "events: referrals of %s not read again (%s: %s); the previous list stays",
                self.agency,
                exc.source,
                exc.detail,
            )

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
