"""The Chroma side of the memory: the client, one collection per workspace and its embedding check.

One collection per workspace (`crm_ws_<workspace id hex>`, cosine space), created with the
registered embedding function of memory/embeddings.py so any later process reopens it by name.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any
from urllib.parse import urlparse

import chromadb
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.config import Settings as ChromaSettings
from chromadb.errors import NotFoundError

from memory.embeddings import EmbeddingUnavailable
from store.settings import Settings


class MemoryMismatch(EmbeddingUnavailable):
    """A collection was built with another embedding function than the settings ask for."""

    code = "memory_mismatch"


def collection_name(workspace_id: uuid.UUID | str) -> str:
    return f"crm_ws_{uuid.UUID(str(workspace_id)).hex}"


def make_client(settings: Settings) -> ClientAPI:
    """Chroma server when CRM_CHROMA_URL is set, else a persistent directory. No telemetry."""
    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        ssl = url.scheme == "https"
        return chromadb.HttpClient(host=url.hostname or "127.0.0.1", port=url.port or (443 if ssl else 8000),
                                   ssl=ssl, settings=chroma_settings)
    path = settings.resolved_chroma_path
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


def open_collection(client: ClientAPI, embedder: Any, workspace_id: uuid.UUID, *,
                    create: bool = True) -> Collection | None:
    """The workspace's collection (created if asked); None when absent and not created."""
    name = collection_name(workspace_id)
    try:
        col = client.get_collection(name, embedding_function=embedder)
    except NotFoundError:
        if not create:
            return None
        col = client.get_or_create_collection(
            name, embedding_function=embedder, configuration={"hnsw": {"space": "cosine"}},
            metadata={"workspace_id": str(workspace_id)})
    except ValueError as exc:  # another embedding function built it
        raise MemoryMismatch(f"the memory of workspace {workspace_id} was built with another embedding "
                             f"function ({exc}); rebuild it with `crm reindex`") from exc
    _check_embedder(col, embedder, workspace_id)
    return col


def _check_embedder(col: Collection, embedder: Any, workspace_id: uuid.UUID) -> None:
    persisted = (col.configuration_json or {}).get("embedding_function") or {}
    config = persisted.get("config") or {}
    ours = embedder.get_config() if hasattr(embedder, "get_config") else {}
    if "model" in config and "model" in ours and config["model"] != ours["model"]:
        raise MemoryMismatch(f"the memory of workspace {workspace_id} was built with embedding model "
                             f"{config['model']!r}, the settings ask for {ours['model']!r}; rebuild it "
                             "with `crm reindex`")


def drop_collection(client: ClientAPI, workspace_id: uuid.UUID) -> None:
    with contextlib.suppress(NotFoundError, ValueError):
        client.delete_collection(collection_name(workspace_id))
