"""How the demo agencies' cases are linked: chains of referrals across all four systems.

Chain ``n`` (every 5th case number up to 500): the Damrongdhama Center's case ``n`` goes to the
1111 service's case ``n``, which goes to the city platform's case ``n``, which returns the result
to the Damrongdhama Center's case ``n``. Ids depend only on ``n``, so every sample computes the
same links without knowing the others' data.
"""

from __future__ import annotations

CHAIN_STEP = 5
CHAIN_END = 500


def in_chain(number: int) -> bool:
    return number % CHAIN_STEP == 0 and number <= CHAIN_END


def escalated(number: int) -> bool:
    """Every third chain is escalated to the 1111 service rather than forwarded."""
    return number % (CHAIN_STEP * 3) == 0


def damrongdhama_id(number: int) -> str:
    return str(number)


def pmoc_id(number: int) -> str:
    return f"PMOC-{number:06d}"


def traffy_id(number: int) -> str:
    return f"TF-{number:06d}"
