"""The offline model: a deterministic stand-in for an LLM, so the CRM works with no keys.

- `chat`: the chat model (`OfflineModel`): a rep's message -> tool calls or a sentence.
- `commands`, `questions`: what the chat model does with each kind of message (`replies`: their answers).
- `dates`, `numbers`, `phrases`: the values in a message (dates; amounts; periods, scopes, stages, clauses).
- `records`: the records a message names, found as the acting user.
- `ingest`: the ingestion extractor: an email or a call -> the proposals it clearly implies.
- `ingest_rules`: the rules `ingest` applies to each sentence.
"""
