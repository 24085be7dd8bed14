"""``complaint-graph audit``: read the personal-data audit log, oldest first."""

from __future__ import annotations

import argparse
import asyncio
from datetime import datetime

from gateway.audit import AuditLog
from resolvers.audit import AuditQuery, AuditRecord


def add_audit_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = commands.add_parser(
        "audit", help="print the personal-data audit log (reveals and denials), oldest first"
    )
    audit.add_argument("--config", required=True)
    audit.add_argument("--first", type=int, default=100, help="entries to print (default 100)")
    audit.add_argument("--after", type=int, help="only entries after this id")
    audit.add_argument("--action", choices=["reveal", "deny", "refer", "progress", "note"])
    audit.add_argument("--subject", help="who, e.g. key:3f9a1c2b7d4e")
    audit.add_argument("--source", help="a source id")
    audit.add_argument("--case", dest="case_id", help="a case's id in its source")
    audit.add_argument("--since", type=datetime.fromisoformat, help="ISO 8601 time")


def run_audit(args: argparse.Namespace, store: str) -> int:
    query = AuditQuery(
        first=args.first,
        after=args.after,
        action=args.action,
        subject=args.subject,
        source=args.source,
        case_id=args.case_id,
        since=args.since,
    )
    for record in asyncio.run(_read(AuditLog(store), query)):
        print(describe(record))
    return 0


async def _read(log: AuditLog, query: AuditQuery) -> list[AuditRecord]:
    try:
        return await log.entries(query)
    finally:
        await log.close()


def describe(record: AuditRecord) -> str:
    """One tab-separated line: id, time, action, who, roles, agency, case, fields, purpose,
    reason (``-`` for none)."""
    parts = [
        str(record.id),
        record.at.isoformat(timespec="seconds"),
        record.action,
        record.subject,
        ",".join(record.roles) or "-",
        record.agency or "-",
        f"{record.source}:{record.case_id}",
        ",".join(record.fields) or "-",
        record.purpose or "-",
        record.reason or "-",
    ]
    return "\t".join(parts)
