"""Where MLflow keeps runs and models: `mlruns/` by default, `MLFLOW_TRACKING_URI` when set.

MLflow 3 refuses the old file store and defaults to a sqlite file in the working directory, so the
default is an absolute sqlite URI inside `mlruns/`, with artifacts beside it.
"""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path
from urllib.parse import unquote

DEFAULT_ROOT_ENV = "RECSYS_MLRUNS"
DB_FILE = "mlflow.db"


def mlruns_root() -> Path:
    """The local MLflow folder: `RECSYS_MLRUNS`, else `./mlruns` (absolute)."""
    return Path(os.environ.get(DEFAULT_ROOT_ENV, "mlruns")).resolve()


def default_tracking_uri() -> str:
    """The sqlite tracking URI inside the local `mlruns/` folder."""
    root = mlruns_root()
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / DB_FILE}"


def _quiet_mlflow() -> None:
    """Settings that must be in place before MLflow is first imported."""
    # No usage telemetry leaves this machine, and no seconds are spent trying.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def configure_tracking() -> str:
    """Point MLflow's tracking and registry at `MLFLOW_TRACKING_URI` or the local default."""
    _quiet_mlflow()
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


def _store_exists(uri: str) -> bool:
    """Whether opening the store at `uri` only reads it (a missing sqlite file gets created)."""
    if not uri.startswith("sqlite:"):
        return True
    # sqlite:///relative.db or sqlite:////absolute.db (maybe with ?options): drop the slash that
    # ends the empty host
    path = unquote(uri.split("://", 1)[-1].split("?", 1)[0])[1:]
    return path not in ("", ":memory:") and Path(path).is_file()


class TrackingWarmup:
    """Imports MLflow and the plotting code and opens the tracking store, in a thread.

    Importing MLflow and its SQLAlchemy store and matplotlib, and reading the file lists of the
    installed packages (MLflow checks a logged model's requirements against them) costs seconds
    of CPU in pure Python. `run_training` starts this just before the model's fit and waits for
    it right after, so it never competes with the rest of the run for Python's global lock; the
    implicit models (ALS, BPR) fit in compiled code that releases the lock. Only a head start:
    nothing here raises, and whatever failed is done (and fails) again when the run is logged.
    """

    def __init__(self, experiment: str) -> None:
        self.experiment = experiment
        self._thread = threading.Thread(target=self._run, name="mlflow-warmup", daemon=True)

    def start(self) -> None:
        """Start the warm-up."""
        self._thread.start()

    def wait(self) -> None:
        """Block until the warm-up has finished (at once if it never started)."""
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        try:
            _quiet_mlflow()
            import mlflow.pyfunc  # noqa: F401 - the model flavour runs are logged with
            from mlflow.utils import requirements_utils

            import training.plots  # noqa: F401 - matplotlib
            import training.pyfunc  # noqa: F401

            # Opening a sqlite store creates it: open only one that exists, so a run that
            # fails before logging leaves nothing behind.
            uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{mlruns_root() / DB_FILE}"
            if _store_exists(uri):
                configure_tracking()
                mlflow.get_experiment_by_name(self.experiment)
                mlflow.MlflowClient().search_registered_models(max_results=1)
            # MLflow reads it once per process, when the first model is logged.
            requirements_utils._init_packages_to_modules_map()
        except Exception:  # noqa: BLE001 - a head start only
            pass


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
