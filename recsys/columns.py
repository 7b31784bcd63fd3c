"""Column names of the data contract; code refers to columns only through these constants."""

from __future__ import annotations


class Columns:
    """Names of every column in the data contract and in reco tables."""

    # ids
    SKU_ID = "sku_id"
    AGENT_ID = "agent_id"
    CUSTOMER_ID = "customer_id"
    SHARE_ID = "share_id"
    PURCHASE_ID = "purchase_id"
    ORDER_ID = "order_id"
    RETURN_ID = "return_id"

    # skus
    TITLE = "title"
    CATEGORY = "category"
    SERIES = "series"
    BRAND = "brand"
    PRICE = "price"
    TAGS = "tags"
    LAUNCHED_AT = "launched_at"
    REGIONS = "regions"
    STATUS = "status"

    # agents / customers
    REGION = "region"
    TIER = "tier"
    JOINED_AT = "joined_at"

    # events
    TS = "ts"
    CHANNEL = "channel"
    AUDIENCE_SIZE = "audience_size"
    QTY = "qty"
    UNIT_PRICE = "unit_price"
    REASON = "reason"

    # reco tables (model output)
    SCORE = "score"
    RANK = "rank"
    REASONS = "reasons"
    SIMILAR_SKU_ID = "similar_sku_id"  # similar_skus tables


class Tables:
    """Names of the six tables of a data directory, in load (dependency) order."""

    SKUS = "skus"
    AGENTS = "agents"
    CUSTOMERS = "customers"
    SHARES = "shares"
    PURCHASES = "purchases"
    RETURNS = "returns"

    ALL: tuple[str, ...] = (SKUS, AGENTS, CUSTOMERS, SHARES, PURCHASES, RETURNS)


SKU_STATUSES: tuple[str, ...] = ("active", "suspended", "discontinued")
RETURN_REASONS: tuple[str, ...] = (
    "quality",
    "not_as_described",
    "damaged",
    "fit",
    "changed_mind",
    "other",
)
# Returns that say the product itself was at fault; they count against a pick (issue 3, 5).
FAULT_RETURN_REASONS: tuple[str, ...] = ("quality", "not_as_described")
TIERS: tuple[int, ...] = (1, 2, 3, 4, 5)
