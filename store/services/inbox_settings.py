"""The inbox's workspace setting (`settings.inbox`), read by the inbox and checked by org when an
admin changes it: apart from the inbox itself, so that org (which the inbox builds on) needs no import of it."""

from __future__ import annotations

from typing import Any

from store.errors import ValidationFailed
from store.models import Workspace

UNAUTHENTICATED_POLICIES = ("flag", "refuse")


def unauthenticated_policy(ws: Workspace) -> str:
    """'flag' (the default: keep it, marked) or 'refuse', from `settings.inbox.unauthenticated`."""
    value = ((ws.settings or {}).get("inbox") or {}).get("unauthenticated", "flag")
    return value if value in UNAUTHENTICATED_POLICIES else "flag"


def check_inbox_settings(settings: dict[str, Any]) -> None:
    """Refuse an `inbox` workspace setting the inbox would not understand (ValidationFailed)."""
    inbox = settings.get("inbox")
    if inbox is None:
        return
    if not isinstance(inbox, dict) or set(inbox) - {"unauthenticated"}:
        raise ValidationFailed('settings.inbox takes {"unauthenticated": "flag" | "refuse"}', field="settings")
    if inbox.get("unauthenticated", "flag") not in UNAUTHENTICATED_POLICIES:
        raise ValidationFailed(f"settings.inbox.unauthenticated must be one of {', '.join(UNAUTHENTICATED_POLICIES)}, "
                               f"not {inbox['unauthenticated']!r}", field="settings")
