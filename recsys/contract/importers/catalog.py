"""Catalogue attributes derived from the product text and codes: category, tags and series.

The rules are keyword rules on the upper-cased title (see docs/real-data.md for the table);
they are deliberately simple and readable, so anyone can see why a product landed where it did.
"""

from __future__ import annotations

import re

import pandas as pd

OTHER = "other"

# Ordered: the first category with a keyword in the title wins. A keyword matches a whole word,
# also with a plural "S"/"ES" ("CANDLE" matches "CANDLES"). Seasonal and party goods come first
# because their theme is what sells them ("CHRISTMAS TREE CANDLE" is a Christmas item); storage
# and home decor come last because their words ("BOX", "HEART") also appear on other goods.
# fmt: off
CATEGORY_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "christmas_seasonal",
        ("CHRISTMAS", "XMAS", "ADVENT", "SANTA", "REINDEER", "SNOWFLAKE", "SNOWMAN", "NATIVITY",
         "EASTER", "HALLOWEEN", "BAUBLE", "HOLLY", "MISTLETOE", "STOCKING", "CHICK", "BUNNY",
         "NOEL", "ELF", "TREE DECORATION", "VALENTINE"),
    ),
    (
        "party",
        ("PARTY", "BUNTING", "BALLOON", "CONFETTI", "BIRTHDAY", "BANNER", "PLACE SETTING",
         "PAPER CUP", "PAPER PLATE", "PAPER CHAIN", "STRAW", "CRACKER", "PINATA", "CELEBRATION",
         "WEDDING", "GIFT WRAP", "PARASOL"),
    ),
    (
        "bathroom",
        ("BATH", "BATHROOM", "SOAP", "TOILET", "WASHBAG", "SPONGE", "HOT WATER BOTTLE", "TISSUE",
         "PLASTER", "TOOTH", "TOOTHBRUSH", "SHOWER", "TOILETRY", "COSMETIC", "MAKE UP", "FLANNEL",
         "LIP GLOSS", "NAIL", "HAND CREAM", "BATH SALT", "BATH TOWEL", "HAND TOWEL"),
    ),
    (
        "kitchen_baking",
        ("MUG", "CUP", "SAUCER", "TEAPOT", "TEA", "TEATIME", "COFFEE", "CAKE", "CAKESTAND",
         "BAKING", "BAKE", "MOULD", "CUTLERY", "SPOON", "FORK", "KNIFE", "KNIVE", "PLATE", "BOWL",
         "DISH", "JUG", "TRAY", "APRON", "OVEN", "KITCHEN", "LUNCH BOX", "LUNCHBOX", "JAR",
         "BOTTLE", "COASTER", "PLACEMAT", "NAPKIN", "DOILY", "DOILIE", "BREAD", "BISCUIT",
         "CHOPPING", "COLANDER", "SCALES", "TUMBLER", "BEAKER", "GOBLET", "EGG CUP", "FOOD",
         "SNACK", "RECIPE", "SUGAR", "CHOCOLATE", "PANTRY", "GLASSES", "WINE", "CHAMPAGNE",
         "COCKTAIL", "MILK", "ICE", "POPCORN", "SWEETIE", "CANDY", "CAKE CASE", "CUPCAKE",
         "DRINK", "PICNIC", "TRIFLE", "JAM", "COOKIE", "ROLLING PIN", "GRATER", "TIMER",
         "MEASURING", "WHISK", "TOAST", "TOASTER", "STRAINER", "CAFETIERE", "CONDIMENT", "SALT",
         "PEPPER", "DINNER", "DINER", "BREAKFAST", "LUNCH", "PAN", "TOWEL", "PETIT FOUR"),
    ),
    (
        "jewellery_accessories",
        ("NECKLACE", "NECKL", "BRACELET", "EARRING", "RING", "BROOCH", "PENDANT", "CHARM", "BEAD",
         "JEWEL", "JEWELLED", "JEWELLERY", "DIAMANTE", "HAIR", "HAIRCLIP", "HAIR SLIDE", "BANGLE",
         "PURSE", "WALLET", "UMBRELLA", "SCARF", "GLOVE", "HAT", "KEYRING", "COMPACT",
         "SUNGLASSES", "WATCH", "TIARA", "BUTTON", "CUFFLINK", "BELT", "HANDBAG", "MITTEN",
         "SOCK", "SLIPPER", "PONCHO", "RAIN", "BLING", "CROWN", "LOCKET", "CHOKER", "PASSPORT",
         "POCKET", "FAN"),
    ),
    (
        "bags",
        ("BAG", "SHOPPER", "TOTE", "BACKPACK", "RUCKSACK", "SATCHEL", "HOLDALL", "LUGGAGE",
         "SUITCASE"),
    ),
    (
        "candles_lights",
        ("CANDLE", "CANDLEHOLDER", "CANDLESTICK", "T-LIGHT", "TLIGHT", "TEALIGHT", "LIGHT",
         "LANTERN", "LAMP", "LAMPSHADE", "INCENSE", "OIL BURNER", "BURNER", "VOTIVE",
         "CHANDELIER", "MATCHES", "LIGHTER", "FRAGRANCE", "DIFFUSER", "SCENTED", "WAX", "TORCH",
         "LED", "NIGHTLIGHT", "FAIRY LIGHT", "POTPOURRI", "OIL"),
    ),
    (
        "toys_games",
        ("TOY", "GAME", "PUZZLE", "JIGSAW", "DOLL", "TEDDY", "SKITTLE", "DOMINO", "DOMINOE",
         "PLAYING CARD", "KITE", "YO-YO", "SPINNING TOP", "MARBLE", "PUPPET", "CHALKBOARD",
         "MAGIC DRAWING", "BUBBLE", "RATTLE", "BLOCK", "SOLDIER", "DINOSAUR", "RACING",
         "NINJA", "SPACEBOY", "PLAYHOUSE", "TRAIN", "CAR", "ROBOT", "MAGIC", "SKIPPING ROPE",
         "HARMONICA", "WHISTLE", "KALEIDOSCOPE", "BINGO", "SNAKES", "LADDERS", "CROQUET",
         "BOUNCE", "DRESS UP", "COLOURING", "CRAYON", "KNITTING", "SEWING", "CRAFT", "KIT",
         "FELTCRAFT", "MASK", "WATER PISTOL", "BALL", "BEAR", "MONKEY", "RABBIT", "ANIMAL"),
    ),
    (
        "stationery_cards",
        ("CARD", "NOTEBOOK", "NOTE BOOK", "NOTEPAD", "PEN", "PENCIL", "ERASER", "RUBBER",
         "STICKER", "WRAP", "WRAPPING", "GIFT TAG", "TAG", "ENVELOPE", "JOURNAL", "DIARY",
         "CALENDAR", "BOOK", "SKETCHBOOK", "RULER", "SHARPENER", "STAMP", "TAPE", "CHALK",
         "PAPER", "ALBUM", "PAD", "LETTER", "POSTCARD", "GIFTWRAP", "RIBBON", "MEMO",
         "POST-IT", "BOOKMARK", "STATIONERY", "WRITING", "SCISSOR", "GLUE", "CLIPBOARD",
         "ORGANISER", "NOTE", "SHEET"),
    ),
    (
        "garden",
        ("GARDEN", "PLANT", "PLANTER", "PLANT POT", "FLOWER POT", "HERB", "WATERING CAN",
         "BIRD FEEDER", "FEEDER", "BIRDHOUSE", "BIRD HOUSE", "BIRD TABLE", "GNOME", "TOADSTOOL",
         "SEED", "TROWEL", "SPADE", "WINDMILL", "BUCKET", "HANGING BASKET", "SHED",
         "JARDIN", "WINDCHIME", "WIND CHIME", "GREENHOUSE", "OUTDOOR", "THERMOMETER", "FORK",
         "GROW", "PLANTING", "WHEELBARROW", "POND", "NEST BOX", "SUNFLOWER", "MUSHROOM", "PEG"),
    ),
    (
        "storage",
        ("BOX", "BOXE", "STORAGE", "BASKET", "TIN", "CONTAINER", "HOOK", "HANGER", "RACK",
         "DRAWER", "CABINET", "TRUNK", "CHEST", "CASE", "TIDY", "BIN", "CRATE", "SHELF",
         "TRINKET", "CADDY", "HOLDER", "ORGANISER", "POUCH", "HAMPER", "CUPBOARD", "WARDROBE",
         "CONTAINERS", "NEST", "BANK", "MONEY BOX", "POT"),
    ),
    (
        "home_decor",
        ("CUSHION", "FRAME", "MIRROR", "CLOCK", "SIGN", "DOORSTOP", "DOORMAT", "DOOR MAT",
         "CURTAIN", "DECORATION", "DEC", "DECORATIVE", "HANGING", "GARLAND", "WREATH", "MOBILE",
         "ORNAMENT", "VASE", "PICTURE", "PRINT", "WALL", "PLAQUE", "HEART", "THROW", "QUILT",
         "BLANKET", "RUG", "TILE", "FLOWER", "ARTIFICIAL", "STATUE", "FIGURE", "BUST", "KNOB",
         "CHAIR", "TABLE", "STOOL", "FURNITURE", "ART", "WALL ART", "BIRD", "BUTTERFLY",
         "STAR", "ANGEL", "DOOR", "SCULPTURE", "PHOTO", "FLOCK", "CANVAS", "MAGNET", "BELL",
         "FEATHER", "STAND", "COVER", "BOTTLE", "LANTERN", "PAPERWEIGHT", "SHELL", "CHIME",
         "HOME", "ROSE", "PEONY", "DAISY", "LAVENDER", "BLOSSOM", "ORCHID", "TULIP", "LILY",
         "PANEL", "BUDDHA", "GNOME", "DOG", "CAT", "HEN", "CHICKEN", "OWL", "ELEPHANT", "HORSE",
         "PEARL", "CRYSTAL", "GLASS", "BALL", "DOILY", "DRAWER KNOB", "FLAG"),
    ),
)

# Tags: normalised keywords (colours, materials, themes); a source word maps to its tag.
TAG_WORDS: dict[str, str] = {
    **{w: w.lower() for w in (
        "PINK", "RED", "BLUE", "WHITE", "BLACK", "GREEN", "CREAM", "IVORY", "PURPLE", "GOLD",
        "SILVER", "YELLOW", "ORANGE", "BROWN", "TURQUOISE", "LILAC", "AMBER",
        "GLASS", "CERAMIC", "METAL", "ZINC", "ENAMEL", "PAPER", "FELT", "CRYSTAL", "COTTON",
        "LACE", "VELVET", "ACRYLIC", "PORCELAIN", "WICKER", "SEAGRASS", "SLATE", "RESIN",
        "PEARL", "SHELL", "LEATHER", "SILK", "BONE", "CHINA", "TIN", "WIRE", "STEEL",
        "VINTAGE", "RETRO", "HEART", "FLORAL", "ROSE", "BIRD", "BUTTERFLY", "STAR", "CAT",
        "DOG", "OWL", "SKULL", "PAISLEY", "GINGHAM", "STRAWBERRY", "CHERRY", "FOLKART",
        "BAROQUE", "FRENCH", "ENGLISH", "ANTIQUE", "SCANDINAVIAN", "SPACEBOY", "WOODLAND",
        "CHRISTMAS", "EASTER", "RETROSPOT", "ORIGAMI", "REGENCY", "VICTORIAN", "EDWARDIAN",
        "BOTANICAL", "LOVE", "TEA", "CAKE", "BAKING", "GARDEN", "PARTY", "SWEETHEART",
        "STRIPE", "FLOCK", "BLOSSOM", "DAISY", "LAVENDER", "PEONY", "PANTRY", "DINER",
    )},
    "GREY": "grey", "GRAY": "grey", "WOOD": "wood", "WOODEN": "wood", "XMAS": "christmas",
    "HEARTS": "heart", "FLOWER": "floral", "FLOWERS": "floral", "ROSES": "rose",
    "BIRDS": "bird", "STARS": "star", "SKULLS": "skull", "STRIPES": "stripe",
    "STRIPEY": "stripe", "STRIPED": "stripe", "SPOTTY": "spots", "SPOT": "spots",
    "SPOTS": "spots", "DOTS": "spots", "POLKA": "spots", "POLKADOT": "spots",
    "BUTTERFLIES": "butterfly", "CATS": "cat", "DOGS": "dog", "OWLS": "owl",
    "CHERRIES": "cherry", "STRAWBERRIES": "strawberry", "CERAMICS": "ceramic",
}
# fmt: on
MAX_TAGS = 6

_WORDS = re.compile(r"[A-Z][A-Z'\-]*")


def _compile(keywords: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(k) for k in sorted(set(keywords), key=len, reverse=True))
    return re.compile(rf"(?<![A-Z-])(?:{alternatives})(?:S|ES)?(?![A-Z-])")


_CATEGORY_PATTERNS = tuple((name, _compile(words)) for name, words in CATEGORY_RULES)
CATEGORIES: tuple[str, ...] = tuple(name for name, _ in CATEGORY_RULES) + (OTHER,)


def normalise_text(text: str | None) -> str:
    """Upper-cased text with punctuation other than `-` and `'` turned into single spaces."""
    if not text:
        return ""
    return " ".join(re.sub(r"[^A-Z0-9'\- ]", " ", str(text).upper()).split())


def categorise(title: str | None) -> str:
    """The category of a product from its title by the first matching keyword rule, or "other"."""
    text = normalise_text(title)
    for name, pattern in _CATEGORY_PATTERNS:
        if pattern.search(text):
            return name
    return OTHER


def tags_of(title: str | None) -> list[str]:
    """Normalised colour, material and theme keywords of a title, in order, at most `MAX_TAGS`."""
    text = normalise_text(title)
    tags: list[str] = []
    if "UNION JACK" in text:
        tags.append("union_jack")
    for word in _WORDS.findall(text):
        tag = TAG_WORDS.get(word)
        if tag is not None and tag not in tags:
            tags.append(tag)
    return tags[:MAX_TAGS]


def series_of(sku_ids: pd.Series) -> pd.Series:
    """The numeric stem of each code if more than one code shares it (85123A -> "85123"), else None.

    The stem is the code's leading digits; the bare code (85123) counts as a variant of its stem.
    """
    stems = sku_ids.astype(str).str.extract(r"^(\d+)", expand=False)
    shared = stems.map(stems.value_counts()) > 1
    return stems.where(shared & stems.notna(), None).astype(object)
