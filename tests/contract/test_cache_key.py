"""File digests of the table cache: content decides, and a memo skips files untouched since."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from recsys.contract import cache_key
from recsys.contract.cache_key import MEMO_FILE, file_digests, package_digest, source_digest


def test_digest_is_the_content_hash(tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("x,y\n1,2\n")
    b.write_text("x,y\n1,2\n")
    digests = file_digests([a, b], memo_dir=None)
    # sha256 of the bytes, whatever the name
    assert digests[str(a)] == digests[str(b)] == hashlib.sha256(b"x,y\n1,2\n").hexdigest()


def test_same_size_same_mtime_edit_is_still_seen(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("qty\n2\n")
    before = file_digests([path], memo_dir=tmp_path)[str(path)]
    stat = path.stat()
    path.write_text("qty\n3\n")  # same size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and the old mtime
    after = file_digests([path], memo_dir=tmp_path)[str(path)]
    assert after != before


def test_memo_skips_hashing_files_untouched_since(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "t.csv"
    path.write_text("qty\n2\n")
    calls: list[Path] = []
    real = cache_key._hash_file
    monkeypatch.setattr(cache_key, "_hash_file", lambda p: calls.append(p) or real(p))
    # hashed "later" than the racy window after the file's last change
    later = time.time_ns() + 2 * cache_key.RACY_NS
    monkeypatch.setattr(cache_key.time, "time_ns", lambda: later)
    first = file_digests([path], memo_dir=tmp_path)
    assert (tmp_path / MEMO_FILE).is_file() and len(calls) == 1
    assert file_digests([path], memo_dir=tmp_path) == first
    assert len(calls) == 1  # answered from the memo
    path.write_text("qty\n3\n")
    assert file_digests([path], memo_dir=tmp_path) != first
    assert len(calls) == 2


def test_racily_fresh_files_are_hashed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "t.csv"
    path.write_text("qty\n2\n")
    calls: list[Path] = []
    real = cache_key._hash_file
    monkeypatch.setattr(cache_key, "_hash_file", lambda p: calls.append(p) or real(p))
    file_digests([path], memo_dir=tmp_path)
    file_digests([path], memo_dir=tmp_path)
    assert len(calls) == 2  # changed within the racy window: the memo is not trusted


def test_source_digest_follows_the_code() -> None:
    assert source_digest("recsys.columns") == source_digest("recsys.columns")
    assert source_digest("recsys.columns") != source_digest("recsys.columns", "recsys.reasons")
    assert len(package_digest("recsys.contract")) == 64
    with pytest.raises(ValueError, match="cannot find the source"):
        source_digest("recsys.no_such_module")
