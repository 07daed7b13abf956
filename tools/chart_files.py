"""Where a drawn chart goes: a PNG kept under the files directory, and the file entry a channel uploads."""

from __future__ import annotations

from datetime import date
from typing import Any

from store import files
from store.settings import get_settings


def keep_chart(png: bytes, *, name: str, title: str, today: date) -> dict[str, Any]:
    """Keep the PNG (files_dir/charts) and describe it for the channel: path, filename, title, type."""
    path = files.keep(get_settings().files_dir / "charts", png, suffix=".png").resolve()
    filename = f"{name.replace('_', '-')}-{today.isoformat()}.png"
    return {"path": str(path), "filename": filename, "title": title, "mimetype": "image/png"}
