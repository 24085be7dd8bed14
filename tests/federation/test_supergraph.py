"""complaint-graph in a supergraph served by gateways nobody here wrote.

complaint-graph (``federation: {enabled: true}``) and a small "citizen services" subgraph
(tests/federation/citizen.py) run under uvicorn on loopback; their SDLs, as each answers
``_service { sdl }``, are composed with ``@theguild/federation-composition``, and the supergraph
is served by Hive Gateway and by Apollo Gateway (node, pinned by tests/federation's lock file,
installed by ``make test``). Every check runs through both gateways; what complaint-graph did
is read from its own ``/metrics`` and audit log.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.app import create_app
from gateway.auth import PersonalDataSettings
from gateway.config import EventSettings, FederationSettings
from gateway.demo import DEMO_PMOC_KEY, demo_agency_key, seed_demo_keys
from samples import links, pmoc_1111, provincial
from samples.generator import DEMO_MATCH_KEY, generate_cases
from samples.serving import ThreadedServer
from tests.conftest import (
    OPEN311_CASES,
    REST_CASES,
    REST_SEED,
    SQLITE_CASES,
    SQLITE_SEED,
    AccessWorld,
)
from tests.federation import citizen
from tests.postgres import run

NODE_DIR = Path(__file__).resolve().parent
GATEWAYS = ("hive", "apollo")
SOURCES = ("damrongdhama", "khonkaen-office", "pmoc-1111", "traffy-city")
INSPECTOR, AUDITOR = "demo-inspector", "demo-auditor"


def global_id(source: str, local_id: str) -> str:
    return base64.b64encode(f"Case:{source}:{local_id}".encode()).decode()


@dataclass
class Supergraph:
    complaints: ThreadedServer
    agency_1111: ThreadedServer  # the 1111 service's API, stopped by the "agency down" test
    gateways: dict[str, str]  # name -> URL
    agency_names: dict[str, str]  # code -> English name, as configured

    def ask(
        self, gateway: str, document: str, variables: dict[str, Any] | None = None, key: str = ""
    ) -> dict[str, Any]:
        """POST through a gateway as the holder of ``key`` (the gateway forwards it)."""
        headers = {"authorization": f"Bearer {key or INSPECTOR}"}
        response = httpx.post(
            self.gateways[gateway],
            json={"query": document, "variables": variables or {}},
            headers=headers,
            timeout=60,
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def round_trips(self) -> dict[tuple[str, str], float]:
        """complaint-graph's round trips so far, by (source, operation), from its /metrics."""
        text = httpx.get(f"{self.complaints.url}/metrics", timeout=10).text
        found: dict[tuple[str, str], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "complaint_graph_source_requests_total":
                    labels = sample.labels
                    found[(labels["source"], labels["operation"])] = sample.value
        return found


def node_script(name: str, *arguments: str, stdin: str | None = None) -> str:
    node = shutil.which("node")
    assert node is not None, "node is needed for the federation tests (docs/contributors.md)"
    assert (NODE_DIR / "node_modules" / "@apollo" / "gateway").is_dir(), (
        "the gateways are not installed: run `npm ci --prefix tests/federation` (make test does)"
    )
    finished = subprocess.run(
        [node, str(NODE_DIR / name), *arguments],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    return finished.stdout


def start_gateway(name: str, supergraph: Path, log: Path) -> tuple[subprocess.Popen[str], str]:
    """``tests/federation/<name>.mjs`` serving ``supergraph``; its URL from its first line."""
    node = shutil.which("node")
    assert node is not None
    with log.open("w", encoding="utf-8") as errors:
        process = subprocess.Popen(
            [node, str(NODE_DIR / f"{name}.mjs"), str(supergraph)],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
    assert process.stdout is not None
    line = process.stdout.readline()  # the gateway prints it once it listens, or exits
    if not line:
        process.wait(timeout=10)
        pytest.fail(f"{name} gateway did not start: {log.read_text(encoding='utf-8')}")
    url: str = json.loads(line)["url"]
    return process, url


def subgraph_sdl(url: str, key: str = INSPECTOR) -> str:
    response = httpx.post(
        url,
        json={"query": "{ _service { sdl } }"},
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    sdl: str = response.json()["data"]["_service"]["sdl"]
    return sdl


@pytest.fixture(scope="module")
def supergraph(
    access_world: AccessWorld, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Supergraph]:
    """complaint-graph over the access world (its own 1111 API), the citizen subgraph, the
    composed supergraph, and both gateways serving it."""
    folder = tmp_path_factory.mktemp("supergraph")
    agency_1111 = ThreadedServer(
        pmoc_1111.create_app(seed=REST_SEED, count=REST_CASES, api_key=DEMO_PMOC_KEY)
    )
    agency_1111.start()
    sources = tuple(
        s.model_copy(update={"base_url": agency_1111.url}) if s.id == "pmoc-1111" else s
        for s in access_world.config.sources
    )
    auth = access_world.config.auth.model_copy(
        update={
            "key_store": f"sqlite+aiosqlite:///{folder / 'keys.sqlite'}",
            "personal_data": PersonalDataSettings(match_key=DEMO_MATCH_KEY),  # audit log too
        }
    )
    config = replace(
        access_world.config,
        sources=sources,
        auth=auth,
        events=EventSettings(enabled=False),  # no pollers: round trips are the test's own
        federation=FederationSettings(enabled=True),
    )
    run(seed_demo_keys(config))
    complaints = ThreadedServer(create_app(config), lifespan=True)
    complaints.start()
    citizens = ThreadedServer(citizen.create_app())
    citizens.start()
    services = [
        {"name": "complaints", "url": f"{complaints.url}/graphql"},
        {"name": "citizen", "url": f"{citizens.url}/graphql"},
    ]
    for service in services:
        service["sdl"] = subgraph_sdl(service["url"])
    composed = folder / "supergraph.graphql"
    composed.write_text(node_script("compose.mjs", stdin=json.dumps(services)), encoding="utf-8")
    processes: list[subprocess.Popen[str]] = []
    urls: dict[str, str] = {}
    try:
        for name in GATEWAYS:
            process, urls[name] = start_gateway(name, composed, folder / f"{name}.log")
            processes.append(process)
        names = {s.agency.code: s.agency.name_en for s in sources}
        yield Supergraph(complaints, agency_1111, urls, names)
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)
            if process.stdout is not None:
                process.stdout.close()
        for server in (citizens, complaints, agency_1111):
            server.stop()


CROSSING = """
{
  serviceCentres { name agency { code nameEn sources { id kind } } }
  cases(first: 3, filter: {source: ["khonkaen-office"]}) {
    edges { node { id title followUp owningAgency { code } } }
  }
}
"""


@pytest.mark.parametrize("gateway", GATEWAYS)
def test_a_query_crosses_both_subgraphs(supergraph: Supergraph, gateway: str) -> None:
    body = supergraph.ask(gateway, CROSSING)
    assert "errors" not in body, body["errors"]
    centres = body["data"]["serviceCentres"]
    # Agency names and sources come from complaint-graph's _entities, by the codes the citizen
    # subgraph holds.
    assert [(c["agency"]["code"], c["agency"]["nameEn"]) for c in centres] == [
        (code, supergraph.agency_names[code]) for code in citizen.CENTRES.values()
    ]
    assert centres[0]["agency"]["sources"] == [{"id": "khonkaen-office", "kind": "sql"}]
    edges = body["data"]["cases"]["edges"]
    assert len(edges) == 3
    for edge in edges:
        case = edge["node"]
        assert case["owningAgency"] == {"code": "KKN-PO"} and case["title"]
        assert case["followUp"] == citizen.follow_up_of(case["id"])  # the citizen subgraph's


FOLLOW_UPS = """
query($ids: [ID!]!) { followUps(caseIds: $ids) { note case { id title status } } }
"""


def petitions() -> list[str]:
    """The Khon Kaen office's case numbers, from the data its database was built from."""
    return [
        provincial.petition_no(c)
        for c in generate_cases(
            seed=SQLITE_SEED, count=SQLITE_CASES, province_codes=[provincial.PROVINCE]
        )
    ]


def hundred_cases() -> list[str]:
    """25 cases of each source, by global id, from the agencies' own data."""
    local = {
        "damrongdhama": [str(n) for n in range(1, 26)],  # the access world holds 60
        "khonkaen-office": petitions()[:25],
        "pmoc-1111": [links.pmoc_id(n) for n in range(1, 26)],
        "traffy-city": [links.traffy_id(n) for n in range(OPEN311_CASES - 24, OPEN311_CASES + 1)],
    }
    return [global_id(source, i) for source in SOURCES for i in local[source]]


@pytest.mark.parametrize("gateway", GATEWAYS)
def test_a_hundred_case_entities_cost_one_round_trip_per_source(
    supergraph: Supergraph, gateway: str
) -> None:
    ids = hundred_cases()
    before = supergraph.round_trips()
    body = supergraph.ask(gateway, FOLLOW_UPS, {"ids": ids})
    after = supergraph.round_trips()
    assert "errors" not in body, body["errors"]
    follow_ups = body["data"]["followUps"]
    assert [f["case"]["id"] for f in follow_ups] == ids
    assert all(f["case"]["title"] and f["case"]["status"] for f in follow_ups)
    spent = {key: after[key] - before.get(key, 0) for key in after if after[key] != before.get(key)}
    assert spent == {(source, "load_cases"): 1 for source in SOURCES}


@pytest.mark.parametrize("gateway", GATEWAYS)
def test_an_agency_key_gets_null_for_another_agencys_case(
    supergraph: Supergraph, gateway: str
) -> None:
    own = petitions()[0]
    others = links.traffy_id(7)  # the city's: never referred to Khon Kaen
    ids = [global_id("khonkaen-office", own), global_id("traffy-city", others)]
    body = supergraph.ask(gateway, FOLLOW_UPS, {"ids": ids}, key=demo_agency_key("KKN-PO"))
    mine, theirs = body["data"]["followUps"]
    assert mine["case"]["id"] == ids[0] and mine["case"]["title"]
    # complaint-graph answered null for the city's case: without its non-null title, the
    # gateway nulls the case (and says why in its own words).
    assert theirs["case"] is None
    denied = supergraph.ask(
        gateway,
        """query($case: String) { auditLog(first: 50, filter: {action: DENY, caseId: $case}) {
             entries { subject agency source caseId reason } } }""",
        {"case": others},
        key=AUDITOR,
    )
    entries = denied["data"]["auditLog"]["entries"]
    assert {"agency": "KKN-PO", "source": "traffy-city", "caseId": others} in [
        {k: e[k] for k in ("agency", "source", "caseId")} for e in entries
    ]


def test_one_agency_down_gives_partial_data_with_its_error(supergraph: Supergraph) -> None:
    ids = [global_id("damrongdhama", "3"), global_id("pmoc-1111", links.pmoc_id(3))]
    supergraph.agency_1111.stop()
    try:
        for gateway in GATEWAYS:
            body = supergraph.ask(gateway, FOLLOW_UPS, {"ids": ids})
            held, lost = body["data"]["followUps"]
            assert held["case"]["title"], gateway
            assert lost["case"] is None, gateway
            (error,) = body["errors"]
            assert error["path"][:3] == ["followUps", 1, "case"], gateway
            assert error["extensions"]["code"] == "SOURCE_UNAVAILABLE", gateway
            assert error["extensions"]["source"] == "pmoc-1111", gateway
    finally:
        supergraph.agency_1111.start()
