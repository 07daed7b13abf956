"""CSV import (multipart upload) and export, acting as the token's user.

Included in channels/api/app.py with the other routers under /api/v1.
"""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations at runtime.
import tempfile
from collections.abc import Iterator
from typing import Any, Literal

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from channels.api.deps import get_actor, get_session
from store.actor import Actor
from store.exporter import export_csv
from store.importer import ImportReport, import_csv

router = APIRouter(tags=["import-export"])
EntityPath = Literal["contacts", "companies", "deals"]
# Kept in memory up to this size, then spooled to a temporary file.
_SPOOL_BYTES = 8 * 1024 * 1024
_CHUNK = 64 * 1024


@router.post("/imports/{entity}", response_model=ImportReport,
             summary="Import a CSV file (ours, or a HubSpot or Pipedrive export)",
             description="Creates a record per valid row, each with your permissions and an audit entry; "
                         "every rejected row comes back with its line number (the header is line 1) and "
                         "the reason. Existing records are never changed: a duplicate is a rejected row. "
                         "With `dry_run=true` nothing is written and the report is the same.")
def import_file(entity: EntityPath, file: UploadFile = File(description="The CSV file"),
                dry_run: bool = Query(False, description="Check and report only; write nothing."),
                session: Session = Depends(get_session), actor: Actor = Depends(get_actor)) -> Any:
    report = import_csv(session, actor=actor, entity=entity, rows=file.file.read(), dry_run=dry_run)
    session.commit()
    return report


@router.get("/exports/{entity}.csv", response_class=StreamingResponse,
            summary="Export what you can read as CSV (the columns the import reads back)",
            description="Filters as query parameters, as on the list endpoints (`field=value`, "
                        "`field__gte=value`, ...). Relations are written as emails, domains and names.")
def export_file(entity: EntityPath, request: Request, session: Session = Depends(get_session),
                actor: Actor = Depends(get_actor)) -> StreamingResponse:
    # Written out before the response starts, so a bad filter is a clean 422 and the session
    # is not needed while the client reads.
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES, mode="w+", encoding="utf-8",  # noqa: SIM115
                                          newline="")  # closed by `chunks` once sent
    try:
        count = export_csv(session, actor=actor, entity=entity, out=spool, filters=dict(request.query_params))
    except BaseException:
        spool.close()
        raise
    spool.seek(0)

    def chunks() -> Iterator[bytes]:
        with spool:
            while text := spool.read(_CHUNK):
                yield text.encode()

    return StreamingResponse(chunks(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{entity}.csv"', "X-Row-Count": str(count)})
