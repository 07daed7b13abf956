"""The email inbox: reps forward (or BCC) mail to the inbox address; it arrives by SMTP (`smtp.py`),
a provider webhook (`webhooks.py`: Mailgun, SendGrid, Postmark) or an uploaded .eml, is read by
`mail/` (parsing, sender authentication) and stored by `flows/deliver.py`.

The SMTP server and the webhook router (aiosmtpd, FastAPI) are imported from their own modules,
only by whoever runs them.
"""
