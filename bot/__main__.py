"""`python -m bot`: run the GitHub App webhook server."""

from bot.app.server import run

if __name__ == "__main__":
    run()
