"""txaudit outside the engine: `bot.review` (the pure review core), `bot.app` (the GitHub
App) and `bot.cli` (the command line). `rules` never imports from here.
"""

__version__ = "0.1.0"
