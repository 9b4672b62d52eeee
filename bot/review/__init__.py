"""The pure review core: audited files, findings, diff and config in; the check run's output
and the review comments out (`outcome`); the diff's changed lines and which findings are on
them (`patch`); a finding's identity across pushes (`fingerprints`); Markdown text within
GitHub's limits (`markdown`).

No I/O: imports `rules` only, never `bot.app`, `bot.cli`, aiohttp or gidgethub.
"""
