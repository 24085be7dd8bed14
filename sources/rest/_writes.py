"""``kind: rest`` writes: configured POST/PUT/PATCH requests with body templates.

Each request carries the idempotency key in a header (``Idempotency-Key`` by default): the
agency's API answers a repeated key with its first answer, so a request resent after a lost
answer creates nothing more. Writes go through the source's own client (sources/_http.py):
its auth, headers and query, and its pool, so they keep the agency's connection limit and a
write that times out or is cancelled retires the pool as a read's would. Each is sent once;
the outbox sends it again later.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sources._errors import SourceBadResponse, SourceConfigError, SourceUnavailable
from sources._http import AgencyHttp
from sources._model import CanonicalStatus
from sources._settings import SourceSettings
from sources._writes import NewCase, OutgoingReferral, native_of
from sources.rest._settings import RestSettings
from sources.rest._write_settings import RestWrites, WriteEndpoint


def render(template: Any, values: Mapping[str, Any]) -> Any:
    """``template`` with ``{name}`` placeholders filled: a string that is one placeholder
    becomes the value itself (typed), others are formatted; dicts and lists recursively."""
    if isinstance(template, dict):
        return {key: render(value, values) for key, value in template.items()}
    if isinstance(template, list):
        return [render(value, values) for value in template]
    if isinstance(template, str):
        parsed = list(string.Formatter().parse(template))
        if len(parsed) == 1 and parsed[0][0] == "" and parsed[0][1] and not parsed[0][2]:
            return values.get(parsed[0][1])
        return template.format_map(_Blank(values))
    return template


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


def _dig(document: Any, path: str) -> Any:
    for part in path.split("."):
        document = document.get(part) if isinstance(document, dict) else None
    return document


class RestWriter:
    """Configured requests, sent through ``http``: the source's client (its reads' pool)."""

    def __init__(self, settings: SourceSettings, http: AgencyHttp) -> None:
        assert isinstance(settings, RestSettings) and settings.writes is not None
        self.settings = settings
        self.writes: RestWrites = settings.writes
        self.source_id = settings.id
        self.zone = ZoneInfo(settings.zone)
        self._http = http

    async def close(self) -> None:
        """Closes the source's client: a writer made for writing alone (``writer_for``) is
        all that uses it; a source closing closes it anyway (closing twice is harmless)."""
        await self._http.aclose()

    def _time(self, at: datetime) -> str:
        return at.astimezone(self.zone).isoformat(timespec="seconds")

    def _endpoint(self, name: str) -> WriteEndpoint:
        endpoint: WriteEndpoint | None = getattr(self.writes, name)
        if endpoint is None:
            raise SourceConfigError(self.source_id, f"has no writes.{name} endpoint")
        return endpoint

    async def _send(self, endpoint: WriteEndpoint, values: dict[str, Any], key: str) -> Any:
        values = {**values, "key": key}
        for name in endpoint.numeric:
            if isinstance(values.get(name), str) and values[name].lstrip("-").isdigit():
                values[name] = int(values[name])
        path = render(endpoint.path, values)
        body = render(endpoint.body, values)
        response = await self._http.send(
            endpoint.method, path, json=body, headers={self.writes.key_header: key}
        )
        if response.status_code >= 500 or response.status_code == 429:
            raise SourceUnavailable(self.source_id, f"HTTP {response.status_code} from the API")
        if response.status_code >= 400:
            raise SourceBadResponse(
                self.source_id,
                f"HTTP {response.status_code} from the API refused the write: "
                f"{response.text[:200]}",
            )
        try:
            return response.json()
        except ValueError:
            return None

    async def create_case(self, case: NewCase, key: str) -> str:
        endpoint = self._endpoint("create")
        vocabulary = self.settings.vocabulary
        values = {
            "title": case.title,
            "description": case.description,
            "category": native_of(
                self.source_id, "categories", vocabulary.categories, case.category
            ),
            "channel": native_of(self.source_id, "channels", vocabulary.channels, case.channel),
            "status": native_of(self.source_id, "statuses", vocabulary.statuses, case.status),
            "province_code": case.province_code,
            "district_code": case.district_code,
            "subdistrict_code": case.subdistrict_code,
            "address": case.address,
            "latitude": case.latitude,
            "longitude": case.longitude,
            "sender_agency": case.sender_agency,
            "sender_reference": case.sender_reference,
            "received_at": self._time(case.received_at),
            "note": case.note,
        }
        allowed = set(self.writes.personal_data)
        for name, value in (case.complainant or {}).items():
            if name in allowed:  # never more than this agency may receive
                values[f"complainant_{name}"] = value
        answer = await self._send(endpoint, values, key)
        reference = _dig(answer, endpoint.reference) if endpoint.reference else None
        if reference is None:
            raise SourceBadResponse(
                self.source_id,
                f"the create answer has no {endpoint.reference!r}: the new case's id is unknown",
            )
        return str(reference)

    async def set_status(
        self, local_id: str, status: CanonicalStatus, note: str | None, at: datetime, key: str
    ) -> None:
        native = native_of(self.source_id, "statuses", self.settings.vocabulary.statuses, status)
        values = {"id": local_id, "status": native, "note": note, "at": self._time(at)}
        await self._send(self._endpoint("status"), values, key)

    async def record_referral(self, local_id: str, referral: OutgoingReferral, key: str) -> None:
        vocabulary = self.settings.vocabulary
        values = {
            "id": local_id,
            "to_agency": native_of(
                self.source_id, "agencies", vocabulary.agencies, referral.to_agency
            ),
            "kind": native_of(
                self.source_id, "referral_kinds", vocabulary.referral_kinds, referral.kind
            ),
            "their_reference": referral.their_reference,
            "at": self._time(referral.at),
            "note": referral.note,
        }
        await self._send(self._endpoint("referral"), values, key)

    async def add_note(self, local_id: str, note: str, at: datetime, key: str) -> None:
        values = {"id": local_id, "note": note, "at": self._time(at)}
        await self._send(self._endpoint("note"), values, key)

    def takes(self, step: str) -> bool:
        name = {"create": "create", "status": "status", "record": "referral", "note": "note"}
        return getattr(self.writes, name.get(step, step), None) is not None
