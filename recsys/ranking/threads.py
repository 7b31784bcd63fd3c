"""One cap on the threads of everything the ranked model runs: BLAS, implicit and scikit-learn.

threadpoolctl limits only the thread pools of the libraries already loaded when its context is
entered, and scikit-learn brings its own OpenMP runtime, loaded on the first import of its
compiled boosting modules. Imported late (inside the context), the boosters ran with every core:
on a shared 2-core box their spinning threads made fitting 5-10× slower (docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import threadpool_limits


@contextmanager
def thread_limit(n_threads: int) -> Iterator[None]:
    """Run the block with at most `n_threads` BLAS and OpenMP threads, scikit-learn's included."""
    import implicit.cpu.topk  # noqa: F401  (loads implicit's OpenMP runtime)
    import sklearn.calibration  # noqa: F401
    import sklearn.ensemble  # noqa: F401  (loads scikit-learn's own OpenMP runtime)

    with threadpool_limits(limits=int(n_threads)):
        yield
