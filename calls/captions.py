"""Meeting tools' transcripts -> timestamped segments: WebVTT, SRT, and plain-text exports.

- WebVTT (Zoom, Teams, Google Meet recordings, YouTube): header and its metadata, NOTE / STYLE /
  REGION blocks, cue ids, cue settings, `<v Speaker>` voice tags (Teams), "Speaker: text"
  prefixes (Zoom), inline tags (<c>, <i>, <b>, <lang>, karaoke timestamps) and entities;
  times as hh:mm:ss.mmm or mm:ss.mmm.
- SRT: index line, `00:00:01,000 --> 00:00:04,000`, text; <i>/<font> tags and {\\an8} removed.
- Plain text (Otter, Teams, Zoom, Google Meet exports, or typed notes):
    "Ines Duarte  0:01" or "[Ines Duarte] 14:03:01" on a line, the words on the next lines;
    "[00:01:02] Ines: text", "00:01:02 Ines: text", "Ines (00:01:02): text";
    "00:05:00" on a line of its own (Google Meet), then "Ines: text" lines;
    "Ines: text" without times, or plain paragraphs.
  A segment's start is the time written for it, None where the file gives none; its end is the
  next timed segment's start (None for the last: the file does not say). Times of day (a first
  time of an hour or more, written h:mm:ss, as Zoom's saved captions have) are counted from the
  first one. A plain-text transcript's duration is unknown (None).

Bytes are read as UTF-8 (BOM or not), UTF-16 with a BOM, else Windows-1252. A file with no cues,
binary data, or a malformed timing line fails with TranscriptionError naming the line and the
expected form; so does a transcript without any words. One with more than `max_cues` cues (or
segments) fails with TooLong; `check()`, called every few thousand lines, may stop a long parse (a job's
time budget).

Hand-written on purpose (issue 16 measured webvtt-py 0.6 and srt 3.5 in its place, keeping this
module's voice, tag and speaker handling: the well-formed cases passed, all four line-naming
errors failed): webvtt-py skips a cue with a bad timing ("00:00:0x.000", "00:00:61.000") or a
stray paragraph without a word, and its strict mode refuses the h:m:s.f times old Teams exports
write and names no line; srt names a character offset, not the line, and accepts a cue that ends
before it starts. webvtt-py also keeps one voice per cue, leaves entities escaped, and took 1.16 s
to read 20,000 cues where this whole parse takes 0.88 s.
"""

from __future__ import annotations

import codecs
import html
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from calls.transcribe import (
    CONTROL_CHARS,
    Segment,
    TooLong,
    TranscriptionError,
    TranscriptResult,
    clean_text,
    join_segments,
)

CAPTION_SUFFIXES = {".vtt", ".srt", ".txt"}
# Content types that mean a transcript even without one of those suffixes.
CAPTION_TYPES = {"text/vtt", "text/srt", "application/x-subrip", "application/srt"}

_TS = r"(?:(\d+):)?(\d{1,2}):(\d{1,2})(?:[.,](\d{1,3}))?"
_TIMING = re.compile(rf"^\s*{_TS}\s*-->\s*{_TS}(?:\s+.*)?$")
_VOICE = re.compile(r"<v(?:\.[^\s>]*)?\s+([^>]*)>", re.IGNORECASE)
_TAGS = re.compile(r"</?(?:v|c|i|b|u|s|lang|ruby|rt|font|span)(?:[.\s][^>]*)?>|<\d[\d:.]*>", re.IGNORECASE)
_ASS = re.compile(r"\{\\[^}]*\}")
# A speaker's name: 1-4 words starting with a letter ("Ines Duarte", "Dr. K. O'Neil", "Speaker 2").
_NAME = r"[^\W\d_][\w.'’\-@&()]*(?: [\w.'’\-@&()]+){0,3}"
_SPEAKER_PREFIX = re.compile(rf"^(?P<speaker>{_NAME}?)\s?:\s+(?P<text>\S.*)$")

# Plain-text line shapes.
_T = r"(?:\d{1,2}:)?\d{1,2}:\d{2}(?:[.,]\d{1,3})?"
_TXT_HEADER = [
    # "Ines Duarte  0:01" (Otter, Teams: two or more spaces or a tab), "Ines Duarte (0:01)", "Ines Duarte | 0:01"
    re.compile(rf"^(?P<speaker>{_NAME}?)(?:\s{{2,}}|\t+|\s*\|\s*|\s+(?=[\[(]))[\[(]?(?P<time>{_T})[\])]?$"),
    # "[Ines Duarte] 14:03:01" (Zoom's saved captions)
    re.compile(rf"^\[(?P<speaker>[^\]\n]{{1,60}})\]\s+[\[(]?(?P<time>{_T})[\])]?$"),
    # "Ines Duarte 0:01" with a single space: only a Title Case name, to leave sentences alone
    re.compile(rf"^(?P<speaker>[A-Z][\w.'’\-]*(?: [A-Z][\w.'’\-]*){{0,4}}|Speaker \d+) (?P<time>{_T})$"),
]
_TXT_TIME_ONLY = re.compile(rf"^[\[(]?(?P<time>{_T})[\])]?$")
_TXT_INLINE = [
    # "[00:01:02] Ines: text", "00:01:02 - Ines: text", "10:02:15 From Ines Duarte to Everyone: text" (Zoom chat)
    re.compile(rf"^[\[(]?(?P<time>{_T})[\])]?\s*(?:-\s*)?(?:From\s+)?(?P<speaker>{_NAME}?)(?:\s+to\s+[^:]{{1,40}}?)?"
               rf"\s*:\s*(?P<text>.*)$"),
    # "Ines (00:01:02): text", "Ines [00:01:02] text"
    re.compile(rf"^(?P<speaker>{_NAME}?)\s*[\[(](?P<time>{_T})[\])]\s*:?\s*(?P<text>.*)$"),
    # "[00:01:02] text" (no speaker; the time must be bracketed)
    re.compile(rf"^[\[(](?P<time>{_T})[\])]\s*(?:-\s*)?(?P<text>\S.*)$"),
]
_TXT_SPEAKER = re.compile(rf"^(?P<speaker>{_NAME}?)\s?:(?:\s+(?P<text>\S.*))?$")


def is_caption_file(filename: str, content_type: str | None = None) -> bool:
    """True for a transcript the meeting tool exported (by suffix, else by content type), False for audio."""
    suffix = Path(filename or "").suffix.lower()
    if suffix in CAPTION_SUFFIXES:
        return True
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    return ctype in CAPTION_TYPES or (ctype == "text/plain" and not suffix)


Check = Callable[[], None]
CHECK_EVERY = 2000  # lines or cues between two check() calls


def parse_captions(filename: str, data: bytes, *, max_cues: int | None = None,
                   check: Check | None = None) -> TranscriptResult:
    """A .vtt / .srt / .txt transcript -> TranscriptResult (engine "vtt", "srt" or "txt": what the content was)."""
    text = _decode(filename, data)
    lines = text.splitlines()
    kind = _kind(filename, lines)
    limit = _Limit(filename, max_cues, check)
    if kind == "txt":
        segments, details = _parse_txt(filename, lines, limit)
        duration = None
        language = None
    else:
        segments, language = _parse_cues(filename, lines, kind, limit)
        details: dict[str, Any] = {}
        duration = max((s.end for s in segments if s.end is not None), default=None)
    if not segments:
        raise TranscriptionError(f"{filename} has no spoken words in it (the transcript is empty); export the "
                                 "transcript again from the meeting tool, or upload the recording")
    return TranscriptResult(text=join_segments(segments), segments=segments, language=language,
                            duration_seconds=duration, engine=kind, details=details)


class _Limit:
    """The cue cap and the caller's check, applied as a parser counts."""

    def __init__(self, filename: str, max_cues: int | None, check: Check | None) -> None:
        self.filename, self.max_cues, self.check = filename, max_cues, check

    def cues(self, count: int) -> None:
        if self.max_cues is not None and count > self.max_cues:
            raise TooLong(f"{self.filename} has more than {self.max_cues:,} cues, the most a transcript may have "
                          "(CRM_CALL_MAX_CUES): split it into parts")

    def line(self, number: int) -> None:
        if self.check is not None and number % CHECK_EVERY == 0:
            self.check()


# --- bytes -> text ---------------------------------------------------------------------------------


def _decode(filename: str, data: bytes) -> str:
    if not data or not data.strip():
        raise TranscriptionError(f"{filename} is empty; export the transcript again (.vtt, .srt or .txt)")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = data.decode("utf-16", errors="replace")
    else:
        if data.startswith(codecs.BOM_UTF8):
            data = data[len(codecs.BOM_UTF8):]
        zeros = data[:4096].count(0)
        if zeros > len(data[:4096]) // 4:  # UTF-16 without a BOM (every other byte zero), or binary
            even, odd = data[0:4096:2].count(0), data[1:4096:2].count(0)
            encoding = "utf-16-le" if odd > even * 4 else "utf-16-be" if even > odd * 4 else None
            text = data.decode(encoding, errors="replace") if encoding else data.decode("latin-1")
        else:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = data.decode("cp1252", errors="replace")
    bad = [i for i, ch in enumerate(text[:65536]) if ch == "\x00" or ch == "\ufffd"
           or (ord(ch) < 32 and ch not in "\t\n\r\f\v")]
    if bad and (len(bad) > 8 or "\x00" in text):
        raise TranscriptionError(
            f"{filename} is not a text transcript (binary data at character {bad[0] + 1}); upload the .vtt, .srt "
            "or .txt file the meeting tool exported, or the recording itself")
    return text


def _kind(filename: str, lines: list[str]) -> str:
    first = next((line.strip() for line in lines if line.strip()), "")
    if first.startswith("WEBVTT"):
        return "vtt"
    head = [line for line in lines[:40] if line.strip()]
    if len(head) >= 2 and head[0].strip().isdigit() and "-->" in head[1]:
        return "srt"
    suffix = Path(filename or "").suffix.lower()
    if suffix in (".vtt", ".srt"):
        return suffix[1:]
    if any(_TIMING.match(line) for line in head):
        return "srt" if any("," in line for line in head if "-->" in line) else "vtt"
    return "txt"


# --- WebVTT and SRT --------------------------------------------------------------------------------


def _seconds(groups: tuple[str | None, ...], filename: str, number: int, line: str) -> float:
    hours, minutes, seconds, fraction = groups
    if int(seconds) > 59 or (hours is not None and int(minutes) > 59):
        raise TranscriptionError(f"{filename} line {number}: {line.strip()!r} has a time with minutes or seconds "
                                 "over 59; expected hh:mm:ss.mmm")
    frac = int((fraction or "0").ljust(3, "0")) / 1000
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds) + frac


def _blocks(lines: list[str]) -> list[tuple[int, list[str]]]:
    blocks: list[tuple[int, list[str]]] = []
    current: list[str] = []
    start = 0
    for number, line in enumerate(lines, start=1):
        if line.strip():
            if not current:
                start = number
            current.append(line.rstrip())
        elif current:
            blocks.append((start, current))
            current = []
    if current:
        blocks.append((start, current))
    return blocks


def _parse_cues(filename: str, lines: list[str], kind: str, limit: _Limit) -> tuple[list[Segment], str | None]:
    expected = "hh:mm:ss,mmm --> hh:mm:ss,mmm" if kind == "srt" else "hh:mm:ss.mmm --> hh:mm:ss.mmm (or mm:ss.mmm)"
    language = None
    cues: list[tuple[float, float, list[tuple[str | None, str]]]] = []
    blocks = _blocks(lines)
    if blocks and blocks[0][1][0].strip().startswith("WEBVTT"):
        first_number, header = blocks.pop(0)
        # A cue straight after the header, without the blank line WebVTT asks for, is still a cue.
        timing = next((i for i, line in enumerate(header) if "-->" in line), None)
        if timing is not None:
            cue_from = timing - 1 if timing > 1 and ":" not in header[timing - 1] else timing
            blocks.insert(0, (first_number + cue_from, header[cue_from:]))
            header = header[:cue_from]
        for meta in header[1:]:
            key, _, value = meta.partition(":")
            if key.strip().lower() == "language" and value.strip():
                language = value.strip().split("-")[0].lower()
    for index, (first_number, block) in enumerate(blocks):
        limit.line(index)
        head = block[0].strip()
        if re.match(r"^(NOTE|STYLE|REGION)(\s|$)", head):
            continue
        timing_at = next((i for i, line in enumerate(block[:2]) if "-->" in line), None)
        if timing_at is None:
            raise TranscriptionError(
                f"{filename} line {first_number}: expected a cue (an optional id line, then '{expected}', then the "
                f"words), found {head[:80]!r}")
        number = first_number + timing_at
        line = block[timing_at]
        match = _TIMING.match(line)
        if not match:
            raise TranscriptionError(f"{filename} line {number}: {line.strip()[:80]!r} is not a cue timing; "
                                     f"expected '{expected}'")
        start = _seconds(match.groups()[:4], filename, number, line)
        end = _seconds(match.groups()[4:], filename, number, line)
        if end < start:
            raise TranscriptionError(f"{filename} line {number}: the cue ends ({line.strip()[:80]!r}) before it "
                                     "starts; expected start --> end")
        cues.append((start, end, _payload(block[timing_at + 1:])))
        limit.cues(len(cues))
    if not cues:
        raise TranscriptionError(f"{filename} has no cues; expected blocks like '{expected}' followed by the words "
                                 "(is it the meeting tool's transcript export?)")

    # "Ines: hello" prefixes (Zoom's VTT) count as speakers where most unvoiced cues have one.
    unvoiced = [text for _, _, parts in cues for speaker, text in parts if speaker is None]
    prefixed = sum(1 for text in unvoiced if _SPEAKER_PREFIX.match(text))
    use_prefix = bool(unvoiced) and prefixed * 2 >= len(unvoiced)
    segments: list[Segment] = []
    for start, end, parts in cues:
        for speaker, text in parts:
            if speaker is None and use_prefix and (m := _SPEAKER_PREFIX.match(text)):
                speaker, text = m["speaker"].strip(), m["text"]
            segments.append(Segment(start=round(start, 3), end=round(end, 3), text=text, speaker=speaker))
    return segments, language


def _payload(lines: list[str]) -> list[tuple[str | None, str]]:
    """A cue's lines -> [(speaker, text)], one entry per run of lines with the same voice."""
    parts: list[tuple[str | None, str]] = []
    speaker: str | None = None
    for raw in lines:
        voice = _VOICE.search(raw)
        if voice:
            speaker = clean_text(html.unescape(voice.group(1))) or None
        text = clean_text(html.unescape(_ASS.sub("", _TAGS.sub("", raw))))
        if not text:
            continue
        if parts and parts[-1][0] == speaker:
            parts[-1] = (speaker, f"{parts[-1][1]} {text}")
        else:
            parts.append((speaker, text))
    return parts


# --- plain text ------------------------------------------------------------------------------------


def _txt_seconds(value: str, filename: str, number: int, line: str) -> tuple[float, bool]:
    """(seconds, written with hours) for h:mm:ss / mm:ss[.fff]."""
    parts = re.split(r"[:.,]", value)
    fraction = ""
    if re.search(r"[.,]\d+$", value):
        fraction = parts.pop()
    numbers = [int(p) for p in parts]
    if numbers[-1] > 59 or (len(numbers) == 3 and numbers[1] > 59):
        raise TranscriptionError(f"{filename} line {number}: {line.strip()[:80]!r} has a time with minutes or "
                                 "seconds over 59; expected h:mm:ss or mm:ss")
    seconds = sum(n * 60 ** i for i, n in enumerate(reversed(numbers)))
    return seconds + (int(fraction.ljust(3, "0")[:3]) / 1000 if fraction else 0.0), len(numbers) == 3


class _Txt:
    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.segments: list[dict[str, Any]] = []
        self.open: dict[str, Any] | None = None
        self.pending: float | None = None
        self.times: list[tuple[float, bool]] = []

    def time(self, value: str, number: int, line: str) -> float:
        seconds, hours = _txt_seconds(value, self.filename, number, line)
        self.times.append((seconds, hours))
        return seconds

    def close(self) -> None:
        if self.open is not None and self.open["text"]:
            self.segments.append(self.open)
        self.open = None

    def start(self, speaker: str | None, start: float | None, text: str, bare_prefix: bool = False) -> None:
        self.close()
        if start is None:
            start, self.pending = self.pending, None
        else:
            self.pending = None
        self.open = {"speaker": speaker, "start": start, "text": text, "bare_prefix": bare_prefix}

    def add(self, text: str) -> None:
        if self.open is None:
            self.start(None, None, text)
        else:
            self.open["text"] = f"{self.open['text']} {text}".strip()


def _parse_txt(filename: str, lines: list[str], limit: _Limit) -> tuple[list[Segment], dict[str, Any]]:
    state = _Txt(filename)
    for number, raw in enumerate(lines, start=1):
        limit.line(number)
        limit.cues(len(state.segments))
        line = CONTROL_CHARS.sub("", raw).strip()  # blanks kept: "Name  0:01" (two spaces) is a header
        if not line:
            state.close()
            continue
        if header := next((m for p in _TXT_HEADER if (m := p.match(line))), None):
            state.start(clean_text(header["speaker"]), state.time(header["time"], number, line), "")
            continue
        if only := _TXT_TIME_ONLY.match(line):
            state.close()
            state.pending = state.time(only["time"], number, line)
            continue
        if inline := next((m for p in _TXT_INLINE if (m := p.match(line))), None):
            speaker = clean_text(inline.groupdict().get("speaker") or "") or None
            state.start(speaker, state.time(inline["time"], number, line), clean_text(inline["text"]))
            continue
        if bare := _TXT_SPEAKER.match(line):
            state.start(clean_text(bare["speaker"]), None, clean_text(bare["text"] or ""), bare_prefix=True)
            continue
        state.add(clean_text(line))
    state.close()
    limit.cues(len(state.segments))

    raw_segments = state.segments
    # "Word: text" counts as a speaker only in a transcript made of such lines (or one with times):
    # in typed notes, "Agenda: pricing" is not somebody talking.
    bare = sum(1 for s in raw_segments if s["bare_prefix"])
    if not state.times and bare * 2 < len(raw_segments):
        for s in raw_segments:
            if s["bare_prefix"]:
                s["text"] = f"{s['speaker']}: {s['text']}".strip()
                s["speaker"] = None

    details: dict[str, Any] = {}
    if state.times and state.times[0][1] and state.times[0][0] >= 3600:
        # Times of day (Zoom's saved captions): count from the first one; a day boundary adds 24 h.
        origin = state.times[0][0]
        details["times_of_day_from"] = origin
        for s in raw_segments:
            if s["start"] is not None:
                s["start"] = s["start"] - origin + (86400 if s["start"] < origin - 43200 else 0)

    segments = [Segment(start=s["start"], end=None, text=s["text"], speaker=s["speaker"]) for s in raw_segments]
    for i, seg in enumerate(segments):
        nxt = segments[i + 1].start if i + 1 < len(segments) else None
        if seg.start is not None and nxt is not None and nxt >= seg.start:
            seg.end = nxt
    return segments, details
