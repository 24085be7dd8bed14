"""Structured logs: one JSON object per line, each carrying the request id it was written for.

Every line has ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message`` and ``request_id``
(null outside a request); access lines add ``method``, ``path``, ``status``, ``duration_ms``,
``operation`` and ``operation_type``. Tracebacks of unexpected errors appear here as
``exception`` and never in a response.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import IO

import orjson

from gateway.observability import ObservabilitySettings
from gateway.request_context import current_request_id

# Attributes that callers pass with ``extra=`` and that go into the JSON object as they are.
_EXTRA_FIELDS = (
    "method",
    "path",
    "status",
    "duration_ms",
    "operation",
    "operation_type",
    "error_codes",
    "source",
)


class RequestIdFilter(logging.Filter):
    """Stamps each record with the id of the request it was logged for, if any."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for name in _EXTRA_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")


def log_handler(stream: IO[str], log_format: str = "json") -> logging.Handler:
    """A handler writing ``log_format`` lines with request ids to ``stream``."""
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    return handler


def configure_logging(settings: ObservabilitySettings, stream: IO[str] | None = None) -> None:
    """Route every logger (uvicorn's included) through one handler on the root logger."""
    root = logging.getLogger()
    root.handlers = [log_handler(stream or sys.stderr, settings.log_format)]
    root.setLevel(settings.log_level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
    # Our access lines replace uvicorn's, which know neither request ids nor operations; httpx
    # would log every source round trip at INFO, with the agency's URL.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
