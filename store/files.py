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


def keep_file(folder: Path, source: Path, suffix: str = "") -> Path:
    """`keep` for a file already on disk (an upload streamed to a temporary file): copied in chunks
    while it is hashed, so a large recording is never held in memory."""
    import os
    import tempfile

    folder.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9.]", "", suffix)[:10].lower()
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(dir=folder, suffix=".part")
    tmp = Path(tmp_name)
    try:
        with open(source, "rb") as src, os.fdopen(fd, "wb") as out:
            while chunk := src.read(1024 * 1024):
                digest.update(chunk)
                out.write(chunk)
        path = folder / f"{digest.hexdigest()}{safe}"
        if path.exists():
            tmp.unlink()
        else:
            tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
