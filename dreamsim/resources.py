"""Where the shipped task cards (``envs/``) and checkpoints (``assets/``) live.

In a source checkout or editable install they sit beside the package; an installed wheel carries
them inside the package as ``dreamsim/_envs`` and ``dreamsim/_assets``.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _find(packaged: str, source: str) -> Path:
    inside = _PACKAGE / packaged
    if inside.is_dir():
        return inside
    return _PACKAGE.parent / source


def cards_dir() -> Path:
    """Folder holding one ``<task>.toml`` card per task."""
    return _find("_envs", "envs")


def assets_dir() -> Path:
    """Folder holding one shipped checkpoint folder per task."""
    return _find("_assets", "assets")
