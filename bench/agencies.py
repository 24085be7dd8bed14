"""The two API agencies of the demo (the 1111 service, the city platform) in their own process.

Kept out of the gateway's process so the gateway's CPU time and peak memory are its own; the
benchmark starts this once and stops it with SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import threading

from gateway.demo import DEMO_PMOC_KEY
from samples import pmoc_1111, traffy
from samples.serving import ThreadedServer


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.agencies", description=__doc__)
    parser.add_argument("--port", type=int, default=8811, help="the 1111 service; city is +1")
    parser.add_argument("--cases", type=int, default=10_000)
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    pmoc = ThreadedServer(pmoc_1111.create_app(count=args.cases, api_key=DEMO_PMOC_KEY), args.port)
    city = ThreadedServer(traffy.create_app(count=args.cases), args.port + 1)
    pmoc.start()
    city.start()
    print(f"agencies ready: {pmoc.url} {city.url}", flush=True)
    stop.wait()
    pmoc.stop()
    city.stop()


if __name__ == "__main__":
    main()
