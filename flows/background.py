"""What `crm serve` runs beside the HTTP app: the job queue, the inbox's SMTP listener and
the memory's sync with SQL. Started and stopped with the app (FastAPI lifespan).

Tests start the pieces they need themselves; `create_app()` alone starts none of them.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from memory.sync import MEMORY_KINDS
from store import events
from store.events import RecordEvent, subscribe
from store.settings import Settings

log = logging.getLogger("crm.background")



@dataclass
class Background:
    sessions: sessionmaker[Session]
    settings: Settings
    smtp: Any = None
    # The Slack bot, when configured: it hears about finished jobs and decisions made elsewhere,
    # and (with CRM_SLACK_APP_TOKEN) connects over Socket Mode.
    slack_bot: Any = None
    socket: Any = None
    _stops: list[Any] = field(default_factory=list)
    _pool: ThreadPoolExecutor | None = None

    def start(self, *, smtp: bool = True, memory_sync: bool = True) -> Background:
        from flows.jobs import InProcessQueue, get_queue, set_queue

        if not self.settings.broker_url:
            queue = InProcessQueue(self.sessions, self.settings)
            set_queue(queue)
            queue.recover()  # jobs a previous run left queued or running
        else:
            get_queue()
        if memory_sync:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crm-memory-sync")
            self._stops.append(subscribe(self._on_events))
        if smtp and self.settings.inbox_smtp_port:
            self.smtp = start_smtp(self.sessions, self.settings)
        if self.slack_bot is not None:
            self._stops.append(events.on(events.JOB_FINISHED, self.slack_bot.on_job_finished))
            self._stops.append(events.on(events.APPROVAL_DECIDED, self.slack_bot.on_decided_elsewhere))
            if self.settings.slack_app_token is not None:
                from channels.slack.socket import connect

                self.socket = connect(self.slack_bot)
        return self

    def _on_events(self, events: list[RecordEvent]) -> None:
        relevant = [e for e in events if e.kind in MEMORY_KINDS]
        if relevant and self._pool is not None:
            self._pool.submit(self._sync, relevant)

    def _sync(self, events: list[RecordEvent]) -> None:
        from memory.sync import on_record_events

        try:
            on_record_events(events, sessions=self.sessions)
        except Exception:  # noqa: BLE001  (memory is derived: `crm reindex` rebuilds it)
            log.exception("memory sync failed for %d event(s); `crm reindex` rebuilds memory", len(events))

    def stop(self) -> None:
        from flows.jobs import set_queue

        for stop in self._stops:
            stop()
        if self.smtp is not None:
            self.smtp.stop()
        if self.socket is not None:
            self.socket.close()
        if self.slack_bot is not None:
            self.slack_bot.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        queue = set_queue(None)
        if queue is not None:
            queue.close()


def start_smtp(sessions: sessionmaker[Session], settings: Settings) -> Any:
    from flows.deliver import deliver
    from channels.inbox.smtp import InboxSMTPServer

    def deliver_here(raw: bytes, *, recipients: list[str], mail_from: str, provider: str, **client: Any) -> Any:
        return deliver(raw, recipients=recipients, mail_from=mail_from, provider=provider, sessions=sessions,
                       settings=settings, **client)

    server = InboxSMTPServer(deliver=deliver_here, host=settings.inbox_smtp_host, port=settings.inbox_smtp_port,
                             inbox_address=settings.inbox_address, max_bytes=settings.inbox_max_bytes)
    server.start()
    log.info("inbox SMTP listener on %s:%s for %s", settings.inbox_smtp_host, server.port, settings.inbox_address)
    return server
