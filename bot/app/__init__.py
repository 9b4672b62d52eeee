"""The GitHub App: the process model and the server (`server`, `intake`, `intake_pool`,
`loop`), one router per event (`handlers`), the audit's orchestration (`auditor`), the
GitHub reads of one audit (`reads`), the rule engine's worker processes (`engine_pool`),
the queue, slash commands, GitHub access (`github`: tokens, retries, caches), settings,
logs and the HTML pages.

Imports `rules` and `bot.review`; never `bot.cli`.
"""
