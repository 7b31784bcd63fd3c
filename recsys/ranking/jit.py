"""numba compilation of the ranking's hot loops, cached on disk where a cache can be written.

numba caches compiled code beside the module (or in a per-user directory); when neither is
writable, as in a read-only image without a home, asking for a cache fails at import. Such an
install compiles on first use in each process instead (about a second), rather than not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numba

F = TypeVar("F", bound=Callable[..., Any])


def kernel(fn: F) -> F:
    """`fn` compiled by numba without the GIL, its machine code cached when a cache can be."""
    try:
        return numba.njit(cache=True, nogil=True)(fn)  # type: ignore[no-any-return]
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return numba.njit(nogil=True)(fn)  # type: ignore[no-any-return]
