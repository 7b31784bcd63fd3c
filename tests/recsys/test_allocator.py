"""The allocator setting of batch jobs: applied on glibc, skipped when the user chose."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from recsys import allocator

PROBE = "from recsys.allocator import reuse_freed_memory; print(reuse_freed_memory())"


def _probe(env: dict[str, str]) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in allocator.GLIBC_ENV}
    clean.pop(allocator.OPT_OUT_ENV, None)
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's mallopt is Linux only")
def test_applied_on_glibc_and_skipped_when_chosen_otherwise() -> None:
    assert _probe({}) == "True"
    assert _probe({allocator.OPT_OUT_ENV: "system"}) == "False"
    assert _probe({"MALLOC_MMAP_THRESHOLD_": "131072"}) == "False"
