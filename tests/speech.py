"""Spoken test audio: espeak-ng reads a script into a WAV file (a Debian package, installed by
`.ci/run` and `dev.py` where they can). Tests that need it skip with this reason where it is missing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ESPEAK = shutil.which("espeak-ng")
NO_ESPEAK = "espeak-ng is not installed (apt-get install espeak-ng); it speaks the test call"
needs_espeak = pytest.mark.skipif(ESPEAK is None, reason=NO_ESPEAK)


def speak(text: str, path: Path, *, words_per_minute: int = 150, voice: str = "en-us") -> Path:
    """`text` spoken by espeak-ng into the WAV file `path` (22.05 kHz mono)."""
    if ESPEAK is None:
        pytest.skip(NO_ESPEAK)
    subprocess.run([ESPEAK, "-v", voice, "-s", str(words_per_minute), "-w", str(path), text],
                   check=True, capture_output=True, timeout=60)
    return path
