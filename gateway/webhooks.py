"""``POST /webhooks/{source}``: agencies that push tell the gateway which cases changed.

The body is ``{"cases": ["<local id>", ...]}``. The agency signs ``"{timestamp}.{body}"`` with
HMAC-SHA256 and the source's shared secret, and sends ``X-Complaint-Graph-Timestamp`` (Unix
seconds) and ``X-Complaint-Graph-Signature: sha256=<hex>``. A request older than the tolerance,
or one already seen within it, is refused: a captured request cannot be replayed. The gateway
then reads those cases from the source itself and publishes their new versions once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections import OrderedDict

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.bus import BusUnavailable
from gateway.events import EventBroker
from sources import SourceError, SourceSettings

TIMESTAMP_HEADER = "X-Complaint-Graph-Timestamp"
SIGNATURE_HEADER = "X-Complaint-Graph-Signature"
MAX_BODY_BYTES = 1_000_000
MAX_CASES = 1000


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


class WebhookReceiver:
    def __init__(self, broker: EventBroker | None, sources: tuple[SourceSettings, ...]) -> None:
        self.broker = broker
        self.settings = {s.id: s.webhook for s in sources if s.webhook is not None}
        self._seen: OrderedDict[str, float] = OrderedDict()

    async def receive(self, request: Request) -> Response:
        source_id = request.path_params["source"]
        settings = self.settings.get(source_id)
        if settings is None or self.broker is None:
            return _refuse(404, f"no webhook is configured for source {source_id!r}")
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return _refuse(413, "body too large")
        timestamp = request.headers.get(TIMESTAMP_HEADER, "")
        signature = request.headers.get(SIGNATURE_HEADER, "")
        if not hmac.compare_digest(sign(settings.secret, timestamp, body), signature):
            return _refuse(401, "bad or missing signature")
        now = time.time()
        try:
            age = now - float(timestamp)
        except ValueError:
            return _refuse(401, "bad timestamp")
        if abs(age) > settings.tolerance_seconds:
            return _refuse(401, f"timestamp outside {settings.tolerance_seconds} s of now")
        if not self._first_time(signature, now, settings.tolerance_seconds):
            return _refuse(409, "this request was already received (replay)")
        try:
            cases = json.loads(body)["cases"]
            if not isinstance(cases, list) or len(cases) > MAX_CASES:
                raise TypeError
            local_ids = [str(case) for case in cases]
        except (ValueError, KeyError, TypeError):
            return _refuse(400, f'body must be {{"cases": [ids]}} with at most {MAX_CASES} ids')
        try:
            published = await self.broker.publish_changed(source_id, local_ids)
        except SourceError as exc:
            return _refuse(503, exc.detail)
        except BusUnavailable as exc:
            return _refuse(503, str(exc))
        return JSONResponse({"accepted": len(local_ids), "events": published}, status_code=202)

    def _first_time(self, signature: str, now: float, tolerance: int) -> bool:
        """Remember signatures for as long as their timestamp is acceptable."""
        while self._seen and next(iter(self._seen.values())) < now - 2 * tolerance:
            self._seen.popitem(last=False)
        if signature in self._seen:
            return False
        self._seen[signature] = now
        return True


def _refuse(status: int, reason: str) -> Response:
    return JSONResponse({"error": reason}, status_code=status)
