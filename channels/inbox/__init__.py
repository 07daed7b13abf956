"""The email inbox: reps forward (or BCC) mail to the inbox address; it arrives by SMTP (`smtp.py`),
a provider webhook (`webhooks.py`: Mailgun, SendGrid, Postmark) or an uploaded .eml, is parsed here
(`mime.py`, `forwards.py`, `attachments.py`, `html_text.py`: standard library `email`, pypdf,
python-docx, no database) and stored by `deliver.py`.

Importing this package is cheap: the SMTP server and the webhook router (aiosmtpd, FastAPI) are
imported from their own modules only by whoever runs them.
"""

from channels.inbox.mime import parse_email
from channels.inbox.types import (
    Address,
    Attachment,
    DeliveryResult,
    DeliveryStatus,
    MalformedEmail,
    OriginalMessage,
    ParsedEmail,
)

__all__ = [
    "Address",
    "Attachment",
    "DeliveryResult",
    "DeliveryStatus",
    "MalformedEmail",
    "OriginalMessage",
    "ParsedEmail",
    "parse_email",
]

