"""Application flows: what happens between a door (channels/) and the agent and the store.

The job queue and its handlers (`jobs`, `job_handlers`), inbox delivery (`deliver`), uploads
(`uploads`), the process's agent runner (`runtime`), what `crm serve` runs beside the app
(`background`). Channels call these; these never import a channel.
"""
