"""Atomic files: written beside their destination, then renamed into place, so that a reader
never sees half a file and an interrupted write leaves nothing behind."""

from __future__ import annotations

import json
import math
import os
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

# What ``np.load`` of a truncated or corrupted ``.npz`` raises, besides a missing file or array.
NPZ_ERRORS = (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)


def write_atomic(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp_path)`` and rename the result to ``path``; no partial file on failure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; outputs are for people to read
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    return write_atomic(path, lambda p: p.write_text(text))


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as strict JSON, which every JSON reader accepts: a non-finite float, such as
    the confidence interval of a single episode, becomes ``null``."""
    return write_text(path, json.dumps(_finite(data), indent=2, allow_nan=False) + "\n")


def _finite(data: Any) -> Any:
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {key: _finite(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [_finite(value) for value in data]
    return data


def read_json(path: str | Path, remedy: str) -> Any:
    """The JSON in ``path``; a damaged file raises ``ValueError`` naming it and ``remedy``."""
    try:
        return json.loads(Path(path).read_text())
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError(f"{path} is not valid JSON ({err}): {remedy}") from err


def display_path(path: str | Path) -> str:
    """``path`` relative to the working directory when it lies inside it, so results name
    repository paths rather than one machine's absolute ones."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
