"""`recsys ab-report`: the A/B report of one experiment as HTML + JSON, recorded in MLflow.

The experiment's configuration comes from `--experiments-file` (YAML or JSON, the file serving
reads) or from the Redis hash serving reads (`--redis-url`, else REDIS_URL); with both, Redis
wins, as in serving. The numbers come from `recsys.abtest` (docs/ab-testing.md).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from recsys.console import console, user_errors

if TYPE_CHECKING:
    import pandas as pd

    from recsys.ab import Experiment

MLFLOW_EXPERIMENT = "ab-reports"
NO_SOURCE = (
    "no experiment configuration to read: pass --experiments-file FILE (YAML/JSON) or "
    "--redis-url URL (or set REDIS_URL) where serving keeps its experiments"
)


def _known(names: list[str]) -> str:
    """`known: a, b` or `none is configured there`."""
    return f"known: {', '.join(sorted(names))}" if names else "none is configured there"


def _from_redis(name: str, url: str) -> Experiment | None:
    """The experiment `name` from serving's Redis hash, None when absent there."""
    from pydantic import ValidationError

    from recsys.ab import Experiment
    from serving.experiments import EXPERIMENTS_HASH
    from training.publish_cli import connect_redis

    client = connect_redis(url)
    raw = client.hget(EXPERIMENTS_HASH, name)
    if raw is None:
        return None
    try:
        return Experiment.model_validate_json(raw)
    except ValidationError as exc:
        raise ValueError(
            f"experiment {name!r} in Redis hash {EXPERIMENTS_HASH} is invalid: {exc}"
        ) from None


def find_experiment(name: str, experiments_file: Path | None, redis_url: str | None) -> Experiment:
    """The configuration of experiment `name` from Redis (if a URL is known) or the file.

    Raises
    ------
    ValueError
        If no source is given, or no source holds `name` (the known names are listed).
    """
    from serving.experiments import EXPERIMENTS_HASH, load_experiments_file

    url = redis_url or (None if experiments_file else os.environ.get("REDIS_URL"))
    if url is None and experiments_file is None:
        raise ValueError(NO_SOURCE)
    looked = []
    if url is not None:
        found = _from_redis(name, url)
        if found is not None:
            return found
        from training.publish_cli import connect_redis

        names = [k.decode() for k in connect_redis(url).hkeys(EXPERIMENTS_HASH)]
        looked.append(f"Redis hash {EXPERIMENTS_HASH} ({_known(names)})")
    if experiments_file is not None:
        if not experiments_file.is_file():
            raise FileNotFoundError(f"experiments file not found: {experiments_file}")
        in_file = load_experiments_file(experiments_file)
        if name in in_file:
            return in_file[name]
        looked.append(f"{experiments_file} ({_known(list(in_file))})")
    raise ValueError(f"unknown experiment {name!r}: not in {' nor in '.join(looked)}")


def parse_time(text: str | None, option: str, *, end: bool = False) -> pd.Timestamp | None:
    """A UTC timestamp from ISO text; a bare date as `--end` means the end of that day."""
    import pandas as pd

    if text is None:
        return None
    try:
        ts = pd.Timestamp(text)
    except ValueError:
        raise ValueError(f"{option}: cannot read {text!r} as a date or time (ISO-8601)") from None
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    if end and len(text.strip()) == 10:
        ts += pd.Timedelta(days=1)
    return ts


def _flat_metrics(report: dict[str, Any]) -> dict[str, float]:
    """MLflow metrics: SRM p-value and, per metric and treatment, effect, bounds, p-value, MDE."""
    out = {"srm.pvalue": report["srm"]["pvalue"], "srm.chi2": report["srm"]["chi2"]}
    fields = ("control_value", "treatment_value", "effect", "rel_effect", "pvalue", "rel_mde")
    for m in report["metrics"]:
        for c in m["comparisons"]:
            for f in fields:
                out[f"{m['key']}.{c['treatment']}.{f}"] = c[f]
            out[f"{m['key']}.{c['treatment']}.ci_lower"] = c["effect_ci"][0]
            out[f"{m['key']}.{c['treatment']}.ci_upper"] = c["effect_ci"][1]
            if c["variance_reduction"] is not None:
                out[f"{m['key']}.{c['treatment']}.variance_reduction"] = c["variance_reduction"]
    return {k: float(v) for k, v in out.items() if v is not None}


def log_report_run(
    report: dict[str, Any], html: Path, json_path: Path, mlflow_experiment: str = MLFLOW_EXPERIMENT
) -> str:
    """Record the report in MLflow: both files as artifacts, tagged with each variant's model."""
    import mlflow

    from training.tracking import configure_tracking, ensure_experiment, git_commit

    configure_tracking()
    experiment_id = ensure_experiment(mlflow_experiment)
    exp = report["experiment"]
    tags = {
        "ab.experiment": exp["name"],
        "ab.control": report["control"],
        "ab.treatments": ",".join(report["treatments"]),
        "ab.trustworthy": str(report["trustworthy"]).lower(),
        "ab.primary_verdicts": ", ".join(
            f"{k}: {v}" for k, v in report["primary"]["verdicts"].items()
        ),
        "git_commit": git_commit(),
    }
    for v in exp["variants"]:
        prefix = f"ab.variant.{v['name']}"
        tags[f"{prefix}.model_uri"] = v["model_uri"] or ""
        tags[f"{prefix}.channel"] = v["channel"]
        tags[f"{prefix}.model_versions"] = ",".join(str(k) for k in v["model_versions"])
        tags[f"{prefix}.snapshots"] = ",".join(str(k) for k in v["snapshots"])
    settings = report["settings"]
    params = {
        k: settings[k]
        for k in ("window_days", "return_days", "pre_days", "alpha", "srm_alpha", "power")
    }
    params.update({f"period.{k}": v for k, v in report["period"].items()})
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"ab-{exp['name']}") as run:
        mlflow.set_tags(tags)
        mlflow.log_params(params)
        mlflow.log_metrics(_flat_metrics(report))
        with tempfile.TemporaryDirectory() as tmp:
            # Fixed names in the run, whatever the files were called on disk.
            shutil.copy(html, Path(tmp) / "report.html")
            shutil.copy(json_path, Path(tmp) / "report.json")
            mlflow.log_artifacts(tmp)
        return str(run.info.run_id)


def ab_report(
    experiment: Annotated[str, typer.Option(help="Name of the experiment to report on.")],
    data: Annotated[Path, typer.Option(help="Data directory: contract tables + exposures/.")],
    out: Annotated[Path, typer.Option(help="HTML report to write.")] = Path("report.html"),
    json_out: Annotated[
        Path | None, typer.Option("--json", help="JSON of all numbers (default: beside --out).")
    ] = None,
    start: Annotated[
        str | None, typer.Option(help="Count exposures from this date/time (UTC; default: first).")
    ] = None,
    end: Annotated[
        str | None, typer.Option(help="Up to this date (inclusive) or time (default: last).")
    ] = None,
    window_days: Annotated[
        float, typer.Option(help="Attribution window after first exposure.")
    ] = 7.0,
    return_days: Annotated[
        float, typer.Option(help="Returns counted this long after a purchase.")
    ] = 30.0,
    pre_days: Annotated[float, typer.Option(help="Pre-experiment days for CUPED.")] = 28.0,
    control: Annotated[
        str | None, typer.Option(help="Control variant (default: the first).")
    ] = None,
    alpha: Annotated[float, typer.Option(help="Significance level of the effects.")] = 0.05,
    srm_alpha: Annotated[
        float, typer.Option(help="Alarm level of the sample-ratio check.")
    ] = 0.001,
    experiments_file: Annotated[
        Path | None, typer.Option(help="YAML/JSON file of experiments (as serving reads).")
    ] = None,
    redis_url: Annotated[
        str | None, typer.Option(help="Redis holding serving's experiments (default: $REDIS_URL).")
    ] = None,
    mlflow: Annotated[bool, typer.Option(help="Record the report as an MLflow run.")] = True,
    mlflow_experiment: Annotated[str, typer.Option(help="MLflow experiment.")] = MLFLOW_EXPERIMENT,
) -> None:
    """Report an A/B experiment: SRM, effects with intervals (CUPED, delta method), guardrails."""
    from recsys.abtest.data import load_experiment_data
    from recsys.abtest.outcomes import OutcomeSettings
    from recsys.abtest.render import write_report
    from recsys.abtest.report import ReportSettings, build_report

    json_path = json_out or out.with_suffix(".json")
    with user_errors():
        if not data.is_dir():
            raise FileNotFoundError(f"data directory not found: {data}")
        config = find_experiment(experiment, experiments_file, redis_url)
        if config.target != "agent":
            raise ValueError(
                f"experiment {experiment!r} randomises {config.target}s; the report supports "
                "agent experiments only"
            )
        settings = ReportSettings(
            outcome=OutcomeSettings(
                window_days=window_days,
                return_days=return_days,
                pre_days=pre_days,
                start=parse_time(start, "--start"),
                end=parse_time(end, "--end", end=True),
            ),
            control=control,
            alpha=alpha,
            srm_alpha=srm_alpha,
        )
        frames = load_experiment_data(data)
        report = build_report(frames, config, settings, source=str(data))
        write_report(report, out, json_path)
        run_id = log_report_run(report, out, json_path, mlflow_experiment) if mlflow else None
    _print_summary(report, out, json_path, run_id, mlflow_experiment)


def _print_summary(
    report: dict[str, Any], out: Path, json_path: Path, run_id: str | None, mlflow_experiment: str
) -> None:
    """SRM, the primary verdicts and guardrails, and where everything went."""
    srm = report["srm"]
    counts = ", ".join(f"{k} {v:,}" for k, v in srm["counts"].items())
    if srm["ok"]:
        console.print(f"sample ratio OK ({counts}; p = {srm['pvalue']:.3g})")
    else:
        console.print(
            f"[bold red]SAMPLE RATIO MISMATCH[/] ({counts}; p = {srm['pvalue']:.3g} < "
            f"{srm['alpha']:g}): every verdict is untrustworthy"
        )
    primary = next(m for m in report["metrics"] if m["primary"])
    for c in primary["comparisons"]:
        rel = "n/a" if c["rel_effect"] is None else f"{100 * c['rel_effect']:+.1f}%"
        p = "n/a" if c["pvalue"] is None else f"{c['pvalue']:.3g}"
        console.print(
            f"{primary['label']}, {c['treatment']} vs {c['control']}: {rel} (p = {p}): "
            f"[bold]{c['verdict']}[/]"
        )
    for g in report["guardrails"]:
        state = "[bold red]breached[/]" if g["breached"] else "holds"
        console.print(f"guardrail {g['metric']}, {g['treatment']}: {state}")
    for note in report["notes"]:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    console.print(f"report: {out}  numbers: {json_path}")
    if run_id is not None:
        console.print(f"MLflow run {run_id} in experiment {mlflow_experiment!r}")


def register(app: typer.Typer) -> None:
    """Add `ab-report` to the `recsys` app."""
    app.command("ab-report")(ab_report)
