"""The Spark session the `--engine spark` jobs run on: checks Java and pyspark, sets safe defaults.

pyspark is imported only here and in the other `training.spark` modules, inside the jobs, so the
CLI starts fast and the local engine never needs Java.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from recsys.exceptions import RecsysError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DEFAULT_MASTER = "local[*]"
MIN_JAVA = 17
INSTALL_JAVA = (
    "Spark needs Java 17 or newer: on Debian/Ubuntu `apt-get install openjdk-17-jre-headless`, "
    "or point JAVA_HOME at a JDK 17+"
)
INSTALL_PYSPARK = (
    "--engine spark needs pyspark: pip install 'recsys-social[spark]' "
    "(or pip install 'pyspark>=4.1')"
)
# Settings every job relies on; a caller's `conf` may override the ones marked in the docs.
BASE_CONF: dict[str, str] = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    # The contract's Parquet files hold nanosecond timestamps, which Spark reads only as longs.
    "spark.sql.legacy.parquet.nanosAsLong": "true",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
}
# Only for a local master: the driver is the whole cluster, give it room.
LOCAL_CONF: dict[str, str] = {"spark.driver.memory": "4g"}


def java_version(java: str) -> int | None:
    """The major version `java -version` reports (None when it cannot be read)."""
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major  # "1.8" is Java 8


def check_java() -> str:
    """The java executable Spark will start; ValueError with install advice if it is not 17+."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        raise ValueError(f"no Java found (JAVA_HOME unset and no `java` on PATH). {INSTALL_JAVA}")
    version = java_version(java)
    if version is None or version < MIN_JAVA:
        found = "an unreadable version" if version is None else f"Java {version}"
        raise ValueError(f"{java} is {found}. {INSTALL_JAVA}")
    return java


def parse_conf(items: list[str] | None) -> dict[str, str]:
    """`key=value` strings (from `--spark-conf`) as a dict; ValueError naming a bad one."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--spark-conf must look like key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def spark_session(
    master: str = DEFAULT_MASTER,
    conf: Mapping[str, str] | None = None,
    app_name: str = "recsys",
) -> SparkSession:
    """The active Spark session, or a new one on `master` with the project's settings.

    An active session (e.g. one a notebook or a test started) is used as it is, with the
    project's SQL settings applied to it; `master` then does not matter.

    Raises
    ------
    ValueError
        If pyspark is not installed or Java 17+ is missing (the message says how to get them).
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ValueError(INSTALL_PYSPARK) from None
    active = SparkSession.getActiveSession()
    settings = {**BASE_CONF, **dict(conf or {})}
    if active is not None:
        for key, value in settings.items():
            if key.startswith("spark.sql."):
                active.conf.set(key, value)
        return active
    check_java()
    # Executors must run this interpreter (and its packages), not whatever `python3` is on PATH.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    builder = SparkSession.builder.master(master).appName(app_name)
    if master.startswith("local"):
        settings = {**LOCAL_CONF, **settings}
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


class SparkJobError(RecsysError):
    """A Spark job failed; the message is the line of its error that says why."""


def error_line(exc: BaseException) -> str:
    """The useful line of an error a Spark job raised (its Python exception, not the JVM trace)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for line in reversed(lines):
        if "Error:" in line or "Exception:" in line:
            return line[:500]
    return (lines[-1] if lines else type(exc).__name__)[:500]


@contextmanager
def spark_errors(what: str) -> Iterator[None]:
    """Turn pyspark's and py4j's errors inside the block into a `SparkJobError` naming `what`."""
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    try:
        yield
    except (PySparkException, Py4JError) as exc:
        raise SparkJobError(f"{what} failed on Spark: {error_line(exc)}") from exc
