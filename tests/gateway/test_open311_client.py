"""The Open311 endpoint driven by an Open311 client from PyPI (``georeport``, as a partner's app
would use it) against the gateway under real uvicorn on loopback, every answer, errors
included, valid against the GeoReport v2 schemas (georeport_v2/, errors.json among them).

``api_key`` is a request parameter in the specification (query string, or form body on POST);
the gateway also takes it from ``Authorization`` (Bearer, or Basic credentials, which is how a
client that sends no ``api_key`` itself, like ``georeport``, gets one: in its base URL)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
import requests
from georeport import GeoReport

from gateway.app import create_app
from gateway.config import EventSettings
from gateway.demo import demo_agency_key
from samples.serving import ThreadedServer
from tests.conftest import AccessWorld
from tests.gateway.test_auth_open311 import key_of
from tests.gateway.test_open311 import assert_valid
from tests.resolvers.test_access import global_id, visible

KKN = demo_agency_key("KKN-PO")


@pytest.fixture(scope="module")
def served(access_world: AccessWorld) -> Iterator[ThreadedServer]:
    """The access world's gateway (demo keys; anonymous callers read no case) under uvicorn."""
    app = create_app(replace(access_world.config, events=EventSettings(enabled=False)))
    server = ThreadedServer(app, lifespan=True)
    server.start()
    yield server
    server.stop()


def root(server: ThreadedServer, key: str | None = None) -> str:
    """The client's base address; a key rides in it as the password (HTTP Basic)."""
    credentials = f"api_key:{key}@" if key else ""
    return f"http://{credentials}127.0.0.1:{server.port}/open311/v2"


def refused(call: Any, status: int) -> Any:
    """The error answer behind the client's exception: its status and a valid error body."""
    with pytest.raises(requests.HTTPError) as raised:
        call()
    response = raised.value.response
    assert response is not None and response.status_code == status, response
    body = response.json()
    assert_valid("errors.json", body)
    assert body[0]["code"] == status
    return body


def test_the_service_list_is_public(served: ThreadedServer) -> None:
    client = GeoReport(root(served))
    services = client.get_service_list()
    assert_valid("services.json", services)
    assert {"ROADS", "WATER"} <= {s["service_code"] for s in services}
    refused(lambda: client.get_service_definition("ROADS"), 404)  # metadata false everywhere


def test_requests_without_a_key_are_401_in_the_error_format(served: ThreadedServer) -> None:
    client = GeoReport(root(served))
    refused(client.get_service_requests, 401)
    refused(lambda: client.get_service_request(global_id("damrongdhama", "7")), 401)
    refused(GeoReport(root(served, "not-a-key")).get_service_requests, 401)


def test_the_client_lists_what_its_key_may_see(
    served: ThreadedServer, access_world: AccessWorld
) -> None:
    client = GeoReport(root(served, KKN))
    listed = client.get_service_requests()
    assert_valid("requests.json", listed)
    assert listed and {key_of(item["service_request_id"]) for item in listed} <= visible(
        access_world, KKN
    )
    by_header = httpx.get(
        f"{root(served)}/requests.json", headers={"Authorization": f"Bearer {KKN}"}
    )
    assert by_header.json() == listed  # the same answer whichever way the key came

    one = client.get_service_request(listed[0]["service_request_id"])
    assert_valid("requests.json", [one])
    assert one == listed[0]
    ids = ",".join(item["service_request_id"] for item in listed[:3])
    batch = client.get_service_requests(service_request_id=ids)
    assert_valid("requests.json", batch)
    assert batch == listed[:3]
    hidden = global_id("damrongdhama", "9")  # not referred to KKN: hidden looks missing
    refused(lambda: client.get_service_request(hidden), 404)
    body = refused(lambda: client.get_service_requests(status="pending"), 400)
    assert "status" in body[0]["description"]


def test_api_key_as_a_query_parameter(served: ThreadedServer) -> None:
    url = f"{root(served)}/requests.json"
    answer = httpx.get(url, params={"api_key": KKN, "page_size": "5"})
    assert answer.status_code == 200
    assert_valid("requests.json", answer.json())
    assert (
        answer.json()
        == httpx.get(
            url, params={"page_size": "5"}, headers={"Authorization": f"Bearer {KKN}"}
        ).json()
    )
    for params in ({"api_key": "not-a-key"}, {}):
        wrong = httpx.get(url, params=params)
        assert wrong.status_code == 401
        assert_valid("errors.json", wrong.json())
    one = httpx.get(
        f"{root(served)}/requests/{answer.json()[0]['service_request_id']}.json",
        params={"api_key": KKN},
    )
    assert one.status_code == 200 and one.json() == answer.json()[:1]


def test_posting_a_request_checks_the_form_api_key_first(served: ThreadedServer) -> None:
    """POST requests.json (a new service request) with the specification's form encoding:
    the key is read from the form or the query string before anything else. (Filing itself
    is tested against agencies of its own in test_open311_post.py: nothing is written into
    this module's shared agencies, a request without a location being refused.)"""
    url = f"{root(served)}/requests.json"
    form = {"service_code": "ROADS", "description": "ถนนพัง"}  # no location: refused
    for data, params, status in (
        (form, {}, 401),  # no key
        ({**form, "api_key": "not-a-key"}, {}, 401),
        ({**form, "api_key": KKN}, {}, 400),  # a valid key, in the form: the request is checked
        (form, {"api_key": KKN}, 400),  # ... or in the query string
    ):
        answer = httpx.post(url, data=data, params=params)
        assert answer.status_code == status, answer.text
        assert_valid("errors.json", answer.json())
        if status == 400:
            assert "location is required" in answer.json()[0]["description"]
