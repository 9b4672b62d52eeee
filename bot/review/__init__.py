"""The pure review core: audited files, findings, diff and config in; the check run's output
and the review comments out (`outcome`), and the diff's changed lines (`patch`).

No I/O: imports `rules` only, never `bot.app`, `bot.cli`, aiohttp or gidgethub.
"""
