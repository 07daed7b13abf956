"""Plain-text surgery on email bodies: what is new, what is quoted, what is a signature.

Pure functions over `str` (no I/O, no models), used by the vector memory so that a reply
is embedded as what its sender wrote (quoted history belongs to the earlier email it
quotes) and by anything that wants an email's sentences with their positions.

- `split_reply(text)` -> (new text, quoted history)
- `split_signature(text)` -> (body, signature)
- `sentences(text)` -> [(character offset, sentence)], with `text[offset:].startswith(sentence)`

`split_reply` stays hand-written: mail-parser-reply 1.36 (issue 16, with its en/de/fr/es/nl/it/pl/da/sv
rules) failed 4 of the 10 reply tests in tests/test_emailtext.py: it missed the Spanish and Dutch
attributions and Outlook's line of underscores, and kept an inline reply's "> " quotes in the new text.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache

import dateparser

# --- quoted history ------------------------------------------------------------------------

# Attribution lines that introduce the quoted message, in the languages mail clients write.
# Each may wrap over two lines (Gmail wraps long ones), so they are matched on a window of
# up to three joined lines and must end the window with ':'.
_ATTRIBUTION = [
    r"On\b.{4,300}?\bwrote\s*:",  # English (Gmail, Apple Mail, Thunderbird)
    r"Am\b.{4,300}?\bschrieb\b.{0,200}?:",  # German: Am 3. Dez. 2026 um 10:12 schrieb X <x@y>:
    r"Le\b.{4,300}?\ba\s+écrit\s*:",  # French: Le 3 déc. 2026 à 10:12, X a écrit :
    r"El\b.{4,300}?\bescribió\s*:",  # Spanish
    r"Op\b.{4,300}?\bschreef\b.{0,200}?:",  # Dutch: Op 3 dec. 2026 om 10:12 schreef X <x@y>:
    r"Il\b.{4,300}?\bha\s+scritto\s*:",  # Italian
    r"Em\b.{4,300}?\bescreveu\s*:",  # Portuguese
    r"W\s+dniu\b.{4,300}?\bnapisał(a)?\s*:",  # Polish
    r"Den\b.{4,300}?\bskrev\b.{0,200}?:",  # Danish / Norwegian / Swedish
]
_ATTRIBUTION_RE = re.compile(r"^\s*(?:" + "|".join(_ATTRIBUTION) + r")\s*$", re.IGNORECASE | re.DOTALL)

# Separator lines that start an Outlook-style (or forwarded-inline) original message.
_SEPARATOR_RE = re.compile(
    r"^\s*(?:-{2,}\s*(?:Original\s+Message|Ursprüngliche\s+Nachricht|Message\s+d'origine|Mensaje\s+original|"
    r"Oorspronkelijk\s+bericht|Messaggio\s+originale|Mensagem\s+original)\s*-{2,}|_{20,})\s*$",
    re.IGNORECASE,
)
# An Outlook header block: "From:" then, within a few lines, "Sent:"/"Date:" and "To:"/"Subject:".
_HEADER_FROM_RE = re.compile(r"^\s*\*?(?:From|Von|De|Van|Da|Od|Från|Fra)\s*:\*?\s*\S", re.IGNORECASE)
_HEADER_DATE_RE = re.compile(
    r"^\s*\*?(?:Sent|Date|Gesendet|Datum|Envoyé|Enviado|Fecha|Verzonden|Inviato|Data|Skickat|Sendt)\s*:", re.IGNORECASE)
_HEADER_TO_RE = re.compile(r"^\s*\*?(?:To|An|À|A|Para|Aan|Subject|Betreff|Objet|Asunto|Onderwerp|Oggetto|"
                           r"Cc)\s*:", re.IGNORECASE)
_QUOTED_LINE_RE = re.compile(r"^\s*>")


def _attribution_at(lines: list[str], i: int) -> int:
    """How many lines (1-3) starting at `i` form an attribution line; 0 if none.

    A wrapped attribution never spans a blank line and its first lines do not end a sentence.
    """
    for span in (1, 2, 3):
        if i + span > len(lines):
            break
        part = [line.strip() for line in lines[i:i + span]]
        if not part[-1] or (span > 1 and re.search(r"[.!?]$", part[-2])):
            break
        window = " ".join(part)
        if len(window) > 600:
            break
        if _ATTRIBUTION_RE.match(window):
            return span
    return 0


def _outlook_header_at(lines: list[str], i: int) -> bool:
    if not _HEADER_FROM_RE.match(lines[i]):
        return False
    window = lines[i + 1:i + 6]
    return any(_HEADER_DATE_RE.match(line) for line in window) and any(_HEADER_TO_RE.match(line) for line in window)


def _history_start(lines: list[str]) -> int | None:
    """Index of the first line of quoted history that runs to the end of the message."""
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        if _SEPARATOR_RE.match(line) or _outlook_header_at(lines, i):
            return i
        if _attribution_at(lines, i):
            return i
    return None


def split_reply(text: str) -> tuple[str, str]:
    """Split an email body into (new text, quoted history).

    Quoted history is everything from the first attribution line ("On <date>, <name> wrote:",
    "Am ... schrieb ...:", "Le ... a écrit :", "El ... escribió:", "Op ... schreef ...:" ...),
    Outlook separator ("-----Original Message-----", a line of underscores) or Outlook header
    block ("From: ... Sent: ... To: ...") on, plus every ">"-quoted line elsewhere (an inline
    reply keeps the answers between the quotes). Both parts are stripped; line breaks kept.
    """
    if not text:
        return "", ""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    start = _history_start(lines)
    head, tail = (lines, []) if start is None else (lines[:start], lines[start:])
    new: list[str] = []
    quoted: list[str] = []
    for line in head:
        (quoted if _QUOTED_LINE_RE.match(line) else new).append(line)
    quoted.extend(tail)
    return _strip_block("\n".join(new)), _strip_block("\n".join(quoted))


def _strip_block(text: str) -> str:
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


# --- signatures ------------------------------------------------------------------------------

_BOILERPLATE_RE = re.compile(
    r"^\s*(?:Sent\s+from\s+my\s+\w+(?:\s+\w+){0,3}|Sent\s+from\s+(?:Outlook|Mail|Yahoo\s+Mail|Gmail|Proton\s*Mail)"
    r"(?:\s+for\s+\w+)?(?:\s+on\s+\w+)?|Get\s+Outlook\s+for\s+\w+|Sent\s+(?:via|using)\s+\w+(?:\s+\w+){0,3}|"
    r"Sent\s+on\s+the\s+go|Von\s+meinem\s+\w+(?:\s+\w+){0,2}\s+gesendet|Envoyé\s+de\s+mon\s+\w+(?:\s+\w+){0,2}|"
    r"Enviado\s+desde\s+mi\s+\w+(?:\s+\w+){0,2}|Verzonden\s+(?:vanaf|met)\s+mijn\s+\w+(?:\s+\w+){0,2}|"
    r"Inviato\s+da(?:l)?\s+(?:mio\s+)?\w+(?:\s+\w+){0,2})\s*\.?\s*$",
    re.IGNORECASE,
)
_SIGN_OFFS = (
    r"best|best\s+regards|best\s+wishes|kind\s+regards|kindest\s+regards|warm\s+regards|warmest\s+regards|"
    r"warmly|regards|many\s+thanks|thanks|thank\s+you|thanks\s+again|thanks\s+so\s+much|thank\s+you\s+again|"
    r"thx|tia|cheers|sincerely|yours\s+sincerely|sincerely\s+yours|yours\s+truly|yours|all\s+the\s+best|"
    r"talk\s+soon|speak\s+soon|take\s+care|with\s+thanks|respectfully|br|"
    r"viele\s+grüße|viele\s+grüsse|beste\s+grüße|mit\s+freundlichen\s+grüßen|liebe\s+grüße|grüße|gruß|"
    r"cordialement|bien\s+cordialement|bien\s+à\s+vous|merci|amitiés|"
    r"saludos|un\s+saludo|atentamente|gracias|"
    r"met\s+vriendelijke\s+groet(?:en)?|groeten|hartelijke\s+groet(?:en)?|"
    r"cordiali\s+saluti|saluti|grazie|obrigad[oa]|abraços|atenciosamente"
)
_SIGN_OFF_RE = re.compile(rf"^\s*(?:{_SIGN_OFFS})\s*[,.!:;-]*\s*$", re.IGNORECASE)
_SIG_DELIMITER_RE = re.compile(r"^--\s?$")
# A line that looks like part of a signature block: short, no sentence in it.
_MAX_SIG_LINE = 72
_MAX_SIG_LINES = 10


def _looks_like_signature_line(line: str) -> bool:
    stripped = line.strip()
    if not stripped:
        return True
    if len(stripped) > _MAX_SIG_LINE:
        return False
    # A sentence (several words ending in . ? !) is body text, not a name/title/phone line.
    words = stripped.split()
    sentence = len(words) > 4 and re.search(r"[.?!]$", stripped)
    return not sentence or bool(re.search(r"\b(?:inc|ltd|llc|gmbh|co)\.$", stripped, re.I))


def split_signature(text: str) -> tuple[str, str]:
    """Split an email's text into (body, signature).

    The signature is what follows a "-- " delimiter line, or a trailing sign-off line
    ("Best,", "Thanks,", "Regards,", "Cheers,", "Viele Grüße", "Cordialement"...) with the
    short name/title/phone/company lines after it. Mobile boilerplate ("Sent from my iPhone",
    "Get Outlook for iOS"...) is taken out of the body and put with the signature.
    """
    if not text:
        return "", ""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    signature: list[str] = []
    # Boilerplate lines anywhere near the end.
    kept: list[str] = []
    for line in lines:
        (signature if _BOILERPLATE_RE.match(line) else kept).append(line)
    boiler = list(signature)
    lines = kept
    cut: int | None = None
    for i in range(len(lines) - 1, -1, -1):
        if _SIG_DELIMITER_RE.match(lines[i]):
            cut = i
            break
    if cut is None:
        # The last sign-off line whose following lines all look like a signature block.
        last = len(lines)
        while last > 0 and not lines[last - 1].strip():
            last -= 1
        for i in range(last - 1, max(-1, last - _MAX_SIG_LINES - 2), -1):
            if _SIGN_OFF_RE.match(lines[i]):
                after = lines[i + 1:last]
                if len([a for a in after if a.strip()]) <= _MAX_SIG_LINES and all(
                        _looks_like_signature_line(a) for a in after):
                    cut = i
                break
            if not _looks_like_signature_line(lines[i]):
                break
    if cut is None:
        return _strip_block("\n".join(lines)), _strip_block("\n".join(boiler))
    body, sig = lines[:cut], lines[cut:]
    if sig and _SIG_DELIMITER_RE.match(sig[0]):
        sig = sig[1:]
    return _strip_block("\n".join(body)), _strip_block("\n".join(sig + boiler))


# --- sentences -----------------------------------------------------------------------------

# Words after which a period does not end a sentence (lower-cased, without the period).
_ABBREVIATIONS = frozenset([
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "etc", "e.g", "i.e", "eg", "ie", "cf", "al",
    "approx", "appt", "apt", "dept", "est", "fig", "inc", "ltd", "co", "corp", "jan", "feb", "mar", "apr", "jun",
    "jul", "aug", "sep", "sept", "oct", "nov", "dec", "mon", "tue", "tues", "wed", "thu", "thur", "thurs", "fri",
    "sat", "sun", "no", "nos", "vol", "pp", "ph", "min", "max", "avg", "ca", "incl", "excl", "att", "attn",
    "ref", "re", "fwd", "tel", "ext", "nr", "bzw", "ggf", "zb", "usw", "resp",
])
# A sentence end: . ! ? or an ellipsis, then closing quotes or brackets, then a space or the end.
_TERMINAL = re.compile(r"(?:\.{3}|…|[.!?]+)[\"'”’)\]]*(?=\s|$)")
_BULLET = re.compile(r"^\s*(?:[-*•·▪◦–>]+|\d{1,3}[.)])\s+")


def month_number(word: str) -> int | None:
    """The month a word names in any language dateparser knows ("Dezember" -> 12), else None."""
    return _month_number(word.lower())


@lru_cache(maxsize=512)
def _month_number(word: str) -> int | None:
    parsed = dateparser.parse(f"1 {word} 2000", settings={"STRICT_PARSING": True,
                                                          "RELATIVE_BASE": datetime(1990, 1, 1)})
    return parsed.month if parsed and parsed.year == 2000 and parsed.day == 1 else None


def _chunks(text: str) -> list[tuple[int, int]]:
    """Paragraphs and lines that stand alone (a greeting, a list item); a hard-wrapped line (a long one,
    or one the next line continues in lower case, with no punctuation at its end) joins the next."""
    spans: list[tuple[int, int]] = []
    start: int | None = None
    prev, prev_end, pos = "", 0, 0
    for line in text.split("\n"):
        s, e = pos, pos + len(line)
        pos = e + 1
        if not line.strip():
            if start is not None:
                spans.append((start, prev_end))
            start, prev = None, ""
            continue
        tail = prev.strip()
        wrapped = (bool(tail) and (len(tail) >= 40 or line.lstrip()[:1].islower())
                   and not re.search(r"[.!?:;,]$", tail) and not _BULLET.match(line))
        if start is not None and not wrapped:
            spans.append((start, prev_end))
            start = None
        if start is None:
            start = s
        prev, prev_end = line, e
    if start is not None:
        spans.append((start, prev_end))
    return spans


def _not_an_end(text: str, begin: int, m: re.Match[str], chunk_end: int) -> bool:
    """A period after an abbreviation ("Dec. 5", "e.g.", "U.S."), an initial or a day before a month
    ("15. Dezember"); an ellipsis the sentence goes on after ("in Q2... then review")."""
    mark = m.group(0).rstrip("\"'”’)]")
    after = text[m.end():chunk_end].lstrip()
    if mark in ("...", "…"):
        return after[:1].islower()
    if mark != ".":
        return False
    word = re.search(r"([\w.]+)$", text[begin:m.start()])
    token = word.group(1).lower() if word else ""
    if token.rstrip(".") in _ABBREVIATIONS or re.fullmatch(r"[^\W\d_]|(?:[^\W\d_]\.)+[^\W\d_]", token):
        return True
    month = re.match(r"([^\W\d_]{3,})", after)
    return bool(re.fullmatch(r"\d{1,2}", token) and month and month_number(month.group(1)))


def sentences(text: str) -> list[tuple[int, str]]:
    """The sentences of `text` as (character offset, sentence), in order: the one sentence splitter
    (the memory and the offline ingestion extractor read mail with it).

    Paragraphs, bullet or numbered lines and short lines that stand alone (a greeting, a sign-off)
    end a sentence; hard-wrapped lines are joined. A period does not end a sentence after an
    abbreviation ("Dec. 5", "e.g.", "Dr.", "Inc.", "U.S."), an initial, inside a number ("62.5k",
    "v2.1") or between a day and a month ("15. Dezember"). A bullet is not part of its sentence.
    `text[offset:offset + len(sentence)] == sentence` holds for each.
    """
    out: list[tuple[int, str]] = []
    for cs, ce in _chunks(text or ""):
        bullet = _BULLET.match(text[cs:ce])
        begin = cs + (bullet.end() if bullet else 0)
        for m in _TERMINAL.finditer(text, begin, ce):
            if _not_an_end(text, begin, m, ce):
                continue
            _emit(out, text, begin, m.end())
            begin = m.end()
        _emit(out, text, begin, ce)
    return out


def _emit(out: list[tuple[int, str]], text: str, start: int, end: int) -> None:
    piece = text[start:end]
    bullet = _BULLET.match(piece)
    lead = bullet.end() if bullet else len(piece) - len(piece.lstrip())
    body = piece[lead:].rstrip()
    if body and re.search(r"\w", body):
        out.append((start + lead, body))
