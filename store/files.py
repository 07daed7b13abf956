"""Files the CRM keeps (raw emails, attachments, recordings): content-addressed, written once."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path


def keep(folder: Path, data: bytes, suffix: str = "") -> Path:
    """Store `data` as <sha256><suffix> in `folder` (the same bytes twice are one file); the
    write goes through a temporary name, so a crash never leaves half a file under the real one."""
    folder.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9.]", "", suffix)[:10].lower()
    path = folder / f"{hashlib.sha256(data).hexdigest()}{safe}"
    if not path.exists():
        tmp = path.with_suffix(path.suffix + ".part")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path
