"""Bytes of text in a doubtful charset -> str: the one fallback, for mail and for uploaded files.

A byte-order mark wins; then the charsets the caller trusts in order (the declared one, UTF-8,
Windows-1252: mail and spreadsheets written without a charset are nearly always one of those);
bytes none of them reads go to charset-normalizer's best guess; Latin-1, which reads any byte, is
last. charset-normalizer is not asked first: on the short texts mail carries it takes Windows-1252
for Windows-1250 or Shift-JIS ("Café crème" read as "Café crčme").
"""

from __future__ import annotations

import codecs

from charset_normalizer import from_bytes

NAMES = {"utf-8": "UTF-8", "cp1252": "windows-1252", "latin-1": "latin-1"}
BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def by_bom(data: bytes) -> str | None:
    """The codec a byte-order mark at the start of `data` names, None without one."""
    return next((codec for bom, codec in BOMS if data.startswith(bom)), None)


def fallback(data: bytes, order: tuple[str, ...] = ("utf-8", "cp1252")) -> tuple[str, str]:
    """(text, the charset's name): the first codec of `order` that reads every byte (unknown names
    are skipped), else charset-normalizer's guess, else Latin-1."""
    for codec in order:
        try:
            return data.decode(codec), NAMES.get(codec, codec)
        except (LookupError, UnicodeDecodeError):
            continue
    guess = from_bytes(data).best()
    if guess is not None:
        return str(guess), guess.encoding
    return data.decode("latin-1"), "latin-1"
