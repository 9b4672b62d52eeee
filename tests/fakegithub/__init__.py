"""A stateful fake of GitHub's REST API (a real aiohttp server) for txaudit's tests.

Start with the ``fake_github`` fixture from ``tests/conftest.py``, or::

    fake = FakeGitHub()
    url = await fake.start()          # outside pytest (e.g. a benchmark)

See ``FakeGitHub`` (server.py) for the HTTP side and ``GitHubState`` (state.py) for helpers.
"""

from .faults import Fault, FaultInjector
from .gitdata import Commit, FileDiff, Submodule, Symlink, blob_sha
from .log import RequestLog, RequestRecord
from .server import ApiError, FakeGitHub
from .state import (
    App,
    CheckRun,
    Installation,
    Issue,
    IssueComment,
    PullRequest,
    Reaction,
    Repo,
    Review,
    ReviewComment,
    Token,
)

__all__ = [
    "ApiError",
    "App",
    "CheckRun",
    "Commit",
    "FakeGitHub",
    "Fault",
    "FaultInjector",
    "FileDiff",
    "Installation",
    "Issue",
    "IssueComment",
    "PullRequest",
    "Reaction",
    "Repo",
    "RequestLog",
    "RequestRecord",
    "Review",
    "ReviewComment",
    "Submodule",
    "Symlink",
    "Token",
    "blob_sha",
]
