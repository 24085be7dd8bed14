"""``python -m bench http`` (side by side), ``profile``, ``ab`` (two versions),
``peers`` (PostGraphile 5 and 4, the floor),
``instructions`` (counted by valgrind), ``pages``, ``scale`` (1 to 100 sources)."""

from __future__ import annotations

import sys


def main() -> None:
    command, *rest = sys.argv[1:] or ["http"]
    if command == "http":
        from bench import http

        http.main(rest)
    elif command == "profile":
        from bench import profile

        profile.main(rest)
    elif command == "ab":
        from bench import ab

        ab.main(rest)
    elif command == "instructions":
        from bench import instructions

        instructions.main(rest)
    elif command == "peers":
        from bench import peers

        peers.main(rest)
    elif command == "scale":
        from bench import scale

        scale.main(rest)
    elif command == "pages":
        from bench import pages

        sys.argv = ["python -m bench pages", *rest]
        pages.main()
    else:
        raise SystemExit(
            "usage: python -m bench [http|peers|profile|ab|instructions|pages|scale] ...; "
            f"unknown {command!r}"
        )


if __name__ == "__main__":
    main()
