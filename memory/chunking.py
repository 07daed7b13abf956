"""Turn emails, notes and call transcripts into chunks to embed.

Pure functions: the caller (memory/index.py) reads the rows and their links from SQL and
passes them in as a `Source`; nothing here touches the database or a model.

- An email is embedded as its subject and what its sender wrote: quoted history belongs to
  the earlier email it quotes (and is embedded with that one) and the signature is noise.
  Each attachment's extracted text is chunked as its own kind, "attachment".
- A call transcript's timestamped segments are grouped into windows of about 60-120 s
  and at most ~220 tokens, keeping start/end seconds and speakers.
- Chunks hold about 200 tokens (at most ~240: all-MiniLM-L6-v2 reads 256 word pieces and
  ignores the rest) and overlap by up to one short sentence.

Chunk ids are deterministic: `<kind>:<source id>:<n>` (attachments: `attachment:<email
id>:<n>`, numbered over all of the email's attachments), so re-indexing a record replaces
the same ids. Metadata values are str/int/float/bool or non-empty lists of str (Chroma 1.5
filters lists with `$contains`); see memory/index.py for the keys searched.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mail.body import sentences, split_reply, split_signature

TARGET_TOKENS = 200
MAX_TOKENS = 240
OVERLAP_TOKENS = 40
# Transcript windows: close one once it spans this long (and has some text), never longer.
CALL_MIN_SECONDS = 60.0
CALL_MAX_SECONDS = 120.0


@dataclass(frozen=True)
class Chunk:
    id: str
    text: str  # what is stored and shown (the snippet)
    metadata: dict[str, Any]
    # Prepended to `text` when embedding (a subject, a filename): context the snippet lacks.
    context: str = ""

    @property
    def embedding_input(self) -> str:
        return f"{self.context}\n{self.text}" if self.context else self.text


@dataclass
class Source:
    """What the chunk metadata says about the record a chunk comes from."""

    workspace_id: uuid.UUID
    source_id: uuid.UUID
    owner_id: uuid.UUID | None
    date: datetime | None
    title: str = ""
    author: str = ""
    contact_ids: Sequence[uuid.UUID] = field(default_factory=list)
    company_ids: Sequence[uuid.UUID] = field(default_factory=list)
    deal_ids: Sequence[uuid.UUID] = field(default_factory=list)


# --- tokens and windows ---------------------------------------------------------------------

_TOKEN_RE = re.compile(r"[^\W\d_]+|\d+|[^\w\s]", re.UNICODE)


def estimate_tokens(text: str) -> int:
    """About the number of word pieces all-MiniLM-L6-v2's tokenizer makes of `text`
    (common words are one piece, long or rare words several, each digit run and
    punctuation mark one). Within ~15% on English business mail; no tokenizer needed."""
    n = 0
    for tok in _TOKEN_RE.findall(text):
        if tok[0].isalpha():
            n += 1 if len(tok) <= 7 else 1 + (len(tok) - 4) // 5
        elif tok[0].isdigit():
            n += 1 + len(tok) // 4
        else:
            n += 1
    return n


def _split_long(sentence: str, limit: int) -> list[str]:
    """A sentence longer than `limit` tokens cut on word boundaries."""
    words = sentence.split()
    out: list[str] = []
    current: list[str] = []
    size = 0
    for word in words:
        cost = estimate_tokens(word)
        if current and size + cost > limit:
            out.append(" ".join(current))
            current, size = [], 0
        current.append(word)
        size += cost
    if current:
        out.append(" ".join(current))
    return out


def windows(text: str, *, target: int = TARGET_TOKENS, limit: int = MAX_TOKENS,
            overlap: int = OVERLAP_TOKENS) -> list[str]:
    """`text` packed into windows of whole sentences of about `target` tokens (never above
    `limit`), each starting with the previous window's last sentence when that is short."""
    pieces: list[tuple[str, int]] = []
    for _, sentence in sentences(text):
        sentence = re.sub(r"\s*\n\s*", " ", sentence)
        cost = estimate_tokens(sentence)
        if cost > limit:
            pieces += [(p, estimate_tokens(p)) for p in _split_long(sentence, target)]
        else:
            pieces.append((sentence, cost))
    groups: list[list[tuple[str, int]]] = []
    current: list[tuple[str, int]] = []
    size = 0
    fresh = 0  # pieces in `current` that are not the previous window's overlap
    for piece in pieces:
        if fresh and (size + piece[1] > limit or size >= target):
            groups.append(current)
            last = current[-1]
            keep = last[1] <= overlap and last[1] + piece[1] <= limit
            current, size, fresh = ([last], last[1], 0) if keep else ([], 0, 0)
        current.append(piece)
        size += piece[1]
        fresh += 1
    if fresh:
        new = current[len(current) - fresh:]
        new_size = sum(cost for _, cost in new)
        # A short remainder joins the window before it when both fit.
        if groups and new_size < target // 4 and sum(cost for _, cost in groups[-1]) + new_size <= limit:
            groups[-1] = groups[-1] + new
        else:
            groups.append(current)
    return [" ".join(p for p, _ in group) for group in groups]


# --- metadata -------------------------------------------------------------------------------

def _epoch(value: datetime | None) -> tuple[int, str]:
    if value is None:
        return 0, ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return int(value.timestamp()), value.isoformat(timespec="seconds")


def base_metadata(kind: str, src: Source, *, n: int, title: str | None = None) -> dict[str, Any]:
    epoch, iso = _epoch(src.date)
    meta: dict[str, Any] = {
        "workspace_id": str(src.workspace_id),
        "owner_id": str(src.owner_id) if src.owner_id else "",
        "kind": kind,
        "source_id": str(src.source_id),
        "title": (title if title is not None else src.title)[:300],
        "date": epoch,
        "date_iso": iso,
        "author": src.author[:200],
        "n": n,
    }
    for key, values in (("contact_ids", src.contact_ids), ("company_ids", src.company_ids),
                        ("deal_ids", src.deal_ids)):
        ids = sorted({str(v) for v in values if v})
        if ids:  # Chroma refuses an empty list
            meta[key] = ids
    return meta


# --- builders -------------------------------------------------------------------------------

def email_body(text: str) -> str:
    """What the sender wrote: the body without quoted history and without the signature."""
    new, _ = split_reply(text or "")
    body, _ = split_signature(new)
    return body


def email_chunks(src: Source, *, subject: str, body_text: str | None,
                 attachments: Sequence[tuple[uuid.UUID, str, str | None]] = ()) -> list[Chunk]:
    """Chunks of one email: its new text (kind "email"), then each attachment's text (kind
    "attachment", titled with the filename). `attachments`: (id, filename, extracted text)."""
    chunks: list[Chunk] = []
    subject = (subject or "").strip()
    body = email_body(body_text or "")
    parts = windows(body) if body else []
    if not parts and subject:
        parts = [""]  # an email with only a subject is still findable by it
    for n, part in enumerate(parts):
        chunks.append(Chunk(id=f"email:{src.source_id}:{n}", text=part or subject,
                            metadata=base_metadata("email", src, n=n, title=subject),
                            context=subject if part else ""))
    n = 0
    for attachment_id, filename, text in attachments:
        if not text or not text.strip():
            continue
        context = f"{filename} (attached to \"{subject}\")" if subject else filename
        for part in windows(text):
            meta = base_metadata("attachment", src, n=n, title=filename)
            meta["locator"] = filename[:300]
            meta["attachment_id"] = str(attachment_id)
            meta["email_subject"] = subject[:300]
            chunks.append(Chunk(id=f"attachment:{src.source_id}:{n}", text=part, metadata=meta, context=context))
            n += 1
    return chunks


def note_title(body: str) -> str:
    first = next((line.strip() for line in (body or "").splitlines() if line.strip()), "")
    return first if len(first) <= 80 else first[:77].rstrip() + "..."


def note_chunks(src: Source, *, body: str) -> list[Chunk]:
    title = src.title or note_title(body)
    return [Chunk(id=f"note:{src.source_id}:{n}", text=part, metadata=base_metadata("note", src, n=n, title=title))
            for n, part in enumerate(windows(body or ""))]


def clock(seconds: float) -> str:
    """12:03, or 1:02:03 past an hour."""
    total = max(0, int(seconds))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _segment_lines(segments: Sequence[dict[str, Any]]) -> list[tuple[float | None, float | None, str, str]]:
    out = []
    for seg in segments:
        text = " ".join(str(seg.get("text") or "").split())
        if not text:
            continue
        start = seg.get("start")
        end = seg.get("end")
        out.append((float(start) if start is not None else None, float(end) if end is not None else None,
                    str(seg.get("speaker") or "").strip(), text))
    return out


def call_chunks(src: Source, *, segments: Sequence[dict[str, Any]], text: str = "",
                transcript_id: uuid.UUID | None = None) -> list[Chunk]:
    """Chunks of a call transcript: segments grouped into windows of ~60-120 s and at most
    ~MAX_TOKENS tokens; each keeps its start/end seconds, "12:03-12:41" and its speakers.
    Overlap: a window opens with the previous window's last segment when that is short.
    Without segments, the plain text is chunked by sentences (no times)."""
    lines = _segment_lines(segments)
    pieces: list[tuple[float | None, float | None, str, str]] = []
    for line in lines:
        if estimate_tokens(line[3]) <= MAX_TOKENS:
            pieces.append(line)
        else:
            pieces += [(line[0], line[1], line[2], p) for p in _split_long(line[3], TARGET_TOKENS)]
    groups: list[list[tuple[float | None, float | None, str, str]]] = []
    current: list[tuple[float | None, float | None, str, str]] = []
    size = fresh = 0
    for piece in pieces:
        cost = estimate_tokens(piece[2]) + estimate_tokens(piece[3]) + 1
        if fresh:
            first = current[0][0]
            piece_end = piece[1] if piece[1] is not None else piece[0]
            span = piece_end - first if first is not None and piece_end is not None else 0.0
            if size + cost > MAX_TOKENS or span > CALL_MAX_SECONDS or (
                    span >= CALL_MIN_SECONDS and size >= TARGET_TOKENS // 2):
                groups.append(current)
                last = current[-1]
                last_cost = estimate_tokens(last[2]) + estimate_tokens(last[3]) + 1
                gap = (piece[0] - last[1]) if piece[0] is not None and last[1] is not None else None
                keep = last_cost <= OVERLAP_TOKENS and last_cost + cost <= MAX_TOKENS and gap is not None and gap < 10
                current, size, fresh = ([last], last_cost, 0) if keep else ([], 0, 0)
        current.append(piece)
        size += cost
        fresh += 1
    if fresh:
        groups.append(current)
    chunks: list[Chunk] = []
    if not groups:
        for n, part in enumerate(windows(text or "")):
            meta = base_metadata("call", src, n=n)
            if transcript_id:
                meta["transcript_id"] = str(transcript_id)
            chunks.append(Chunk(id=f"call:{src.source_id}:{n}", text=part, metadata=meta, context=src.title))
        return chunks
    for n, group in enumerate(groups):
        body_lines = []
        speakers: list[str] = []
        previous = None
        for _, _, speaker, line_text in group:
            if speaker and speaker not in speakers:
                speakers.append(speaker)
            body_lines.append(f"{speaker}: {line_text}" if speaker and speaker != previous else line_text)
            previous = speaker
        starts = [g[0] for g in group if g[0] is not None]
        ends = [g[1] for g in group if g[1] is not None] or starts
        meta = base_metadata("call", src, n=n)
        if starts:
            meta["start"] = float(min(starts))
            meta["end"] = float(max(ends)) if ends else float(min(starts))
            meta["locator"] = f"{clock(meta['start'])}-{clock(meta['end'])}"
        if speakers:
            meta["speakers"] = ", ".join(speakers)[:300]
        if transcript_id:
            meta["transcript_id"] = str(transcript_id)
        chunks.append(Chunk(id=f"call:{src.source_id}:{n}", text="\n".join(body_lines), metadata=meta,
                            context=src.title))
    return chunks
