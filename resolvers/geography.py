"""DOPA administrative areas with Thai and English names, from the geothai package."""

from __future__ import annotations

from functools import lru_cache

import geothai
import strawberry


@strawberry.type(description="A province, district or subdistrict, by its DOPA code.")
class Area:
    code: str
    name_th: str | None = strawberry.field(description="Null when the code is not a known area.")
    name_en: str | None


@lru_cache(maxsize=10_000)
def area(code: str | None) -> Area | None:
    """The named area for a DOPA code of any level (2, 4 or 6 digits); None for no code."""
    if not code:
        return None
    found = {2: geothai.province, 4: geothai.district, 6: geothai.subdistrict}.get(len(code))
    named = found(code) if found is not None else None
    if named is None:
        return Area(code=code, name_th=None, name_en=None)
    return Area(code=code, name_th=named.name_th, name_en=named.name_en)
