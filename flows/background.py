"""What `crm serve` runs beside the HTTP app: the job queue, the memory's sync with SQL, the
Slack bot's ear on the event bus, and the doors that listen on their own (the inbox's SMTP
listener, Slack's Socket Mode: the channels hand them in). Started and stopped with the app
(FastAPI lifespan).

Tests start the pieces they need themselves; `create_app()` alone starts none of them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
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
    # The Slack bot, when configured: it hears about finished jobs and decisions made elsewhere.
    slack_bot: Any = None
    # Each starts a door when the background starts and returns the function that stops it.
    doors: list[Callable[[], Callable[[], None]]] = field(default_factory=list)
    _stops: list[Any] = field(default_factory=list)
    _pool: ThreadPoolExecutor | None = None

    def start(self, *, memory_sync: bool = True) -> Background:
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
        if self.slack_bot is not None:
            self._stops.append(events.on(events.JOB_FINISHED, self.slack_bot.on_job_finished))
            self._stops.append(events.on(events.APPROVAL_DECIDED, self.slack_bot.on_decided_elsewhere))
        for door in self.doors:
            self._stops.append(door())
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

        for stop in reversed(self._stops):  # the doors close before the bot stops hearing
            stop()
        if self.slack_bot is not None:
            self.slack_bot.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        queue = set_queue(None)
        if queue is not None:
            queue.close()

