"""The session builder's checks: Java 17+, `--spark-conf` parsing, Spark errors as messages."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from training.spark.session import (
    INSTALL_JAVA,
    SparkJobError,
    check_java,
    error_line,
    java_version,
    parse_conf,
    spark_errors,
)


def _fake_java(home: Path, banner: str) -> Path:
    """A `bin/java` under `home` that prints `banner` as `java -version` does (on stderr)."""
    java = home / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text(f"#!/bin/sh\necho '{banner}' >&2\n")
    java.chmod(java.stat().st_mode | stat.S_IXUSR)
    return java


@pytest.mark.parametrize(
    ("banner", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('openjdk version "21" 2023-09-19', 21),
        ('java version "1.8.0_392"', 8),
        ("something else", None),
    ],
)
def test_session_java_version_reads_the_banner(tmp_path: Path, banner: str, major: int) -> None:
    assert java_version(str(_fake_java(tmp_path, banner))) == major


def test_session_check_java_refuses_old_or_missing_java(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_java(tmp_path / "jdk8", 'java version "1.8.0_392"')
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk8"))
    with pytest.raises(ValueError, match="is Java 8.*apt-get install openjdk-17-jre-headless"):
        check_java()
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="no Java found") as err:
        check_java()
    assert INSTALL_JAVA in str(err.value)
    _fake_java(tmp_path / "jdk17", 'openjdk version "17.0.15" 2025-04-15')
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk17"))
    assert check_java() == str(tmp_path / "jdk17" / "bin" / "java")
    assert os.access(check_java(), os.X_OK)


def test_session_parse_conf() -> None:
    assert parse_conf(["spark.executor.memory=8g", " a.b = c=d "]) == {
        "spark.executor.memory": "8g",
        "a.b": "c=d",
    }
    assert parse_conf(None) == {}
    with pytest.raises(ValueError, match="--spark-conf must look like key=value, got 'oops'"):
        parse_conf(["oops"])


@pytest.mark.spark
def test_session_spark_errors_become_one_line_messages(spark: Any) -> None:
    def boom(rows: Any) -> Any:
        raise ZeroDivisionError("no agents in this partition")

    with pytest.raises(
        SparkJobError, match="the job failed on Spark: .*ZeroDivisionError: no agents"
    ):
        with spark_errors("the job"):
            spark.range(4).rdd.mapPartitions(boom).collect()
    assert error_line(RuntimeError("a\nb")) == "b"
