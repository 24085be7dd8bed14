"""Categories and agencies are reference data: one graph object each, shared by every case."""

from __future__ import annotations

from resolvers.agency import Agency, Category
from resolvers.directory import CategoryInfo
from sources import AgencyInfo


def test_one_object_per_category_and_agency_and_a_new_one_when_the_config_changes() -> None:
    roads = CategoryInfo("ROADS", "ถนน", "Roads")
    assert Category.of(roads) is Category.of(CategoryInfo("ROADS", "ถนน", "Roads"))
    renamed = Category.of(CategoryInfo("ROADS", "ถนนและทางเท้า", "Roads and paths"))
    assert renamed is not Category.of(roads) and renamed.name_th == "ถนนและทางเท้า"
    moi = AgencyInfo("MOI-DDC", "ศูนย์ดำรงธรรม", "Damrongdhama Center")
    assert Agency.of(moi) is Agency.of(AgencyInfo("MOI-DDC", "ศูนย์ดำรงธรรม", "Damrongdhama Center"))
    assert (Agency.of(moi).code, Agency.of(moi).name_en) == ("MOI-DDC", "Damrongdhama Center")
