"""Atomic writes: the final path holds the old file or the whole new one, and no temp file is left."""

from __future__ import annotations

import json

import pytest

from fer.core.fileio import atomic_path, temp_path, write_json_atomic


def test_atomic_path_replaces_on_success(tmp_path):
    out = tmp_path / "sub" / "model.bin"
    with atomic_path(out) as tmp:
        assert tmp == temp_path(out) == tmp_path / "sub" / ".model.bin.tmp"
        tmp.write_bytes(b"new")
        assert not out.exists(), "nothing at the final path until the block ends"
    assert out.read_bytes() == b"new" and list(out.parent.iterdir()) == [out]


def test_atomic_path_keeps_the_old_file_and_removes_the_temp_on_failure(tmp_path):
    out = tmp_path / "model.bin"
    out.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_path(out) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("disk full")
    assert out.read_bytes() == b"old" and list(tmp_path.iterdir()) == [out]


def test_write_json_atomic_leaves_no_temp_when_the_dump_fails(tmp_path):
    out = tmp_path / "card.json"
    write_json_atomic(out, {"a": 1})
    with pytest.raises(TypeError):
        write_json_atomic(out, {"a": object()})  # not JSON-serialisable
    assert json.loads(out.read_text()) == {"a": 1} and list(tmp_path.iterdir()) == [out]
