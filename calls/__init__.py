"""Calls: a recording (faster-whisper) or a meeting tool's transcript (.vtt, .srt, .txt) -> timestamped text.

    from calls import is_caption_file, parse_captions, transcribe

    result = parse_captions(name, data) if is_caption_file(name, ctype) else transcribe(path, whisper, name=name)
    result.text, result.segments  # [Segment(start, end, text, speaker)], seconds from the start

Errors are TranscriptionError (WhisperModelUnavailable, AudioUnreadable, TooLong) with a message that
says what to fix. `whisper` (a `Whisper`) names the speech model; the caller fills it from its settings
(`Settings.whisper`): nothing here reads settings or a database. Importing this package loads neither
faster-whisper nor PyAV; transcribing does.
"""

from calls.bundled import bundled_model_dir
from calls.captions import CAPTION_SUFFIXES, is_caption_file, parse_captions
from calls.transcribe import (
    AudioUnreadable,
    Segment,
    TooLong,
    TranscriptionError,
    TranscriptResult,
    Whisper,
    WhisperModelUnavailable,
    clear_whisper_cache,
    decode_audio,
    load_whisper,
    probe_audio,
    transcribe,
)

__all__ = [
    "CAPTION_SUFFIXES", "AudioUnreadable", "Segment", "TooLong", "TranscriptResult", "TranscriptionError",
    "Whisper", "WhisperModelUnavailable", "bundled_model_dir",
    "clear_whisper_cache", "decode_audio", "is_caption_file", "load_whisper",
    "parse_captions", "probe_audio", "transcribe",
]
