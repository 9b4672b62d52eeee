"""txaudit's GitHub App, command line and GitHub I/O."""

__version__ = "0.1.0"
