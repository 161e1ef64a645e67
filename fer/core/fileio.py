"""Small file helpers: atomic writes (temp file + rename) and checksums."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path


def sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def temp_path(path: str | Path) -> Path:
    """Where :func:`atomic_path` writes ``path`` first: ``.NAME.tmp`` in the same folder."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to; on success it replaces ``path`` in one rename,
    on any error it is removed. Readers see the old file or the whole new one, never a partial one.

        with atomic_path(out) as tmp:
            learn.export(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(path: str | Path, data: dict) -> None:
    """``data`` as indented JSON at ``path``, written atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2))


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """``data`` at ``path``, written atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
