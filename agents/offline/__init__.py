"""The offline model: a deterministic stand-in for an LLM, so the CRM works with no keys.

- `chat`: the chat model (`OfflineModel`): a rep's message -> tool calls or a sentence.
- `parse`: the values in a message (dates, amounts, periods, stages) and the records it names.
- `ingest`: the ingestion extractor: an email or a call -> the proposals it clearly implies.
- `ingest_rules`: the rules `ingest` applies to each sentence.
"""
