"""An agency whose answers break off half-way (issue 19, the chaos run's one hard stop).

Each failed read retires the source's connection pool (sources/_transport.py), and httpx
builds a new TLS context, the whole CA bundle read again, with every transport: 15-60 ms of
a blocked event loop per failed request. Under a run of truncated answers that stalled the
gateway long enough for requests to reach their hard stop with no data at all, instead of a
partial answer naming the sick source. Against a loopback agency that cuts its answers off.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from typing import Any

import pytest

from sources import SourceTimeout, SourceUnavailable
from sources.rest import RestSettings, RestSource
from tests.conftest import DemoData
from tests.resolvers.expected import REST_SOURCE
from tests.sockets import open_to
from tests.truncating import CLOSED, SILENT, TruncatingAgency

CASE = "PMOC-000001"


@pytest.fixture
def certificate_loads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times a CA bundle is read (counted in the one list element)."""
    loads = [0]
    read = ssl.SSLContext.load_verify_locations

    def counted(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        loads[0] += 1
        read(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counted)
    return loads


async def rest_source(demo_data: DemoData, url: str) -> RestSource:
    (settings,) = [s for s in demo_data.config.sources if s.id == REST_SOURCE]
    assert isinstance(settings, RestSettings)
    source = RestSource(settings.model_copy(update={"base_url": url, "timeout_seconds": 0.5}))
    await source.open()
    return source


@pytest.fixture
async def closing_agency() -> AsyncIterator[TruncatingAgency]:
    async with TruncatingAgency(CLOSED) as agency:
        yield agency


async def test_answers_cut_off_renew_the_pool_without_reading_certificates_again(
    demo_data: DemoData, closing_agency: TruncatingAgency, certificate_loads: list[int]
) -> None:
    source = await rest_source(demo_data, closing_agency.url)
    try:
        for _ in range(20):
            with pytest.raises(SourceUnavailable, match="RemoteProtocolError"):
                await source.load_cases([CASE])
        transport = source._http.transport  # the test's own view of the source it built
        assert transport is not None
        await transport.settled()
        renewals = transport.renewals
    finally:
        await source.close()
    assert closing_agency.requests == 20
    assert renewals == 20  # every cut-off answer retired its pool...
    assert certificate_loads[0] <= 1  # ...and none of them read the CA bundle again
    assert open_to(closing_agency.port) == {}


async def test_an_answer_that_stops_half_way_times_out_and_leaves_no_socket(
    demo_data: DemoData,
) -> None:
    """Half the announced body, then silence: the read waits for the rest only until the
    source's own time is up, and the socket holding the unread half is closed."""
    async with TruncatingAgency(SILENT) as agency:
        source = await rest_source(demo_data, agency.url)
        try:
            for _ in range(3):
                with pytest.raises(SourceTimeout):
                    await source.load_cases([CASE])
            transport = source._http.transport
            assert transport is not None
            await transport.settled()
            left = open_to(agency.port)
        finally:
            await source.close()
    assert agency.requests == 3
    # closed from the gateway's side (FIN sent; the agency, still silent, has not closed its)
    assert left["ESTABLISHED"] == left["CLOSE_WAIT"] == 0, left
