"""Application flows: what happens between a door (channels/) and the agent and the store.

The job queue and its handlers (`jobs`, `job_handlers`), inbox delivery (`deliver`), uploads
(`uploads`), the process's agent runner (`runtime`), what `crm serve` runs beside the app
(`background`), and the one function that decides a proposal (`decisions`). Channels and the
evals call these; these never import a channel.
"""
