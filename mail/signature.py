"""Who wrote an email, read from its signature block: name, title, company, phones, email, website.

`parse_signature` is pure and forgiving: it never raises and leaves out what it cannot tell.
Signatures come one field per line, or several on one line between "|", "·", "•" or " - ";
a title reads as one ("CISO", "VP Engineering", "Head of Procurement") and a company has a
legal suffix (GmbH, Inc., Ltd...) or the name of the sender's domain in it.

The result also carries `quote`: the lines the name, title and company were read from, as a
verbatim substring of the text, so a proposal can cite them.

Also here: `introduced` (the person named before an address: "I've copied our CISO, Jana Novak
(jana@...)"). Addresses and phone numbers are found by mail/finder.py, phones read in the country
of the sender's domain.
"""

from __future__ import annotations

import re
from typing import Any

from mail.finder import find_emails, find_phones, region_of

SIGN_OFF = re.compile(
    r"^(?:--+|__+|(?:best|kind|warm|many)?\s*(?:regards|wishes|thanks?|thank\s+you|cheers|best|sincerely|"
    r"cordially|talk\s+soon|all\s+the\s+best|with\s+thanks|yours(?:\s+truly)?|saludos|gr(?:ü|ue)(?:ß|ss)e|"
    r"cumprimentos|cordialement|mit\s+freundlichen\s+gr(?:ü|ue)(?:ß|ss)en)\b[\s,.!]*(?:,|!|$).*)$", re.I)
NOISE = re.compile(r"sent\s+from\s+my|confidential|intended\s+(?:only\s+)?for|disclaimer|unsubscribe|"
                   r"please\s+consider\s+the\s+environment", re.I)
URL_RE = re.compile(r"(?<![@\w.])(?:https?://|www\.)[\w.-]+(?:\.[a-z]{2,})(?:/[^\s|,;]*)?|"
                    r"(?<![@\w.])[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|io|net|org|co|ai|de|pt|fr|es|it|nl|uk|eu|"
                    r"example)(?:/[^\s|,;]*)?(?![\w@])", re.I)
PHONE_LABEL = re.compile(r"\b(?:fax|f)\s*[:.]\s*$", re.I)
TITLE_WORDS = re.compile(
    r"\b(?:C[A-Z]{1,2}O|VP|SVP|EVP|AVP|GM|Vice\s+President|President|Head|Director|Manager|Lead|Leader|"
    r"Engineer|Officer|Founder|Co-?founder|Owner|Partner|Principal|Chief|Counsel|Analyst|Architect|Specialist|"
    r"Consultant|Coordinator|Administrator|Executive|Buyer|Controller|Associate|Representative|Advisor|"
    r"Secretary|Treasurer|Developer|Scientist|Designer|Strategist|Recruiter|Procurement|Purchasing|"
    r"Gesch(?:ä|ae)ftsf(?:ü|ue)hrer(?:in)?|Leiter(?:in)?|Gerente|Directeur|Directrice|Responsable|Diretor(?:a)?)\b")
COMPANY_SUFFIX = re.compile(
    r"(?:\b(?:Inc|LLC|L\.L\.C|Ltd|Limited|GmbH|AG|SAS|SARL|Oy|AB|ApS|plc|PLC|Corp|Corporation|Group|Holdings?|"
    r"Lda|Pty|KG|SE|AS|S\.?A|S\.?L|B\.?V|N\.?V|S\.p\.A)\.?|A/S)(?!\w)")
PARTICLES = {"van", "von", "de", "da", "das", "do", "dos", "der", "den", "la", "le", "del", "di", "du", "ten", "ter"}
SEPARATORS = re.compile(r"\s+[|·•–—]\s+|\s+-\s+|\s*\|\s*")


def _segments(line: str) -> list[str]:
    out = []
    for seg in (s.strip() for s in SEPARATORS.split(line) if s and s.strip()):
        left, _, right = seg.partition(",")
        if right and _is_name(left.strip()) and TITLE_WORDS.search(right):
            out += [left.strip(), right.strip()]  # "Tom Becker, CISO"
        else:
            out.append(seg)
    return out


def _is_name(text: str) -> bool:
    words = text.split()
    if not 1 < len(words) <= 4 or TITLE_WORDS.search(text) or COMPANY_SUFFIX.search(text):
        return False
    return all(re.fullmatch(r"[^\W\d_][\w'’.-]*", w) and (w[0].isupper() or w.lower() in PARTICLES)
               for w in words)


def _looks_like_contact_line(text: str, region: str | None) -> bool:
    return bool(find_emails(text) or URL_RE.search(text) or _phones(text, region))


def _phones(text: str, region: str | None) -> list[str]:
    out = []
    for found in find_phones(text, region):
        raw = found.value.strip(" -./")
        if not 7 <= len(re.sub(r"\D", "", raw)) <= 15:
            continue
        if PHONE_LABEL.search(text[:found.start]):
            continue  # a fax number is not how anyone gets called
        out.append(raw)
    return out


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def _split_title(segment: str, domain_label: str | None) -> tuple[str, str | None]:
    """'VP Engineering at Borealis' / 'Head of Procurement, Borealis Logistics' -> title, company."""
    m = re.match(r"^(?P<t>.+?)\s+(?:at|@)\s+(?P<c>[A-Z].+)$", segment)
    if m:
        return m["t"].strip(), m["c"].strip()
    if "," in segment:
        left, right = (s.strip() for s in segment.rsplit(",", 1))
        if COMPANY_SUFFIX.search(right) or (domain_label and domain_label in right.lower()):
            return left, right
    return segment, None


def parse_signature(text: str | None, sender_name: str | None = None, sender_address: str | None = None
                    ) -> dict[str, Any]:
    """The sender's details from a signature block; missing fields are None (phones: [])."""
    out: dict[str, Any] = {"name": None, "first_name": None, "last_name": None, "title": None, "company": None,
                           "phones": [], "email": None, "website": None, "quote": None}
    text = text or ""
    domain = sender_address.rsplit("@", 1)[-1].lower() if sender_address and "@" in sender_address else None
    domain_label = domain.split(".")[0] if domain else None
    region = region_of(sender_address)
    lines: list[tuple[int, int, str]] = []  # (start, end, stripped line)
    for m in re.finditer(r"[^\n]+", text):
        line = m.group(0).strip()
        if not line or SIGN_OFF.match(line) or NOISE.search(line) or len(line) > 120:
            continue
        start = m.start() + m.group(0).index(line)
        lines.append((start, start + len(line), line))

    used: list[tuple[int, int]] = []
    wanted = _norm(sender_name or "")
    first_wanted = wanted.split(" ")[0] if wanted else ""
    name_at = None
    for i, (_s, _e, line) in enumerate(lines[:6]):
        if _looks_like_contact_line(line, region):
            continue
        for seg in _segments(line):
            seg_norm = _norm(seg)
            if (wanted and (seg_norm == wanted or (first_wanted and seg_norm.startswith(first_wanted + " ")
                                                    and _is_name(seg)))) or (not wanted and _is_name(seg)):
                out["name"], name_at = seg, i
                break
        if name_at is not None:
            break
    if name_at is None and wanted:
        # The signature may not repeat the name (or only the first name): the header's name is the name.
        out["name"] = sender_name.strip() if sender_name else None
        name_at = -1
    elif name_at is None:
        for i, (_s, _e, line) in enumerate(lines[:4]):
            if _is_name(line):
                out["name"], name_at = line, i
                break
    if name_at is not None and name_at >= 0:
        used.append(lines[name_at][:2])

    after = lines[name_at + 1:] if name_at is not None and name_at >= 0 else lines
    same_line = _segments(lines[name_at][2])[1:] if name_at is not None and name_at >= 0 else []
    candidates = [(None, seg) for seg in same_line] + [
        ((s, e), seg) for s, e, line in after[:4]
        if not _looks_like_contact_line(line, region) for seg in _segments(line)]
    for where, seg in candidates:
        if re.search(r"\d|@", seg):
            continue
        if out["title"] is None and TITLE_WORDS.search(seg) and len(seg) <= 80:
            out["title"], company = _split_title(seg, domain_label)
            out["company"] = out["company"] or company
        elif out["company"] is None and (COMPANY_SUFFIX.search(seg) or (domain_label and domain_label in seg.lower())):
            out["company"] = seg
        else:
            continue
        if where:
            used.append(where)

    for _s, _e, line in lines:
        out["phones"] += [p for p in _phones(line, region) if p not in out["phones"]]
        emails = find_emails(line)
        if out["email"] is None and emails:
            out["email"] = emails[0].value.lower()
        if out["website"] is None:
            for e in reversed(emails):  # an address's domain is not a website
                line = line[:e.start] + " " + line[e.end:]
            for m in URL_RE.finditer(line):
                out["website"] = m.group(0)
                break
    if sender_address:
        out["email"] = sender_address.strip().lower()

    if out["name"]:
        parts = out["name"].split()
        out["first_name"] = parts[0]
        out["last_name"] = " ".join(parts[1:]) or None
    if used:
        start, end = min(s for s, _ in used), max(e for _, e in used)
        out["quote"] = text[start:end]
    return out


# --- around a signature: people introduced in the text ----------------------------------


NOT_NAMES = {"adding", "add", "meet", "please", "copying", "cc", "cc'ing", "looping", "introducing", "also", "and",
             "here", "this", "our", "my", "with", "contact", "ask", "welcome", "including", "hi", "hello", "dear"}
_NAME_BEFORE = re.compile(r"(?P<name>[A-Z][\w'’-]+(?:\s+(?:[A-Z][\w'’-]+|van|von|de|da|dos|der))+)\s*[(<\[,:-]?\s*$")
_TITLE_BEFORE = re.compile(r"(?:\b(?:our|my|their|the)\s+)(?P<title>[^,()]{2,50}?)\s*,?\s*$", re.I)
_TITLE_AFTER = re.compile(r"^\s*[)>\]]?\s*,?\s*(?:(?:who\s+is|is)\s+)?(?:our|my|their|the)\s+(?P<title>[\w&/ -]{2,50}?)"
                          r"(?=[,.;)]|\s+(?:who|will|is|and|for|on|to|at)\b|$)", re.I)


def introduced(text: str, start: int, end: int) -> tuple[str, str | None, str | None] | None:
    """(first, last, title) of the person named right before the address at text[start:end] in an introduction
    ("I've copied our CISO, Jana Novak (jana@borealis.example)"), or None."""
    m = _NAME_BEFORE.search(text[:start])
    if m is None:
        return None
    words = m["name"].split()
    while words and words[0].lower() in NOT_NAMES:
        words = words[1:]  # "Adding Jana Novak": the sentence's first word is not her name
    if len(words) < 2:
        return None
    title = None
    before = _TITLE_BEFORE.search(text[:m.start()])
    after = _TITLE_AFTER.search(text[end:])
    for cand in (before, after):
        if cand and TITLE_WORDS.search(cand["title"]):
            title = cand["title"].strip()
            break
    return words[0], " ".join(words[1:]) or None, title
