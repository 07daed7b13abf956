"""Text out of email attachments, with a reason whenever there is none.

`read_attachment(filename, content_type, data, *, read_email, mode="builtin") -> (text, error)`;
never raises. Callers use `mail.mime.extract_text`, which reads attached emails (.eml,
message/rfc822) itself and hands them in as `read_email`: parsing an email is its job, and this
module sits below it.

Built in (small, offline, fast): PDF via pypdf, .docx via python-docx (paragraphs and tables, in
document order), plain text / CSV / Markdown / JSON / calendar / vCard, HTML (via `html_text`),
Outlook's winmail.dat (tnefparse, `tnef_contents`: the text inside; `mail.mime` lists and reads
the files inside like any attachment). The kind is decided by the file extension first, then the
declared content type, then magic bytes: mail clients often send PDFs as application/octet-stream.

Anything else (pptx, xlsx, odt, .doc, images, ...) goes to `unstructured` only when it is installed
(`pip install 'agent-crm[unstructured]'`); it is imported lazily with DO_NOT_TRACK=1 (it posts
telemetry otherwise). When it is missing the error names the extra; when it fails (it downloads
models on first use, which fails offline) the error says so. mode="unstructured" tries it first
and falls back to the built-in readers.

Text longer than MAX_TEXT_CHARS is cut, with a note at the end saying so.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import re
from collections.abc import Callable
from pathlib import PurePosixPath

from mail.charset import by_bom, fallback
from mail.html_text import html_to_text

MAX_TEXT_CHARS = 1_000_000
EXTRA_HINT = "pip install 'agent-crm[unstructured]'"

_DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_TEXT_EXTS = {".txt", ".text", ".csv", ".tsv", ".md", ".markdown", ".json", ".log", ".ics", ".vcf", ".xml",
              ".yaml", ".yml"}
_TEXT_TYPES = {"application/json", "application/xml", "application/x-yaml", "application/yaml"}
_TNEF_TYPES = {"application/ms-tnef", "application/vnd.ms-tnef"}
_SIGNATURE_TYPES = {"application/pkcs7-signature", "application/x-pkcs7-signature", "application/pgp-signature"}
_SMIME_TYPES = {"application/pkcs7-mime", "application/x-pkcs7-mime"}


_Reader = Callable[[str, str, bytes], tuple[str | None, str | None]]
EmailReader = Callable[[bytes], tuple[str | None, str | None]]


def read_attachment(filename: str, content_type: str, data: bytes, *, read_email: EmailReader,
                    mode: str = "builtin") -> tuple[str | None, str | None]:
    """(text, None) when text was read; (None, reason) when it could not be. Never raises.
    `read_email(data)` reads an attached email the same way."""
    try:
        text, error = _extract(filename or "", (content_type or "").lower(), data, mode, read_email)
    except Exception as exc:  # noqa: BLE001  (a bad attachment must never break the email)
        text, error = None, f"could not read {_label(filename, content_type)}: {type(exc).__name__}: {exc}"
    if text is not None:
        text = _cap(text)
    return text, error


def _extract(filename: str, content_type: str, data: bytes, mode: str,
             read_email: EmailReader) -> tuple[str | None, str | None]:
    if not data:
        return None, "empty file (0 bytes)"
    ctype = content_type.split(";")[0].strip()
    kind = _kind(filename, ctype, data)
    if kind == "eml":
        return read_email(data)
    reader = _READERS.get(kind)
    if mode == "unstructured" and kind not in ("tnef", "signature", "smime", "text"):
        text, error = _unstructured(filename, ctype, data)
        if text is not None or reader is None:
            return text, error
    if reader is None:
        return _unstructured(filename, ctype, data)
    text, error = reader(filename, content_type, data)
    if text is None and kind in ("pdf", "image") and _unstructured_installed():
        more, more_error = _unstructured(filename, ctype, data)
        return (more, None) if more is not None else (None, f"{error}; {more_error}")
    return text, error


def _kind(filename: str, ctype: str, data: bytes) -> str:
    ext = PurePosixPath(filename.lower()).suffix
    name = PurePosixPath(filename.lower()).name
    if is_tnef(name, ctype):
        return "tnef"
    if ctype in _SIGNATURE_TYPES or name in ("smime.p7s", "signature.asc"):
        return "signature"
    if ctype in _SMIME_TYPES or ext == ".p7m":
        return "smime"
    by_ext = {".pdf": "pdf", ".docx": "docx", ".eml": "eml", ".html": "html", ".htm": "html"}
    if ext in by_ext:
        return by_ext[ext]
    if ext in _TEXT_EXTS:
        return "text"
    if ctype == "application/pdf" or data.startswith(b"%PDF-"):
        return "pdf"
    if ctype == _DOCX:
        return "docx"
    if ctype == "message/rfc822":
        return "eml"
    if ctype == "text/html":
        return "html"
    if ctype.startswith("text/") or ctype in _TEXT_TYPES:
        return "text"
    if ctype.startswith("image/"):
        return "image"
    return "other"


def _label(filename: str | None, content_type: str | None) -> str:
    ext = PurePosixPath((filename or "").lower()).suffix
    return ext or (content_type or "").split(";")[0].strip() or "this file"


def _cap(text: str) -> str:
    if len(text) <= MAX_TEXT_CHARS:
        return text
    return text[:MAX_TEXT_CHARS] + f"\n\n[text cut: {len(text):,} characters, the first {MAX_TEXT_CHARS:,} kept]"


# -- readers ------------------------------------------------------------------------------------


def decode_text(data: bytes, content_type: str = "") -> str:
    """Bytes of a text file to str: BOM, declared charset, UTF-8, then Windows-1252."""
    codec = by_bom(data)
    if codec is not None:
        return data.decode(codec, errors="replace")
    match = re.search(r"charset\s*=\s*\"?([\w.:-]+)", content_type, re.IGNORECASE)
    return fallback(data, ((match.group(1),) if match else ()) + ("utf-8", "cp1252"))[0]


def _read_text(filename: str, content_type: str, data: bytes) -> tuple[str | None, str | None]:
    text = decode_text(data, content_type)
    if PurePosixPath(filename.lower()).suffix == ".json" or content_type.startswith("application/json"):
        with contextlib.suppress(ValueError):  # not valid JSON: keep it as it came
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    return (text, None) if text.strip() else (None, "the file holds no text")


def _read_html(filename: str, content_type: str, data: bytes) -> tuple[str | None, str | None]:
    text = html_to_text(decode_text(data, content_type))
    return (text, None) if text else (None, "the HTML holds no text")


def _read_pdf(filename: str, content_type: str, data: bytes) -> tuple[str | None, str | None]:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not _decrypt_with_empty_password(reader):
            return None, "the PDF is encrypted (password-protected); ask the sender for an unprotected copy"
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
    except DependencyError as exc:
        return None, f"the PDF is encrypted and pypdf needs an extra package to open it: {exc}"
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        return None, f"could not read the PDF (damaged or not a PDF): {type(exc).__name__}: {exc}"
    text = "\n\n".join(page for page in pages if page)
    if not text:
        return None, f"no text layer (a scanned PDF?); OCR needs the unstructured extra: {EXTRA_HINT}"
    return text, None


def _decrypt_with_empty_password(reader: object) -> bool:
    """Many PDFs are encrypted only to restrict printing/copying: they open with an empty password."""
    try:
        return bool(reader.decrypt(""))  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001
        return False


def _read_docx(filename: str, content_type: str, data: bytes) -> tuple[str | None, str | None]:
    import zipfile

    import docx
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        return None, (f"not a readable .docx ({type(exc).__name__}); password-protected Word files are "
                      "stored encrypted and cannot be read")
    blocks: list[str] = []
    for item in document.iter_inner_content():
        blocks.append(_table_text(item) if isinstance(item, Table) else item.text)
    text = "\n".join(block for block in blocks if block.strip())
    return (text, None) if text.strip() else (None, "the document holds no text")


def _table_text(table: object) -> str:
    rows = []
    for row in table.rows:  # type: ignore[attr-defined]
        cells: list[str] = []
        for cell in row.cells:
            value = cell.text.strip()
            if not cells or cells[-1] != value:  # merged cells repeat
                cells.append(value)
        rows.append(" | ".join(cells))
    return "\n".join(rows)


def is_tnef(filename: str, content_type: str) -> bool:
    """Outlook's winmail.dat (application/ms-tnef): a wrapper round the message's real attachments."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    return PurePosixPath((filename or "").lower()).name == "winmail.dat" or ctype in _TNEF_TYPES


def tnef_contents(data: bytes) -> tuple[str | None, list[tuple[str, bytes]]]:
    """(the text body Outlook put inside, [(file name, bytes)] of the files inside) of a winmail.dat,
    read with tnefparse; (None, []) when it holds neither or is not TNEF."""
    from tnefparse import TNEF

    try:
        tnef = TNEF(data, do_checksum=False)
    except Exception:  # noqa: BLE001  (truncated or not TNEF: nothing in it can be read)
        return None, []
    files = [(attachment.long_filename() or f"winmail-{number}.bin", attachment.data)
             for number, attachment in enumerate(tnef.attachments, start=1) if attachment.data]
    body: str | bytes | None = tnef.body
    if isinstance(body, bytes):
        body = fallback(body.rstrip(b"\x00"))[0]
    if not (body or "").strip() and tnef.htmlbody:
        html = tnef.htmlbody
        body = html_to_text(html if isinstance(html, str) else fallback(html)[0])
    return (body.strip() if body and body.strip() else None), files


def _read_tnef(filename: str, content_type: str, data: bytes) -> tuple[str | None, str | None]:
    body, files = tnef_contents(data)
    if body is not None:
        return body, None
    if files:
        names = ", ".join(name for name, _ in files)
        return None, (f"Outlook's winmail.dat wrapper: the files in it ({names}) are listed as attachments of "
                      "their own")
    return None, ("winmail.dat (Outlook's TNEF/rich-text format) holds no file or text that can be read; ask the "
                  "sender to send it again as HTML or plain text (Outlook: File > Options > Mail > Compose "
                  "messages in HTML)")


def _read_signature(filename: str, content_type: str, data: bytes) -> tuple[str | None, str | None]:
    return None, "a digital signature, not content: nothing to read"


def _read_smime(filename: str, content_type: str, data: bytes) -> tuple[str | None, str | None]:
    return None, "S/MIME encrypted or opaque-signed content (smime.p7m) cannot be read without the recipient's key"


def _read_image(filename: str, content_type: str, data: bytes) -> tuple[str | None, str | None]:
    return None, f"image: no text extracted (reading text in images needs OCR: {EXTRA_HINT})"


_READERS: dict[str, _Reader] = {
    "pdf": _read_pdf, "docx": _read_docx, "text": _read_text, "html": _read_html, "tnef": _read_tnef,
    "signature": _read_signature, "smime": _read_smime,
}


# -- the optional extra -------------------------------------------------------------------------


def _unstructured_installed() -> bool:
    return importlib.util.find_spec("unstructured") is not None


def _unstructured(filename: str, ctype: str, data: bytes) -> tuple[str | None, str | None]:
    label = _label(filename, ctype)
    if not _unstructured_installed():
        if ctype.startswith("image/"):
            return _read_image(filename, ctype, data)
        return None, f"no built-in reader for {label}; install the optional extra: {EXTRA_HINT}"
    os.environ.setdefault("DO_NOT_TRACK", "1")
    try:
        from unstructured.partition.auto import partition

        elements = partition(file=io.BytesIO(data), metadata_filename=filename or None)
    except Exception as exc:  # noqa: BLE001  (it may need a model or dependency it cannot download offline)
        return None, (f"unstructured could not read {label}: {type(exc).__name__}: {exc} "
                      "(it downloads models on first use, which fails without network)")
    text = "\n\n".join(str(element).strip() for element in elements if str(element).strip())
    return (text, None) if text else (None, f"unstructured found no text in {label}")
