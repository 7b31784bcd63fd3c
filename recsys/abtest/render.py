"""The report as one self-contained HTML page (inline CSS and SVG; nothing loaded from outside)."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

from recsys.abtest.plots import daily_svg, effects_svg

CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:2rem auto;
max-width:1100px;color:#1f2328;padding:0 1rem;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;
border-bottom:1px solid #d0d7de;padding-bottom:.3rem}
.sub{color:#57606a;margin-top:0}
.banner{padding:1rem 1.2rem;border-radius:6px;margin:1rem 0;font-size:1.05rem}
.fail{background:#ffebe9;border:2px solid #cf222e;color:#82071e}
.ok{background:#dafbe1;border:1px solid #1a7f37;color:#116329}
.warn{background:#fff8c5;border:1px solid #bf8700;color:#7d4e00}
table{border-collapse:collapse;width:100%;font-size:.92rem;margin:.5rem 0}
th,td{border-bottom:1px solid #d8dee4;padding:.35rem .5rem;text-align:right;vertical-align:top}
th{background:#f6f8fa}td:first-child,th:first-child{text-align:left}
.better{color:#1a7f37;font-weight:600}.worse{color:#cf222e;font-weight:600}
.untrusted{color:#cf222e;font-style:italic}.muted{color:#57606a}
.tag{display:inline-block;font-size:.75rem;padding:0 .4rem;border-radius:1rem;
background:#ddf4ff;color:#0969da;margin-left:.3rem}
.plot svg{max-width:100%;height:auto}
ul.notes li{margin:.2rem 0}
"""


def _fmt(value: float | None, unit: str, signed: bool = False) -> str:
    """A number as the page shows it: % for rates (differences in points), 2 decimals for RMB."""
    if value is None:
        return "n/a"
    if unit == "rate":
        return f"{100 * value:+.2f} pp" if signed else f"{100 * value:.2f}%"
    return f"{value:{'+' if signed else ''},.2f}"


def _pct(value: float | None, signed: bool = True) -> str:
    """A relative number in percent."""
    return "n/a" if value is None else f"{100 * value:{'+' if signed else ''}.1f}%"


def _p(value: float | None) -> str:
    """A p-value with three significant digits (HTML text)."""
    if value is None:
        return "n/a"
    return f"{value:.3g}" if value >= 1e-4 else "&lt; 0.0001"


def _p_is(value: float | None) -> str:
    """`p = 0.0123` or `p < 0.0001`, for sentences (HTML text)."""
    text = _p(value)
    return f"p {text}" if text.startswith("&lt;") else f"p = {text}"


def _interval(ci: list[float | None], fmt: Any) -> str:
    """`[lo, hi]` formatted."""
    if ci[0] is None or ci[1] is None:
        return "n/a"
    return f"[{fmt(ci[0])}, {fmt(ci[1])}]"


def _when(iso: str) -> str:
    """An ISO time as `2025-03-03 10:00 UTC` (to the minute)."""
    return f"{iso[:16].replace('T', ' ')} UTC"


def _verdict(c: dict[str, Any]) -> str:
    """The verdict cell, coloured, and marked when the report is untrustworthy."""
    text = escape(c["verdict"])
    css = c["verdict"] if c["verdict"] in ("better", "worse") else "muted"
    cell = f'<span class="{css}">{text}</span>'
    if not c["trustworthy"]:
        cell += ' <span class="untrusted">(untrustworthy: SRM)</span>'
    return cell


def _srm_banner(report: dict[str, Any]) -> str:
    """Red banner on top when the split is off; a quiet green line otherwise."""
    srm = report["srm"]
    split = ", ".join(f"{escape(k)} {v:,}" for k, v in srm["counts"].items())
    expected = ", ".join(f"{escape(k)} {v:,.0f}" for k, v in srm["expected"].items())
    if not srm["ok"]:
        return (
            '<div class="banner fail"><strong>Sample ratio mismatch.</strong> Exposed agents per '
            f"variant ({split}) do not match the configured weights (expected {expected}); "
            f"chi-square {_p_is(srm['pvalue'])}, alarm below {srm['alpha']:g}. Something in "
            "assignment or logging is broken: <strong>every verdict below is untrustworthy"
            "</strong> until the cause is found.</div>"
        )
    return (
        f'<div class="banner ok">Sample ratio OK: {split} exposed agents against expected '
        f"{expected} (chi-square {_p_is(srm['pvalue'])}, alarm below {srm['alpha']:g}).</div>"
    )


def _summary(report: dict[str, Any]) -> str:
    """The primary metric's verdict per treatment and the guardrails."""
    primary = next(m for m in report["metrics"] if m["primary"])
    items = []
    for c in primary["comparisons"]:
        items.append(
            f"<li><strong>{escape(c['treatment'])} vs {escape(c['control'])}</strong>: "
            f"{escape(primary['label'])} {_fmt(c['effect'], primary['unit'], True)} "
            f"({_pct(c['rel_effect'])}, {_interval(c['rel_effect_ci'], _pct)}), "
            f"{_p_is(c['pvalue'])}: {_verdict(c)}</li>"
        )
    guards = []
    for g in report["guardrails"]:
        state = (
            '<span class="worse">breached: significantly worse</span>'
            if g["breached"]
            else '<span class="better">holds</span> (not significantly worse)'
        )
        ci = _interval(g["effect_ci"], lambda v: _fmt(v, "rate", True))
        guards.append(
            f"<li>{escape(g['label'])}, {escape(g['treatment'])}: {state}; effect "
            f"{_fmt(g['effect'], 'rate', True)} {ci}, "
            f"{_p_is(g['pvalue'])}</li>"
        )
    power = round(100 * report["settings"]["power"])
    mdes = ", ".join(
        f"{escape(c['treatment'])} {_pct(c['rel_mde'], signed=False)}"
        for c in primary["comparisons"]
    )
    note = (
        f"<p>Power: at these sizes the smallest relative effect on the primary metric a test "
        f"finds with {power}% power (alpha {report['settings']['alpha']:g}) is {mdes}; a smaller "
        "true effect is likely to come out as no detectable difference.</p>"
    )
    return (
        "<h2>Verdict</h2><p>Primary metric (decides):</p><ul>"
        + "".join(items)
        + "</ul>"
        + note
        + "<p>Guardrails (judged separately; return rate must not get worse):</p><ul>"
        + "".join(guards)
        + "</ul>"
    )


def _metrics_table(report: dict[str, Any]) -> str:
    """Every metric: values, effect with interval, p-value, CUPED variance reduction, MDE."""
    level = round(100 * (1 - report["settings"]["alpha"]))
    head = (
        "<tr><th>metric</th><th>arm</th><th>control</th><th>treatment</th><th>effect</th>"
        f"<th>{level}% CI</th><th>relative</th><th>relative CI</th><th>p</th>"
        "<th>CUPED var. reduction</th><th>MDE (rel.)</th><th>verdict</th></tr>"
    )
    rows = []
    for m in report["metrics"]:
        unit = m["unit"]
        tags = "".join(
            f'<span class="tag">{escape(t)}</span>'
            for t in (
                "primary" if m["primary"] else None,
                "guardrail" if m["guardrail"] else None,
                m["business_rate"],
                "ratio" if m["denom"] else None,
            )
            if t
        )
        for c in m["comparisons"]:
            vr = c["variance_reduction"]
            rows.append(
                f"<tr><td>{escape(m['label'])}{tags}</td><td>{escape(c['treatment'])}</td>"
                f"<td>{_fmt(c['control_value'], unit)}</td>"
                f"<td>{_fmt(c['treatment_value'], unit)}</td>"
                f"<td>{_fmt(c['effect'], unit, True)}</td>"
                f"<td>{_interval(c['effect_ci'], lambda v, u=unit: _fmt(v, u, True))}</td>"
                f"<td>{_pct(c['rel_effect'])}</td><td>{_interval(c['rel_effect_ci'], _pct)}</td>"
                f"<td>{_p(c['pvalue'])}</td>"
                f"<td>{'no covariate' if vr is None else _pct(vr, signed=False)}</td>"
                f"<td>{_pct(c['rel_mde'], signed=False)}</td><td>{_verdict(c)}</td></tr>"
            )
    return f"<table>{head}{''.join(rows)}</table>"


def _variants_table(report: dict[str, Any]) -> str:
    """Configured variants with their models and exposure counts."""
    counts = {row["variant"]: row for row in report["exposures"]}
    rows = []
    for v in report["experiment"]["variants"]:
        n = counts.get(v["name"], {})
        versions = ", ".join(f"{escape(str(k))} ({c:,})" for k, c in v["model_versions"].items())
        rows.append(
            f"<tr><td>{escape(v['name'])}</td><td>{v['weight']:g}</td>"
            f"<td>{escape(v['channel'])}</td><td>{escape(v['model_uri'] or '-')}</td>"
            f"<td>{versions or '-'}</td><td>{n.get('agents', 0):,}</td>"
            f"<td>{n.get('exposures', 0):,}</td>"
            f"<td>{n.get('exposed_skus_in_window', 0):,}</td></tr>"
        )
    head = (
        "<tr><th>variant</th><th>weight</th><th>channel</th><th>model URI</th>"
        "<th>model versions served (exposures)</th><th>agents</th><th>exposures</th>"
        "<th>SKUs shown in windows</th></tr>"
    )
    return f"<table>{head}{''.join(rows)}</table>"


def _method(report: dict[str, Any]) -> str:
    """Periods, windows, data caveats and how the numbers were computed."""
    s, p = report["settings"], report["period"]
    notes = "".join(f"<li>{escape(n)}</li>" for n in report["notes"]) or "<li>none</li>"
    integrity = "".join(
        f"<tr><td>{escape(k.replace('_', ' '))}</td><td>{v:,}</td></tr>"
        for k, v in report["integrity"].items()
    )
    return (
        "<h2>Data and method</h2>"
        f"<p>Exposures from {_when(p['start'])} to {_when(p['end'])}; data observed until "
        f"{_when(p['observed_until'])}. Each agent is one unit; her outcomes are summed over "
        f"{s['window_days']:g} days after her first exposure, counting returns up to "
        f"{s['return_days']:g} days after each purchase. CUPED covariates: the same sums over "
        f"{_when(p['pre_start'])} to {_when(p['start'])}. Effects: Welch t-test on (ratios of) "
        "means, delta method for ratios, CUPED-adjusted where a covariate exists "
        "(tea-tasting); MDE at "
        f"{round(100 * s['power'])}% power and alpha {s['alpha']:g} for the observed sizes. "
        "Only the primary metric decides; the others describe (no multiplicity correction).</p>"
        f"<table><tr><th>integrity check</th><th>agents</th></tr>{integrity}</table>"
        f'<p>Notes:</p><ul class="notes">{notes}</ul>'
    )


def render_html(report: dict[str, Any]) -> str:
    """The whole page for a report dict (as `build_report` returns it)."""
    e = report["experiment"]
    arms = ", ".join(escape(t) for t in report["treatments"])
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>A/B report: {escape(e['name'])}</title><style>{CSS}</style></head><body>"
        f"<h1>A/B report: {escape(e['name'])}</h1>"
        f'<p class="sub">{arms} against control {escape(report["control"])}; unit: agent; '
        f"generated {escape(report['generated_at'])}"
        f"{' from ' + escape(report['source']) if report.get('source') else ''}</p>"
        f"{_srm_banner(report)}{_summary(report)}"
        f"<h2>Metrics</h2>{_metrics_table(report)}"
        f'<h2>Effects</h2><div class="plot">{effects_svg(report)}</div>'
        f'<h2>Daily cumulative metrics</h2><div class="plot">{daily_svg(report)}</div>'
        f"<h2>Variants and exposures</h2>{_variants_table(report)}"
        f"{_method(report)}</body></html>"
    )


def write_report(report: dict[str, Any], html_path: str | Path, json_path: str | Path) -> None:
    """Write the HTML page and the JSON of all numbers (parent folders created)."""
    html_path, json_path = Path(html_path), Path(json_path)
    for path in (html_path, json_path):
        path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(render_html(report), encoding="utf-8")
    json_path.write_text(json.dumps(report, indent=2, allow_nan=False), encoding="utf-8")
