"""Settings: read once from the environment; refuse to start with a one-line reason."""

from __future__ import annotations

import subprocess
import sys

import pytest
from fakegithub.state import cached_private_key_pem

from bot.app.settings import AppSettings, SettingsError

BAD_PEM = "-----BEGIN RSA PRIVATE KEY-----\nnope\n-----END RSA PRIVATE KEY-----"


def env(**overrides: str) -> dict[str, str]:
    base = {
        "GITHUB_APP_ID": "42",
        "GITHUB_PRIVATE_KEY": cached_private_key_pem(),
        "GITHUB_WEBHOOK_SECRET": "s3cret",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v != "<unset>"}


def test_defaults() -> None:
    settings = AppSettings.from_env(env())
    assert settings.app_id == "42"
    assert settings.api_url == "https://api.github.com"
    assert settings.port == 3000
    assert settings.public_url is None
    assert settings.intake_processes == 2  # `txaudit serve` answers webhooks in 2 processes
    assert "s3cret" not in repr(settings) and "PRIVATE" not in repr(settings)


def test_ghes_and_port() -> None:
    settings = AppSettings.from_env(
        env(
            GITHUB_API_URL="https://ghe.example.com/api/v3/",
            PORT="8080",
            PUBLIC_URL="https://tx.example.com/",
        )
    )
    assert settings.api_url == "https://ghe.example.com/api/v3"
    assert settings.port == 8080
    assert settings.public_url == "https://tx.example.com"


def test_intake_processes() -> None:
    assert AppSettings.from_env(env(TXAUDIT_INTAKE_PROCESSES="0")).intake_processes == 0
    assert AppSettings.from_env(env(TXAUDIT_INTAKE_PROCESSES="4")).intake_processes == 4
    with pytest.raises(SettingsError, match="TXAUDIT_INTAKE_PROCESSES"):
        AppSettings.from_env(env(TXAUDIT_INTAKE_PROCESSES="-1"))


def test_key_from_path_and_escaped_newlines(tmp_path) -> None:
    pem = cached_private_key_pem()
    key_file = tmp_path / "app.pem"
    key_file.write_text(pem)
    from_path = AppSettings.from_env(
        env(GITHUB_PRIVATE_KEY="<unset>", GITHUB_PRIVATE_KEY_PATH=str(key_file))
    )
    assert from_path.private_key == pem
    squeezed = AppSettings.from_env(env(GITHUB_PRIVATE_KEY=pem.replace("\n", "\\n")))
    assert squeezed.private_key.strip() == pem.strip()


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"GITHUB_APP_ID": "<unset>"}, "GITHUB_APP_ID"),
        ({"GITHUB_WEBHOOK_SECRET": "<unset>"}, "GITHUB_WEBHOOK_SECRET"),
        ({"GITHUB_PRIVATE_KEY": "<unset>"}, "GITHUB_PRIVATE_KEY"),
        (
            {"GITHUB_PRIVATE_KEY": BAD_PEM},
            "does not parse",
        ),
        (
            {"GITHUB_PRIVATE_KEY": "<unset>", "GITHUB_PRIVATE_KEY_PATH": "/nonexistent/key.pem"},
            "GITHUB_PRIVATE_KEY_PATH",
        ),
        ({"PORT": "http"}, "PORT"),
        ({"GITHUB_API_URL": "api.github.com"}, "GITHUB_API_URL"),
    ],
)
def test_refuses(overrides: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError) as info:
        AppSettings.from_env(env(**overrides))
    message = str(info.value)
    assert named in message and "\n" not in message


def test_server_refuses_to_start_with_one_line_and_exit_code_2() -> None:
    clean = {"PATH": "/usr/bin:/bin", "GITHUB_APP_ID": "42", "GITHUB_WEBHOOK_SECRET": "x"}
    proc = subprocess.run(
        [sys.executable, "-m", "bot"], env=clean, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "GITHUB_PRIVATE_KEY" in lines[0]
    assert "Traceback" not in proc.stderr
