"""A multipart upload read as it streams in, for uploads with a size cap (call recordings).

FastAPI's `UploadFile` reads the whole body before the handler runs: a 46 MB transcript was
received in full before anything could refuse it. Here the file part's name is known from its
headers, before its bytes: `admit(filename)` refuses a kind that is not taken at once, and
`cap(filename, received)` as soon as the bytes past the cap arrive (413). The file goes to a
temporary file on disk, never into memory; `Upload.discard()` removes it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from store.errors import TooLarge, ValidationFailed

try:
    import python_multipart as multipart
    from python_multipart.exceptions import FormParserError
    from python_multipart.multipart import parse_options_header
except ModuleNotFoundError:  # python-multipart before 0.0.13
    import multipart  # type: ignore[no-redef]
    from multipart.exceptions import FormParserError  # type: ignore[no-redef]
    from multipart.multipart import parse_options_header  # type: ignore[no-redef]

FIELD_BYTES = 1024  # the form's other fields are ids
MAX_FIELDS = 16


@dataclass
class Upload:
    filename: str = ""
    content_type: str | None = None
    path: Path | None = None
    size: int = 0
    fields: dict[str, str] = field(default_factory=dict)

    def discard(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


async def read_upload(request: Request, *, file_field: str, max_body: int, admit: Callable[[str], None],
                      cap: Callable[[str, int], None], folder: Path | None = None) -> Upload:
    """The one file in `file_field` (a temporary file in `folder`) and the text fields of a
    multipart/form-data request. `max_body`: a Content-Length above it is refused before a byte is
    read. Raises CRMError (413, 422)."""
    kind, params = parse_options_header(request.headers.get("content-type", ""))
    if kind != b"multipart/form-data" or not params.get(b"boundary"):
        raise ValidationFailed(f"send the upload as multipart/form-data with the file in a `{file_field}` field")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_body:
        raise TooLarge(f"the upload is {int(length) / 1024 ** 2:.1f} MiB; the most taken here is "
                       f"{max_body / 1024 ** 2:.1f} MiB", max_bytes=max_body)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    reader = _Reader(file_field, admit, cap, folder)
    parser = multipart.MultipartParser(params[b"boundary"], reader.callbacks())
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            if reader.pending:
                await run_in_threadpool(reader.flush)
        parser.finalize()
        await run_in_threadpool(reader.flush)
    except FormParserError as exc:
        reader.abort()
        raise ValidationFailed(f"the multipart body is malformed ({exc}); send the file as the `{file_field}` "
                               "field of a multipart/form-data request") from exc
    except BaseException:
        reader.abort()
        raise
    reader.close()
    if reader.upload.path is None:
        raise ValidationFailed(f"no file in the upload: send it as the `{file_field}` field", field=file_field)
    return reader.upload


class _Reader:
    """python-multipart's callbacks: headers per part, the file's bytes to disk, fields to text."""

    def __init__(self, file_field: str, admit: Callable[[str], None], cap: Callable[[str, int], None],
                 folder: Path | None) -> None:
        self.file_field, self.admit, self.cap, self.folder = file_field, admit, cap, folder
        self.upload = Upload()
        self.pending: list[bytes] = []
        self._out: IO[bytes] | None = None
        self._headers: dict[bytes, bytes] = {}
        self._name, self._value = b"", b""
        self._field: str | None = None
        self._text = bytearray()
        self._in_file = False

    def callbacks(self) -> Any:
        return {"on_part_begin": self._begin, "on_header_field": self._header_field,
                "on_header_value": self._header_value, "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished, "on_part_data": self._data,
                "on_part_end": self._end}

    def _begin(self) -> None:
        self._headers, self._field, self._text, self._in_file = {}, None, bytearray(), False

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._name += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._name.strip().lower()] = self._value.strip()
        self._name, self._value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" not in options:
            if len(self.upload.fields) >= MAX_FIELDS:
                raise ValidationFailed(f"too many form fields (at most {MAX_FIELDS})")
            self._field = name
            return
        if name != self.file_field or self.upload.path is not None:
            raise ValidationFailed(f"send one file, in the `{self.file_field}` field (got a file in `{name}`)",
                                   field=self.file_field)
        filename = Path(options[b"filename"].decode("utf-8", "replace").replace("\\", "/")).name
        self.admit(filename)  # a kind not taken is refused before its first byte is read
        ctype = self._headers.get(b"content-type", b"").decode("latin-1") or None
        fd, tmp = tempfile.mkstemp(prefix="upload-", suffix=".part", dir=self.folder)
        self._out = os.fdopen(fd, "wb")
        self.upload.filename, self.upload.content_type, self.upload.path = filename, ctype, Path(tmp)
        self._in_file = True

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self.upload.size += end - start
            self.cap(self.upload.filename, self.upload.size)  # refused as soon as it passes its cap
            self.pending.append(bytes(data[start:end]))
        elif self._field is not None:
            self._text += data[start:end]
            if len(self._text) > FIELD_BYTES:
                raise ValidationFailed(f"{self._field}: too long (at most {FIELD_BYTES} bytes)", field=self._field)

    def _end(self) -> None:
        if self._field is not None:
            self.upload.fields[self._field] = self._text.decode("utf-8", "replace")
        self._in_file = False

    def flush(self) -> None:
        chunks, self.pending = self.pending, []
        if self._out is not None:
            for chunk in chunks:
                self._out.write(chunk)

    def close(self) -> None:
        if self._out is not None:
            self._out.close()

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self.close()
        self.upload.discard()
