"""Slack: reps and managers use the CRM from Slack (DMs, @mentions, `/crm`, approval cards).

- `app.py`: the Bolt app (listeners that acknowledge at once and hand the work over);
- `bot.py`: the work: conversations, cards, decisions, file shares, job reports;
- `cards.py`: Block Kit for proposals and the Edit modal; `text.py`: Slack markup;
- `identity.py`: Slack user -> CRM user (by email, once);
- `http.py`: the `/slack/...` routes of the FastAPI app; `socket.py`: Socket Mode.
"""
