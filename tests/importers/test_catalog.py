"""Category, tag and series rules derived from the product text and codes."""

from __future__ import annotations

import pandas as pd
import pytest

from recsys.contract.importers.catalog import CATEGORIES, categorise, series_of, tags_of


@pytest.mark.parametrize(
    ("title", "category"),
    [
        ("JUMBO BAG RED RETROSPOT", "bags"),
        ("WHITE HANGING HEART T-LIGHT HOLDER", "candles_lights"),
        ("PINK CHERRY LIGHTS", "candles_lights"),
        ("REGENCY CAKESTAND 3 TIER", "kitchen_baking"),
        ("SET OF 3 CAKE TINS PANTRY DESIGN", "kitchen_baking"),
        ("15CM CHRISTMAS GLASS BALL 20 LIGHTS", "christmas_seasonal"),  # theme before lights
        ("PAPER CHAIN KIT 50'S CHRISTMAS", "christmas_seasonal"),
        ("BOOZE & WOMEN GREETING CARD", "stationery_cards"),
        ("GINGHAM HEART DOORSTOP RED", "home_decor"),
        ("CERAMIC BIRDHOUSE FINCH BLUE ROOF", "garden"),
        ("MOUSEY LONG LEGS SOFT TOY", "toys_games"),
        ("DIAMANTE NECKLACE BLACK", "jewellery_accessories"),
        ("SET/3 RED GINGHAM ROSE STORAGE BOX", "storage"),
        ("PACK OF 6 SKULL PAPER PLATES", "party"),
        ("PINK ROSE WASHBAG", "bathroom"),
        ("SET/2 SPOTTY + ROSE TEA TOWELS", "kitchen_baking"),
        ("INFLATABLE POLITICAL GLOBE", "other"),
        (None, "other"),
    ],
)
def test_categorise_keyword_rules(title: str | None, category: str) -> None:
    assert categorise(title) == category
    assert category in CATEGORIES


def test_categorise_matches_whole_words_and_plurals() -> None:
    assert categorise("SCENTED CANDLES") == "candles_lights"  # plural
    assert categorise("pink cherry lights") == "candles_lights"  # any case
    assert categorise("BAGATELLE") == "other"  # BAG inside a longer word is not a bag


def test_tags_of_normalises_colours_materials_themes() -> None:
    assert tags_of("RED SPOTTY WOODEN XMAS HEARTS") == [
        "red",
        "spots",
        "wood",
        "christmas",
        "heart",
    ]
    assert tags_of("VINTAGE UNION JACK CUSHION COVER") == ["union_jack", "vintage"]
    assert tags_of("GREY GRAY GREY") == ["grey"]
    assert tags_of(None) == []


def test_series_of_only_shared_numeric_stems() -> None:
    codes = pd.Series(["85123A", "85123B", "85123", "22423", "79323P", "POST"])
    assert series_of(codes).tolist() == ["85123", "85123", "85123", None, None, None]
