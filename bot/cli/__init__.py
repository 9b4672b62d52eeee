"""The command line: `txaudit check`, `diff`, `report`, `rules`, `serve`.

`main` (in `main.py`) parses the arguments; `local` reads files and git diffs from disk,
`output` renders text/JSON/SARIF/GitHub formats, `report` writes the Markdown audit report.
Imports `rules` and `bot.review`; never `bot.app`, except `serve`, which starts the app.
"""

from bot.cli.main import main

__all__ = ["main"]
