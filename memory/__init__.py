"""Vector memory over Chroma: emails, notes, call transcripts and attachments, searched by
meaning with the caller's SQL visibility. SQL is the source of truth; `Memory.reindex`
rebuilds the index from it. See memory/index.py."""

from memory.embeddings import EmbeddingUnavailable, embedding_function
from memory.index import Hit, Memory, MemoryMismatch, get_memory, reset_memory

__all__ = ["EmbeddingUnavailable", "Hit", "Memory", "MemoryMismatch", "embedding_function", "get_memory",
           "reset_memory"]
