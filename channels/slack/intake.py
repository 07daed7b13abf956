"""What reaches the bot besides words: call recordings shared in Slack, and the results of the
jobs that process forwarded emails and calls (told to the rep in the thread or as a DM)."""

from __future__ import annotations

import logging
import tempfile
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from channels.slack.identity import Refusal, slack_id_for
from channels.slack.text import chunks, mrkdwn, sentence
from store.db import unit_of_work
from store.errors import CRMError, TooLarge
from store.models import Job
from store.models.enums import ApprovalStatus, JobStatus, Surface
from store.services import approvals as approval_service
from store.services.calls import CallLimits, check_kind, check_size, recording_by_id
from store.services.inbox import email_by_id
from store.services.jobs import job_by_id
from store.services.org import actor_for_user, get_workspace, user_by_id

log = logging.getLogger("crm.slack")


# The SlackBot (channels/slack/bot.py): it hands its files and finished jobs here, so this module
# names it only by what it uses of it.
Bot = Any


def take_files(bot: Bot, *, slack_user: str, team_id: str | None, channel: str, thread_ts: str,
               files: list[dict[str, Any]], in_dm: bool) -> None:
    """Files shared with the bot: each recording or transcript goes to the call pipeline;
    the proposals come back in this thread when the job is done."""
    from flows.uploads import upload_call

    who = bot.who(slack_user, team_id)
    if isinstance(who, Refusal):
        (bot.post(channel, thread_ts, who.text) if in_dm else
         bot.ephemeral(channel, slack_user, who.text, thread_ts))
        return
    actor = actor_for_user(who, Surface.slack)
    limits = CallLimits.from_settings(bot.settings)
    for shared in files:
        info = dict(bot.client.files_info(file=shared["id"])["file"])
        name = str(info.get("name") or shared["id"])
        size = int(info.get("size") or 0)
        if size > bot.settings.slack_max_file_bytes:
            bot.post(channel, thread_ts, f"{name} is {size / 1e6:.0f} MB; the most I take from Slack is "
                                           f"{bot.settings.slack_max_file_bytes / 1e6:.0f} MB. Upload it with "
                                           "`crm ingest-call` or POST /api/v1/calls instead.")
            continue
        try:  # the caps every door applies, before a byte is downloaded
            check_kind(name)
            check_size(name, size, limits)
        except CRMError as exc:
            bot.post(channel, thread_ts, _refusal(name, exc))
            continue
        with tempfile.TemporaryDirectory(prefix="crm-slack-") as folder:
            path = Path(folder) / "upload"
            try:
                _download(bot, str(info.get("url_private_download") or info.get("url_private")), path,
                          min(bot.settings.slack_max_file_bytes, limits.max_bytes(name)), name)
            except CRMError as exc:
                bot.post(channel, thread_ts, _refusal(name, exc))
                continue
            progress = bot.post(channel, thread_ts, f"⏳ Got {name}: transcribing it. I'll reply here with a "
                                                      "summary and proposed updates when it's done.")
            reply_to = {"slack": {"channel": channel, "thread_ts": thread_ts, "progress_ts": progress["ts"],
                                  "filename": name}}
            try:
                with unit_of_work(bot.sessions) as session:
                    upload = upload_call(session, actor, filename=name, content_type=info.get("mimetype"),
                                         path=path, source="slack", reply_to=reply_to, settings=bot.settings)
                    job_id = upload.job.id
            except CRMError as exc:
                bot.client.chat_update(channel=channel, ts=progress["ts"], text=_refusal(name, exc))
                continue
        log.info("call %s from Slack queued as job %s", name, job_id)


def _refusal(name: str, exc: CRMError) -> str:
    # The services' messages start with the file's name where they are about the file.
    message = exc.message.strip()
    if message.startswith(name):
        return f"❌ {message}" + ("" if message.endswith((".", "!", "?")) else ".")
    return f"❌ I can't take {name}: {sentence(message)}"


def _download(bot: Bot, url: str, path: Path, most: int, name: str) -> None:
    """The shared file into `path`, in chunks; refused (TooLarge) once more than `most` bytes came."""
    token = bot.settings.slack_bot_token.get_secret_value() if bot.settings.slack_bot_token else ""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    received = 0
    with urllib.request.urlopen(request, timeout=60) as response, path.open("wb") as out:  # noqa: S310  (Slack's own file URL)
        while chunk := response.read(1024 * 1024):
            received += len(chunk)
            if received > most:
                raise TooLarge(f"{name} is larger than Slack said; the most taken is {most / 1024 ** 2:.0f} MiB")
            out.write(chunk)


def report_job(bot: Bot, job_id: uuid.UUID) -> None:
    """Tell the rep what a finished email or call job proposed (or why it failed): in the Slack
    thread the recording came from, else in a DM."""
    with unit_of_work(bot.sessions, readonly=True) as session:
        job = job_by_id(session, job_id)
        if job is None or job.kind not in ("ingest_email", "process_call"):
            return
        ws = get_workspace(session, slug=bot.settings.default_workspace)
        rep = user_by_id(session, job.requested_by_id)
        if ws is None or job.workspace_id != ws.id or rep is None or not rep.is_active:
            return
        status, result, error, payload = job.status, dict(job.result), job.error, dict(job.payload)
        headline = _job_headline(session, job)
        slack_target = (payload.get("reply_to") or {}).get("slack")
        rep_id = rep.id
        thread = str(result.get("thread") or "")
        pending = [a.id for a in approval_service.for_thread(session, actor=actor_for_user(rep, Surface.slack),
                                                             thread_id=thread)
                   if a.status == ApprovalStatus.pending] if thread else []
    if status not in (JobStatus.succeeded, JobStatus.failed, JobStatus.interrupted):
        return
    rep_slack = None if slack_target else slack_id_for(bot.sessions, bot.client, user_id=rep_id,
                                                       team_id=bot.team_id)
    if slack_target:
        channel, thread_ts = slack_target["channel"], slack_target.get("thread_ts")
    elif rep_slack:
        channel, thread_ts = bot.dm_channel(rep_slack), None
    else:
        log.info("job %s: its rep has no Slack account to tell", job_id)
        return
    if status == JobStatus.failed:
        text = (f"❌ {headline}: it failed. {sentence(error or 'unknown error')} Nothing was lost: fix it and "
                f"retry with `crm jobs retry {job_id}` or POST /api/v1/jobs/{job_id}/retry.")
    elif status == JobStatus.interrupted:
        text = (f"⏸️ {headline}: the server stopped before it was done. Nothing was lost: retry it with "
                f"`crm jobs retry {job_id}` or POST /api/v1/jobs/{job_id}/retry.")
    else:
        count = len(pending)
        text = f"✅ {headline}: {count} proposed update{'s' if count != 1 else ''}" + (
            " for you to review." if count else ".")
    progress_ts = slack_target.get("progress_ts") if slack_target else None
    if progress_ts:
        bot.client.chat_update(channel=channel, ts=progress_ts, text=text)
    else:
        posted = bot.post(channel, thread_ts, text)
        thread_ts = thread_ts or posted["ts"]  # a DM: the cards go in a thread under the headline
    if status == JobStatus.succeeded:
        for reply in result.get("replies") or []:
            for part in chunks(mrkdwn(str(reply))):
                bot.post(channel, thread_ts, part)
        bot.post_cards(channel, thread_ts, pending)


def _job_headline(session: Session, job: Job) -> str:

    if job.kind == "ingest_email":
        email = email_by_id(session, uuid.UUID(job.payload["email_id"])) if job.payload.get("email_id") else None
        headline = f"Your forwarded email “{email.subject}”" if email and email.subject else "Your forwarded email"
        if email is not None and email.sender_authenticated is False:
            headline += " (⚠️ its sender could not be authenticated)"
        return headline
    rec = recording_by_id(session, uuid.UUID(job.payload["call_recording_id"])) \
        if job.payload.get("call_recording_id") else None
    return f"Your call {rec.filename}" if rec else "Your call"
