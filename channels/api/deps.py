"""Request dependencies: the database session (one unit of work) and the acting user."""

from collections.abc import Iterator

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from store.actor import Actor
from store.errors import Unauthorized
from store.models.enums import Surface
from store.services.org import authenticate

bearer = HTTPBearer(auto_error=False, description="A token from `crm token create --user EMAIL`.")


def get_session(request: Request) -> Iterator[Session]:
    """The request's session. Write endpoints commit explicitly before they answer, so a
    failed commit is the client's error response, not a lost write after a 200."""
    session = request.app.state.sessionmaker()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


def get_actor(
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    session: Session = Depends(get_session),
) -> Actor:
    if credentials is None:
        raise Unauthorized("missing token: send 'Authorization: Bearer <token>' "
                           "(create one with `crm token create --user EMAIL`)")
    actor = authenticate(session, token=credentials.credentials, surface=Surface.api)
    session.commit()  # last_used_at
    return actor
