"""The one Settings object (environment variables with the CRM_ prefix, or .env)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRM_", env_file=".env", extra="ignore")

    # Where everything lives. The database defaults to a SQLite file inside it.
    data_dir: Path = Path("data")
    database_url: str | None = None
    # Echo SQL (debugging only).
    sql_echo: bool = False

    host: str = "127.0.0.1"
    port: int = 8000
    # Shown in links the product prints (tokens, approval pages).
    public_url: str | None = None

    default_workspace: str = "default"
    default_currency: str = "USD"

    # LLM endpoint (OpenAI-compatible). Unset means the built-in offline model.
    llm_model: str | None = None
    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = None
    llm_max_retries: int = 2
    llm_timeout_seconds: float = 120

    # Outgoing mail (send_email). Unset host: sending fails with a message naming it.
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    smtp_from: str | None = None

    # Largest page a list endpoint returns.
    max_page_size: int = 200

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'crm.db').resolve()}"

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
