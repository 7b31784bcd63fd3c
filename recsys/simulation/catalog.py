"""The simulated catalogue: SKUs whose latent vector follows their category, series and brand."""

from __future__ import annotations

import numpy as np

from recsys.simulation.config import SimConfig
from recsys.simulation.world import (
    END_ACTIVE,
    END_DISCONTINUED,
    END_SUSPENDED,
    CatalogText,
    Skus,
    format_ids,
)

_SYLLABLES = (
    "lu mei xin hua jia le yi tian bao kang fu an yun qing ming rui xiang zhi chun "
    "shan he mu lan xue yue hong bei ke nuo"
).split()
_SERIES_WORDS = (
    "Classic Pro Lite Home Fresh Pure Plus Kids Origin Select Daily Gold Silk Prime Eco Mini"
).split()
_NOUNS: dict[str, tuple[str, ...]] = {
    "fresh_food": ("mango", "salmon", "beef", "strawberry", "eggs", "shrimp", "kiwi"),
    "snacks": ("nuts", "jerky", "crackers", "seaweed", "cookies", "dried fruit"),
    "beverages": ("green tea", "coffee", "juice", "milk tea", "spring water", "soy milk"),
    "household": ("detergent", "tissues", "dish soap", "trash bags", "cleaner", "softener"),
    "personal_care": ("shampoo", "toothpaste", "body wash", "razor", "hand cream"),
    "cosmetics": ("serum", "lipstick", "sunscreen", "face mask", "toner", "foundation"),
    "apparel": ("dress", "t-shirt", "jacket", "jeans", "sweater", "pajamas"),
    "shoes": ("sneakers", "sandals", "boots", "slippers", "loafers"),
    "baby": ("diapers", "formula", "baby wipes", "bottle", "romper"),
    "home_kitchen": ("pan", "knife set", "storage box", "towel", "bedding", "mug"),
    "health": ("vitamin c", "fish oil", "probiotics", "collagen", "calcium"),
    "electronics_accessories": ("charger", "earbuds", "power bank", "cable", "phone case"),
}
# One pair of tag words per latent dimension: a SKU is tagged by the poles of its strongest
# within-category dimensions, so tags carry the taste signal a new SKU has no history for.
_TAG_POLES = (
    ("trendy", "timeless"),
    ("premium-look", "practical"),
    ("organic", "classic-recipe"),
    ("imported", "local"),
    ("for-kids", "for-adults"),
    ("gift", "everyday"),
    ("light", "rich"),
    ("minimalist", "colorful"),
    ("sporty", "cozy"),
    ("spicy", "mild"),
    ("eco", "value-pack"),
    ("for-her", "unisex"),
    ("seasonal", "all-season"),
    ("traditional", "novel"),
    ("compact", "family-size"),
    ("natural", "high-tech"),
)


def _tag_names(latent_dim: int) -> list[tuple[str, str]]:
    poles = list(_TAG_POLES[:latent_dim])
    poles += [(f"style-{d}a", f"style-{d}b") for d in range(len(poles), latent_dim)]
    return poles


def _allocate(total: int, weights: np.ndarray) -> np.ndarray:
    """Integer counts proportional to `weights` summing to `total` (largest remainder)."""
    raw = total * weights / weights.sum()
    counts = np.floor(raw).astype(np.int64)
    counts[np.argsort(-(raw - counts), kind="stable")[: total - counts.sum()]] += 1
    return counts


def _brand_names(rng: np.random.Generator, n: int) -> np.ndarray:
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < n:
        a, b = rng.choice(len(_SYLLABLES), size=2)
        name = (_SYLLABLES[a] + _SYLLABLES[b]).capitalize()
        if name in seen:
            name = f"{name} {len(names)}"
        seen.add(name)
        names.append(name)
    return np.array(names, dtype=object)


def build_skus(config: SimConfig, rng: np.random.Generator) -> tuple[Skus, CatalogText]:
    """Draw the catalogue: attributes, latent vectors, quality, launches, ends and incidents."""
    cats = config.categories
    n, dim, n_cat = config.n_skus, config.latent_dim, len(cats)
    n_brands = config.brands_per_category * n_cat
    n_series = n_brands * config.series_per_brand

    centroid = rng.normal(0.0, config.sigma_category, (n_cat, dim))
    brand_off = rng.normal(0.0, config.sigma_brand, (n_brands, dim))
    brand_quality = rng.normal(0.0, config.sigma_brand_quality, n_brands)
    brand_price = rng.normal(0.0, config.sigma_brand_price, n_brands)
    series_off = rng.normal(0.0, config.sigma_series, (n_series, dim))
    series_price = rng.normal(0.0, config.sigma_series_price, n_series)

    category = np.repeat(np.arange(n_cat), _allocate(n, np.array([c.weight for c in cats])))
    # Zipf-like brand shares within a category: a few big brands, a long tail
    brand_weights = 1.0 / np.arange(1, config.brands_per_category + 1) ** 0.8
    brand_weights /= brand_weights.sum()
    local_brand = rng.choice(config.brands_per_category, size=n, p=brand_weights)
    brand = category * config.brands_per_category + local_brand
    has_series = rng.random(n) >= config.no_series_share
    series = np.where(
        has_series,
        brand * config.series_per_brand + rng.integers(0, config.series_per_brand, n),
        -1,
    )

    latent = centroid[category] + brand_off[brand] + rng.normal(0.0, config.sigma_sku, (n, dim))
    latent[has_series] += series_off[series[has_series]]
    quality = brand_quality[brand] + rng.normal(0.0, config.sigma_sku_quality, n)
    medians = np.array([c.price_median for c in cats])
    sigmas = np.array([c.price_sigma for c in cats])
    log_rel = brand_price[brand] + rng.normal(0.0, 1.0, n) * sigmas[category]
    log_rel[has_series] += series_price[series[has_series]]
    log_rel += config.quality_price_effect * quality
    price = np.maximum(np.round(medians[category] * np.exp(log_rel), 1), 0.5)
    appeal = rng.normal(0.0, config.sigma_appeal, n)

    launch = np.where(
        rng.random(n) < config.prelaunched_share,
        -rng.uniform(0.0, config.sku_history_days, n),
        rng.uniform(0.0, config.n_days - 1, n),
    )
    # ids ascend with launch time, as a catalogue's would
    order = np.argsort(launch, kind="stable")
    category, brand, series, latent, quality = (
        category[order],
        brand[order],
        series[order],
        latent[order],
        quality[order],
    )
    log_rel, price, appeal, launch = log_rel[order], price[order], appeal[order], launch[order]

    end_day, end_status = _draw_ends(config, rng, launch)
    region_mask, regional = _draw_regions(config, rng, category)
    onset, rate = _draw_incidents(config, rng, launch, end_day, appeal)

    skus = Skus(
        ids=format_ids("S", np.arange(1, n + 1), 5),
        category=category.astype(np.int16),
        brand=brand.astype(np.int32),
        series=series.astype(np.int32),
        price=price.astype(np.float64),
        log_rel_price=(np.log(price / medians[category])).astype(np.float32),
        latent=latent.astype(np.float32),
        appeal=appeal.astype(np.float32),
        quality=quality.astype(np.float32),
        launch_day=launch,
        end_day=end_day,
        end_status=end_status,
        region_mask=region_mask,
        incident_onset=onset,
        incident_rate=rate.astype(np.float32),
    )
    text = _catalog_text(config, rng, skus, latent - centroid[category], regional)
    return skus, text


def _draw_ends(
    config: SimConfig, rng: np.random.Generator, launch: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Days some SKUs stop being sold (discontinued, or suspended by the platform)."""
    n, days = len(launch), config.n_days
    end_day = np.full(n, np.inf)
    end_status = np.full(n, END_ACTIVE, dtype=np.int8)
    first = np.maximum(launch, 0.0) + config.min_days_on_sale
    eligible = np.flatnonzero(first < days - 1)
    for share, status in (
        (config.discontinued_share, END_DISCONTINUED),
        (config.suspended_share, END_SUSPENDED),
    ):
        pool = eligible[end_status[eligible] == END_ACTIVE]
        k = min(len(pool), round(share * n))
        chosen = rng.choice(pool, size=k, replace=False) if k else pool[:0]
        # sales stop at a day boundary, so no event of that day follows the stop
        end_day[chosen] = np.ceil(rng.uniform(first[chosen], days - 1))
        end_status[chosen] = status
    return end_day, end_status


def _draw_regions(
    config: SimConfig, rng: np.random.Generator, category: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Bit masks of the regions each SKU is sold in (all bits = everywhere)."""
    n, g = len(category), config.n_regions
    everywhere = (1 << g) - 1
    regional_share = np.array([c.regional_share for c in config.categories])[category]
    regional = rng.random(n) < regional_share
    mask = np.full(n, everywhere, dtype=np.int32)
    k = rng.integers(1, min(3, g) + 1, n)
    # random regions per SKU: the k smallest of g random keys
    keys = rng.random((n, g))
    ranks = np.argsort(np.argsort(keys, axis=1), axis=1)
    bits = (ranks < k[:, None]).astype(np.int64) << np.arange(g)
    mask[regional] = bits.sum(axis=1)[regional].astype(np.int32)
    return mask, regional & (g > 1)


def _draw_incidents(
    config: SimConfig,
    rng: np.random.Generator,
    launch: np.ndarray,
    end_day: np.ndarray,
    appeal: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Onset days and extra return rates of the SKUs that suffer a quality incident."""
    n, days = len(launch), config.n_days
    onset = np.full(n, np.inf)
    rate = np.zeros(n)
    lo, hi = (w * days for w in config.incident_onset_window)
    # incidents hit SKUs that sell (high appeal) and stay on sale, so the wave is visible
    eligible = np.flatnonzero(
        (launch < lo - config.incident_min_age_days)
        & np.isinf(end_day)
        & (appeal > np.quantile(appeal, config.incident_appeal_quantile))
    )
    k = min(len(eligible), max(config.min_incidents, round(config.incident_share * n)))
    chosen = rng.choice(eligible, size=k, replace=False) if k else eligible[:0]
    onset[chosen] = rng.uniform(lo, hi, k)
    rate[chosen] = rng.uniform(*config.incident_return_rate, k)
    return onset, rate


def _catalog_text(
    config: SimConfig,
    rng: np.random.Generator,
    skus: Skus,
    residual: np.ndarray,
    regional: np.ndarray,
) -> CatalogText:
    """Titles and tags; tags come from the strongest within-category latent dimensions."""
    n, cats = len(skus), config.categories
    n_brands = config.brands_per_category * len(cats)
    brand_names = _brand_names(rng, n_brands)
    series_brand = np.arange(n_brands * config.series_per_brand) // config.series_per_brand
    series_words = rng.choice(np.array(_SERIES_WORDS, dtype=object), len(series_brand))
    series_names = np.array(
        [f"{brand_names[b]} {w}" for b, w in zip(series_brand, series_words, strict=True)],
        dtype=object,
    )
    poles = _tag_names(config.latent_dim)
    top = np.argsort(-np.abs(residual), axis=1)[:, :2]
    noun_pick = rng.integers(0, 1 << 30, n)
    titles: list[str] = []
    tags: list[list[str]] = []
    for i in range(n):
        cat = cats[int(skus.category[i])].name
        nouns = _NOUNS.get(cat, (cat.replace("_", " "),))
        s = int(skus.series[i])
        head = series_names[s] if s >= 0 else brand_names[int(skus.brand[i])]
        titles.append(f"{head} {nouns[noun_pick[i] % len(nouns)]} {skus.ids[i]}")
        row = [poles[d][0] if residual[i, d] > 0 else poles[d][1] for d in top[i]]
        if skus.log_rel_price[i] > 0.5:
            row.append("premium")
        elif skus.log_rel_price[i] < -0.5:
            row.append("budget")
        if regional[i]:
            row.append("regional-specialty")
        tags.append(sorted(row))
    return CatalogText(
        titles=np.array(titles, dtype=object),
        tags=tags,
        brand_names=brand_names,
        series_names=series_names,
    )
