"""Mail, read: one received message (bytes) -> a `ParsedEmail`, with no database and no settings.

- `mime.py`: MIME structure, charsets, bodies, forwards as attachments; `headers.py`: its headers;
- `forwards.py`: a forwarded message recovered from the text (Gmail, Outlook, Apple Mail...);
- `attachments.py`: text out of attached files (pypdf, python-docx, ...); `html_text.py`: HTML to text;
- `body.py`: what a reply wrote anew, its quoted history, its signature, its sentences;
  `signature.py`: who wrote it, read from that signature; `finder.py`: addresses and phone numbers
  in any text (email-validator, phonenumbers);
- `e164.py`: phone numbers as written -> E.164 (the one normalizer; the store keeps that form);
- `charset.py`: bytes in a doubtful charset -> text (the one fallback; charset-normalizer for the rest);
- `auth.py`: whether the From is authenticated (DKIM, SPF, a trusted receiver's verdict), with DNS
  injected;
- `types.py`: the shapes: ParsedEmail, from the listener to the store's inbox service.

Every layer may import this package; it imports none of them.
"""

from mail.mime import parse_email
from mail.types import (
    Address,
    Attachment,
    DeliveryResult,
    DeliveryStatus,
    MalformedEmail,
    OriginalMessage,
    ParsedEmail,
    SenderCheck,
)

__all__ = [
    "Address",
    "Attachment",
    "DeliveryResult",
    "DeliveryStatus",
    "MalformedEmail",
    "OriginalMessage",
    "ParsedEmail",
    "SenderCheck",
    "parse_email",
]
