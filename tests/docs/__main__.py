"""``python -m tests.docs [--update]``: answer every example in README.md and docs/ with the demo.

Without ``--update`` it lists the examples whose shown answer differs from the real one (what
``tests/test_docs.py`` fails on); with it, it writes the real answers into the shown blocks.
Read the diff before committing it: an answer that changed is a behaviour that changed.
Needs PostgreSQL as the tests do (``COMPLAINT_GRAPH_TEST_DSN``, 127.0.0.1:5432, or embedded).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.docs import all_examples, ask, demo_gateway, rewrite_outputs, shows
from tests.postgres import server_dsn


async def answer_all(directory: Path, update: bool) -> int:
    examples, problems = all_examples()
    for problem in problems:
        print(problem, file=sys.stderr)
    admin_dsn, server = server_dsn(directory / "embedded-postgres")
    answers: list[tuple[Any, Any]] = []
    failed = bool(problems)
    try:
        async with demo_gateway(admin_dsn, directory) as gateway:
            for example in examples:
                if example.check == "valid":
                    continue
                answer = await ask(gateway, example)
                if example.check == "runs" and answer.has_errors:
                    print(f"{example.name}: answered with errors: {answer.body}", file=sys.stderr)
                    failed = True
                if example.check == "answer":
                    answers.append((example, answer.body))
    finally:
        if server is not None:
            server.cleanup()
    if update:
        for name in rewrite_outputs(answers):
            print(f"rewrote {name}")
        return 1 if failed else 0
    for example, body in answers:
        if not shows(example, body):
            print(f"{example.name}: the shown answer differs (--update rewrites it)")
            failed = True
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.docs", description=__doc__)
    parser.add_argument("--update", action="store_true", help="write the real answers")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="complaint-graph-docs-") as directory:
        return asyncio.run(answer_all(Path(directory), arguments.update))


if __name__ == "__main__":
    sys.exit(main())
