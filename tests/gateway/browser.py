"""A real headless browser for page tests: Debian's chromium, driven from its command line.

No sleeps: chromium runs the page in virtual time (``--virtual-time-budget``), which stands
still while requests are in flight, and the tests then read the DOM marker the page sets when
it has drawn everything. ``make test`` installs chromium and the Thai fonts when missing.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

WINDOW = (1280, 1500)
VIRTUAL_TIME_BUDGET_MS = 30_000


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise RuntimeError(
            "chromium is not installed: `make test` installs it "
            "(apt-get install chromium fonts-thai-tlwg)"
        )
    return found


def _run(url: str, *flags: str, user_data: Path) -> str:
    command = [
        chromium(),
        "--headless",
        "--disable-gpu",
        "--no-sandbox",
        "--hide-scrollbars",
        "--no-first-run",
        "--force-device-scale-factor=1",
        f"--user-data-dir={user_data}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}",
        *flags,
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"chromium failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def dump_dom(url: str, user_data: Path) -> str:
    """The page's DOM, serialised after its scripts ran out of work or virtual time."""
    return _run(url, "--dump-dom", user_data=user_data)


def screenshot(url: str, path: Path, user_data: Path) -> Path:
    """A PNG of the window, taken the same way."""
    _run(url, f"--screenshot={path}", user_data=user_data)
    if not path.exists():
        raise RuntimeError(f"chromium wrote no screenshot to {path}")
    return path
