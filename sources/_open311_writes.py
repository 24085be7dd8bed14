"""``kind: open311`` writes: a new case is a GeoReport v2 service request, POSTed.

The specification fixes the request: ``POST requests.json``, form-encoded, with ``api_key``
(required), ``service_code``, a location (``lat`` and ``long``, else ``address_string``),
``description`` (at most 4000 characters), optional ``first_name``/``last_name``/``phone`` and
``attribute[code]`` values for the service's own fields. The answer names the new request's
``service_request_id``, or a ``token`` whose id comes later from ``GET tokens/{token}.json``;
that id becomes the receiver's reference.

GeoReport v2 has no idempotency of its own, so the key goes two ways, each configurable: in a
request header (``Idempotency-Key``) that a server may honour, and as a service attribute a
server lists requests by, which the writer looks up before creating. It has no way to change a
request's status, add a note or record a hand-over either: this writer takes ``create`` only,
and the mutations say which agency cannot take the rest.

Requests go through the source's own client (sources/_http.py), its reads' pool: the same
connection limit and TLS context, and a POST that times out or is cancelled retires the pool as
a read's would. Each is sent once; the outbox sends it again later under its key.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any, Literal

import httpx
from pydantic import Field, model_validator

from sources._errors import (
    SourceBadResponse,
    SourceConfigError,
    SourceError,
    SourceUnavailable,
    WritesUnsupported,
)
from sources._http import AgencyHttp
from sources._model import CanonicalStatus
from sources._settings import SourceSettings, Strict
from sources._writes import NewCase, OutgoingReferral, native_of
from sources.rest._records import dig

DESCRIPTION_LIMIT = 4000
"""Characters GeoReport v2 allows in a request's description."""

CaseField = Literal[
    "title",
    "description",
    "note",
    "sender_agency",
    "sender_reference",
    "province_code",
    "district_code",
    "subdistrict_code",
]


class Open311Writes(Strict):
    """``writes:`` of a ``kind: open311`` source: how a referral becomes a service request."""

    api_key: str | None = Field(
        default=None,
        description="The api_key sent with every POST (GeoReport v2 requires one); absent: "
        "the source's api_key. Use ${VARIABLE} to keep it out of the file.",
    )
    service_codes: dict[str, str] = Field(
        default_factory=dict,
        description="Canonical category -> the service_code a new request is filed under; "
        "a category not listed takes its code from vocabulary.categories.",
    )
    attributes: dict[str, CaseField] = Field(
        default_factory=dict,
        description="attribute[code] values sent with a new request (the service's own "
        "fields), by code: which of the case's fields fills it, e.g. {title: title}.",
    )
    key_header: str | None = Field(
        default="Idempotency-Key",
        description="Request header carrying the idempotency key, for a server that answers "
        "a repeated key with its first answer; null: not sent.",
    )
    key_attribute: str | None = Field(
        default=None,
        description="Service attribute the key is sent in (attribute[<name>]=<key>).",
    )
    key_lookup_param: str | None = Field(
        default=None,
        description="The server's requests.json parameter filtering on key_attribute: the "
        "key is looked up before creating, so a resend finds the request made the first time.",
    )
    key_lookup_field: str | None = Field(
        default=None,
        description="Dotted path of the key in a listed request, checked on every request the "
        "lookup answers (a server that ignores the parameter lists others); absent: "
        "extended_attributes.<key_attribute>.",
    )
    token_wait_seconds: float = Field(
        default=10.0,
        gt=0,
        description="How long a token answer's id is waited for (GET tokens/{token}.json) "
        "before the step is left for the outbox to retry.",
    )
    personal_data: list[Literal["name", "phone"]] = Field(
        default_factory=list,
        description="The complainant's data this agency may receive: first_name/last_name "
        "and phone. Absent: none.",
    )

    @model_validator(mode="after")
    def _lookup_needs_the_attribute(self) -> Open311Writes:
        if self.key_lookup_param is not None and self.key_attribute is None:
            raise ValueError(
                "key_lookup_param needs key_attribute: the key must be sent to be found"
            )
        return self


class Open311Writer:
    """Creates service requests on one Open311 server, through ``http``: the source's client."""

    def __init__(self, settings: SourceSettings, http: AgencyHttp) -> None:
        from sources.open311 import Open311Settings  # which imports this module's settings

        assert isinstance(settings, Open311Settings) and settings.writes is not None
        self.settings = settings
        self.writes = settings.writes
        self.source_id = settings.id
        self._jurisdiction = settings.jurisdiction_id
        self._api_key = settings.writes.api_key or settings.api_key
        self._http = http

    async def close(self) -> None:
        """Closes the source's client: a writer made for writing alone (``writer_for``) is
        all that uses it; a source closing closes it anyway (closing twice is harmless)."""
        await self._http.aclose()

    def takes(self, step: str) -> bool:
        """GeoReport v2 can only create: no status change, note or referral on a request."""
        return step == "create"

    # -- create ---------------------------------------------------------------------------------

    async def create_case(self, case: NewCase, key: str) -> str:
        if self._api_key is None:
            raise SourceConfigError(
                self.source_id, "has no writes.api_key (GeoReport v2 requires one on POST)"
            )
        found = await self._look_up(key)
        if found is not None:
            return found
        answer = await self._call("POST", "/requests.json", data=self._form(case, key), key=key)
        first = _first(answer)
        if first.get("service_request_id") is not None:
            return str(first["service_request_id"])
        if first.get("token") is not None:
            return await self._resolve(str(first["token"]))
        raise SourceBadResponse(
            self.source_id, "the POST answer has neither service_request_id nor token"
        )

    def service_code(self, category: str) -> str:
        """The service_code a case of canonical ``category`` is filed under."""
        configured = self.writes.service_codes.get(category)
        if configured is not None:
            return configured
        return native_of(
            self.source_id, "categories", self.settings.vocabulary.categories, category
        )

    def _form(self, case: NewCase, key: str) -> dict[str, str]:
        assert self._api_key is not None
        form: dict[str, str] = {
            "api_key": self._api_key,
            "service_code": self.service_code(case.category),
            "description": _description(case),
        }
        if self._jurisdiction is not None:
            form["jurisdiction_id"] = self._jurisdiction
        if case.latitude is not None and case.longitude is not None:
            form["lat"], form["long"] = repr(case.latitude), repr(case.longitude)
        elif case.address:
            form["address_string"] = case.address
        else:
            raise SourceConfigError(
                self.source_id,
                "GeoReport v2 needs lat/long or an address, and the case has neither",
            )
        for code, name in self.writes.attributes.items():
            value = getattr(case, name)
            if value is not None:
                form[f"attribute[{code}]"] = str(value)
        if self.writes.key_attribute is not None:
            form[f"attribute[{self.writes.key_attribute}]"] = key
        form.update(self._person(case))
        return form

    def _person(self, case: NewCase) -> dict[str, str]:
        """first_name/last_name (a Thai name split at its first space) and phone, as far as
        ``personal_data`` allows."""
        allowed = set(self.writes.personal_data)
        person = case.complainant or {}
        fields: dict[str, str] = {}
        if "name" in allowed and person.get("name"):
            first, _, last = person["name"].partition(" ")
            fields["first_name"] = first
            if last:
                fields["last_name"] = last
        if "phone" in allowed and person.get("phone"):
            fields["phone"] = person["phone"]
        return fields

    async def _look_up(self, key: str) -> str | None:
        """The request an earlier send of ``key`` made, by the server's key filter."""
        param = self.writes.key_lookup_param
        if param is None:
            return None
        params = {param: key}
        if self._jurisdiction is not None:
            params["jurisdiction_id"] = self._jurisdiction
        answer = await self._call("GET", "/requests.json", params=params)
        if not isinstance(answer, list):
            raise SourceBadResponse(self.source_id, "requests.json did not answer a list")
        path = self.writes.key_lookup_field or f"extended_attributes.{self.writes.key_attribute}"
        for item in answer:
            if isinstance(item, dict) and dig(item, path) == key and item.get("service_request_id"):
                return str(item["service_request_id"])
        return None

    async def _resolve(self, token: str) -> str:
        """The id behind ``token``, asked until ``token_wait_seconds`` have passed; not yet
        known then: unavailable, so the outbox sends the step again later."""
        deadline = time.monotonic() + self.writes.token_wait_seconds
        pause = 0.05
        while True:
            answer = await self._call("GET", f"/tokens/{token}.json")
            request_id = _first(answer).get("service_request_id")
            if request_id is not None:
                return str(request_id)
            if time.monotonic() + pause > deadline:
                raise SourceUnavailable(
                    self.source_id,
                    f"token {token!r} has no service_request_id after "
                    f"{self.writes.token_wait_seconds:g} s; the step is retried",
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)

    async def _call(
        self,
        method: Literal["GET", "POST"],
        path: str,
        *,
        params: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
        key: str | None = None,
    ) -> Any:
        headers = {}
        if key is not None and self.writes.key_header is not None:
            headers[self.writes.key_header] = key
        # Without the source's query: the form carries this request's api_key and
        # jurisdiction_id, and a lookup names its own.
        response = await self._http.send(
            method, path, params=params, data=data, headers=headers, query=False
        )
        if response.status_code >= 500 or response.status_code == 429:
            raise SourceUnavailable(self.source_id, f"HTTP {response.status_code} from Open311")
        if response.status_code in (401, 403):
            raise SourceConfigError(
                self.source_id,
                f"HTTP {response.status_code}: the server refused the api_key "
                f"({_errors(response)}); check writes.api_key",
            )
        if response.status_code >= 400:
            raise SourceBadResponse(
                self.source_id,
                f"HTTP {response.status_code} from Open311 refused the request: "
                f"{_errors(response)}",
            )
        try:
            return response.json()
        except ValueError as exc:
            raise SourceBadResponse(self.source_id, "the answer is not JSON") from exc

    # -- what GeoReport v2 cannot do -------------------------------------------------------------

    def _cannot(self, what: str) -> SourceError:
        return WritesUnsupported(
            self.source_id,
            f"{self.settings.agency.code}'s Open311 (GeoReport v2) system cannot {what}",
        )

    async def set_status(
        self, local_id: str, status: CanonicalStatus, note: str | None, at: datetime, key: str
    ) -> None:
        raise self._cannot("change a request's status")

    async def add_note(self, local_id: str, note: str, at: datetime, key: str) -> None:
        raise self._cannot("add a note to a request")

    async def record_referral(self, local_id: str, referral: OutgoingReferral, key: str) -> None:
        raise self._cannot("record a referral")


def _description(case: NewCase) -> str:
    """The title, the description and who sent it, in GeoReport v2's 4000 characters."""
    parts = [case.title]
    if case.description and case.description != case.title:
        parts.append(case.description)
    parts.append(f"({case.sender_agency} {case.sender_reference})")
    return "\n\n".join(parts)[:DESCRIPTION_LIMIT]


def _first(answer: Any) -> dict[str, Any]:
    """GeoReport v2 answers an array holding one object."""
    if isinstance(answer, list) and answer and isinstance(answer[0], dict):
        return answer[0]
    if isinstance(answer, dict):
        return answer
    return {}


def _errors(response: httpx.Response) -> str:
    """The descriptions of GeoReport v2's error array, else the start of the body."""
    try:
        document = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(document, list):
        said = [str(e.get("description")) for e in document if isinstance(e, dict)]
        if said:
            return "; ".join(said)[:200]
    return response.text[:200]
