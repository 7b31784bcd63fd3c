"""Where MLflow keeps runs and models: `mlruns/` by default, `MLFLOW_TRACKING_URI` when set.

MLflow 3 refuses the old file store and defaults to a sqlite file in the working directory, so the
default is an absolute sqlite URI inside `mlruns/`, with artifacts beside it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

DEFAULT_ROOT_ENV = "RECSYS_MLRUNS"


def mlruns_root() -> Path:
    """The local MLflow folder: `RECSYS_MLRUNS`, else `./mlruns` (absolute)."""
    return Path(os.environ.get(DEFAULT_ROOT_ENV, "mlruns")).resolve()


def default_tracking_uri() -> str:
    """The sqlite tracking URI inside the local `mlruns/` folder."""
    root = mlruns_root()
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / 'mlflow.db'}"


def configure_tracking() -> str:
    """Point MLflow's tracking and registry at `MLFLOW_TRACKING_URI` or the local default."""
    # No usage telemetry leaves this machine, and no seconds are spent trying.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow

    uri = os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()
    # mlflow.set_tracking_uri exports MLFLOW_TRACKING_URI, so whether the store is our local
    # default is decided from the URI itself, not from the environment.
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(os.environ.get("MLFLOW_REGISTRY_URI") or uri)
    return uri


def ensure_experiment(name: str) -> str:
    """Id of experiment `name`, created with artifacts under `mlruns/artifacts` when local."""
    import mlflow

    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    location = None
    if mlflow.get_tracking_uri() == default_tracking_uri():
        location = (mlruns_root() / "artifacts").as_uri()
    return str(mlflow.create_experiment(name, artifact_location=location))


def git_commit() -> str:
    """The current git commit of the project, or "unknown" outside a checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def ui_command() -> str:
    """The command that opens the MLflow UI on the local store."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()
    return f"mlflow ui --backend-store-uri {uri} --port 5000"
