"""`txaudit check`: discovery, config, exit codes, select/ignore, formats, --fix, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import local
from bot.cli.main import main

from .conftest import Tree, is_root

BAD = "async def f(session):\n    await session.commit()\n"
WARN = 'Q = "SELECT id FROM jobs"\n'
CLEAN = "x = 1\n"

pytestmark = pytest.mark.usefixtures("fake_engine")


def _json(capsys: pytest.CaptureFixture[str]) -> dict:
    return json.loads(capsys.readouterr().out)


def test_exit_1_on_error_and_text_output(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    tree({"app/jobs.py": BAD, "app/ok.py": CLEAN})
    assert main(["check"]) == 1
    out = capsys.readouterr().out
    assert "app/jobs.py:2:18: TX002 [error] borrowed-session-commit here." in out
    assert out.splitlines()[-1] == "Found 1 finding (1 error) in 2 files."


def test_exit_0_when_clean(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    tree({"app/ok.py": CLEAN})
    assert main(["check", "app"]) == 0
    assert "All checks passed!" in capsys.readouterr().out


def test_warnings_do_not_fail_unless_asked(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    tree({"app/q.py": WARN})
    assert main(["check"]) == 0
    assert main(["check", "--fail-on", "warning"]) == 1
    tree({"app/jobs.py": BAD})
    assert main(["check", "--fail-on", "never"]) == 0
    tree({".github/txaudit.yml": "fail_on: warning\n", "app/jobs.py": CLEAN})
    assert main(["check"]) == 1


def test_select_and_ignore(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    tree({"app/jobs.py": BAD, "app/q.py": WARN})
    assert main(["check", "--format", "json", "--select", "orm003"]) == 0
    assert _json(capsys)["summary"]["by_rule"] == {"ORM003": 1}
    assert main(["check", "--format", "json", "--ignore", "TX002,ORM"]) == 0
    assert _json(capsys)["summary"]["findings"] == 0
    assert main(["check", "--format", "json", "--select", "TX"]) == 1
    assert _json(capsys)["summary"]["by_rule"] == {"TX002": 1}


def test_unknown_rule_ids_are_usage_errors(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    tree({"a.py": CLEAN})
    assert main(["check", "--select", "TX001,TX9,FOO"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("txaudit: error: --select: unknown rule IDs TX9, FOO")
    assert "\n" not in err
    assert main(["check", "--ignore", "ORM9"]) == 2
    assert "--ignore: unknown rule ID ORM9" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("rules:\n  TX9: error\n", "txaudit: error: .github/txaudit.yml: rules.TX9: unknown rule"),
        ("rules: [1, 2\n", "txaudit: error: .github/txaudit.yml: not valid YAML"),
        ("fail_on: 3\n", "txaudit: error: .github/txaudit.yml: fail_on must be one of"),
        ("paths:\n  include: app\n", "paths.include must be a list of strings"),
        ("colour: red\n", "unknown key 'colour'"),
    ],
)
def test_config_errors_name_the_key(
    tree: Tree, capsys: pytest.CaptureFixture[str], content: str, expected: str
) -> None:
    tree({".github/txaudit.yml": content, "a.py": CLEAN})
    assert main(["check"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert expected in captured.err
    assert len(captured.err.strip().splitlines()) == 1


def test_config_option(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    tree({"conf.yml": "rules: {TX002: warning}\n", "a.py": BAD})
    assert main(["check", "--config", "conf.yml"]) == 0
    assert "TX002 [warning]" in capsys.readouterr().out
    assert main(["check", "--config", "missing.yml"]) == 2
    assert capsys.readouterr().err.strip() == "txaudit: error: missing.yml: config file not found"


def test_pyproject_config(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    tree({"pyproject.toml": "[tool.txaudit]\nrules = {TX002 = 'off'}\n", "a.py": BAD})
    assert main(["check"]) == 0


def test_missing_path(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    tree({"a.py": CLEAN})
    assert main(["check", "a.py", "nope/"]) == 2
    assert capsys.readouterr().err.strip() == "txaudit: error: nope/: no such file or directory"


def test_folder_without_python(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    tree({"docs/readme.md": "# hi\n"})
    assert main(["check", "docs"]) == 0
    captured = capsys.readouterr()
    assert "no Python files to audit in docs" in captured.err
    assert main(["check", "docs", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"] == {
        "files": 0, "findings": 0, "by_rule": {},
    }  # fmt: skip


def test_discovery_skips_hidden_venvs_and_excluded(
    tree: Tree, capsys: pytest.CaptureFixture[str]
) -> None:
    tree(
        {
            "app/a.py": BAD,
            ".hidden/b.py": BAD,
            ".venv/lib/c.py": BAD,
            "myenv/pyvenv.cfg": "home = /usr\n",
            "myenv/lib/d.py": BAD,
            "node_modules/e.py": BAD,
            "tests/test_a.py": BAD,
            "app/migrations/0001.py": BAD,
            "app/conftest.py": BAD,
            "app/notes.txt": BAD,
        }
    )
    assert main(["check", "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert [f["path"] for f in doc["findings"]] == ["app/a.py"]
    assert doc["summary"]["files"] == 1


def test_config_include_exclude_relative_to_project_root(
    tree: Tree, capsys: pytest.CaptureFixture[str]
) -> None:
    tree(
        {
            "svc/.github/txaudit.yml": 'paths:\n  include: ["app/**/*.py"]\n'
            '  exclude: ["app/legacy/**"]\n',
            "svc/app/a.py": BAD,
            "svc/app/legacy/b.py": BAD,
            "svc/scripts/c.py": BAD,
        }
    )
    assert main(["check", "svc", "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert [f["path"] for f in doc["findings"]] == ["svc/app/a.py"]
    # A file named on the command line is audited even when excluded (like ruff).
    assert main(["check", "svc/app/legacy/b.py", "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out)["findings"][0]["path"] == "svc/app/legacy/b.py"


def test_paths_relative_to_cwd(tree: Tree, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    root = tree({"svc/app/a.py": BAD})
    monkeypatch.chdir(root / "svc" / "app")
    assert main(["check", "../app", "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out)["findings"][0]["path"] == "a.py"
    assert main(["check", str(root / "svc"), "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out)["findings"][0]["path"] == "a.py"


def test_parallel_matches_in_process(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    tree({f"pkg/m{i:03}.py": BAD if i % 3 == 0 else WARN for i in range(80)})
    assert main(["check", "--format", "json", "--jobs", "2"]) == 1
    parallel = capsys.readouterr().out
    assert main(["check", "--format", "json", "--jobs", "1"]) == 1
    assert capsys.readouterr().out == parallel
    doc = json.loads(parallel)
    assert doc["summary"]["files"] == 80
    assert doc["summary"]["by_rule"] == {"TX002": 27, "ORM003": 53}
    assert [f["path"] for f in doc["findings"]] == sorted(f["path"] for f in doc["findings"])


def test_unreadable_file_is_an_error_entry(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    root = tree({"app/a.py": BAD, "app/b.py": CLEAN})
    (root / "app" / "gone.py").symlink_to(root / "app" / "missing-target.py")
    locked = root / "app" / "locked.py"
    locked.write_text(BAD)
    locked.chmod(0)
    try:
        assert main(["check", "--format", "json"]) == 1
        doc = json.loads(capsys.readouterr().out)
    finally:
        locked.chmod(0o644)
    errors = {e["path"]: e["message"] for e in doc["errors"]}
    assert errors["app/gone.py"].startswith("cannot read:")
    if not is_root():
        assert "Permission denied" in errors["app/locked.py"]
    assert [f["path"] for f in doc["findings"]][0] == "app/a.py"


def test_fix_applies_autofixes_and_reports_the_rest(
    tree: Tree, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tree(
        {"job.py": "async def f():\n    async with s.begin(): pass\n    await session.commit()\n"}
    )
    assert main(["check", "--fix"]) == 1
    out = capsys.readouterr().out
    assert "TX001" not in out and "TX002" in out
    assert "Fixed 1 finding." in out
    assert "s.begin" not in (root / "job.py").read_text()


def test_engine_crash_is_a_file_error_not_a_traceback(
    tree: Tree, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    tree({"a.py": CLEAN, "b.py": BAD})

    def broken(source: bytes, path: str, config: object, *, project: object = None):
        if path == "a.py":
            raise RecursionError("maximum recursion depth exceeded")
        from .fake_engine import fake_audit_source

        return fake_audit_source(source, path, config, project=project)  # type: ignore[arg-type]

    monkeypatch.setattr(local, "_engine", lambda: broken)
    assert main(["check", "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    message = "internal error: RecursionError: maximum recursion depth exceeded"
    assert doc["errors"] == [{"path": "a.py", "message": message}]
    assert doc["findings"][0]["path"] == "b.py"


def test_unexpected_exception_is_one_line(
    tree: Tree, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    tree({"a.py": CLEAN})

    def boom(*args: object, **kwargs: object) -> None:
        raise KeyError("surprise")

    monkeypatch.setattr(local, "discover", boom)
    assert main(["check"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        "txaudit: error: internal error: KeyError: 'surprise' (set TXAUDIT_DEBUG=1 for a traceback)"
    )
    monkeypatch.setenv("TXAUDIT_DEBUG", "1")
    with pytest.raises(KeyError):
        main(["check"])


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "required" in capsys.readouterr().err
    assert main(["check", "--format", "xml"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("txaudit: error: argument --format: invalid choice: 'xml'")
    assert len(err.strip().splitlines()) == 1
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("txaudit ")


# --- bad input through the real engine ---------------------------------------------------


@pytest.mark.usefixtures("fake_engine")
@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("empty.py", b""),
        ("nul.py", b"x = 1\n\x00\x00y = 2\n"),
        ("py2.py", b'print "hello"\nexec "x = 1"\n'),
        ("latin1.py", b"# -*- coding: latin-1 -*-\ns = '\xe9t\xe9'\n"),
        ("badutf8.py", b"s = '\xff\xfe'\n"),
        ("deep.py", b"x = " + b"(" * 3000 + b"1" + b")" * 3000 + b"\n"),
        ("deeplist.py", b"x = " + b"[" * 500 + b"]" * 500 + b"\n"),
        ("crlf.py", b"async def f(session):\r\n    await session.commit()\r\n"),
    ],
)
def test_bad_input_real_engine(
    tree: Tree,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    content: bytes,
) -> None:
    from rules.engine import audit_source

    monkeypatch.setattr(local, "_engine", lambda: audit_source)
    tree({name: content, "other.py": BAD})
    code = main(["check", "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1  # the other file is still audited
    assert doc["summary"]["files"] == 2
    bad = [f for f in doc["findings"] if f["path"] == name]
    assert all(f["rule"] in ("TXA02", "TX002") for f in bad), bad
    assert [f["rule"] for f in doc["findings"] if f["path"] == "other.py"] == ["TX002"]
    assert not [e for e in doc["errors"] if "internal error" in e["message"]], doc["errors"]


def test_big_generated_file_real_engine(
    tree: Tree, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rules.engine import audit_source

    monkeypatch.setattr(local, "_engine", lambda: audit_source)
    row = b"    (%d, 'sitemap-%d.example.com', 'https://example.com/sitemap.xml', 0.5),\n"
    body = b"".join(row % (i, i) for i in range(70_000))
    tree({"generated.py": b"ROWS = [\n" + body + b"]\n", "other.py": BAD})
    assert Path("generated.py").stat().st_size > 5_000_000
    assert main(["check", "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"]["files"] == 2
    assert [f["path"] for f in doc["findings"] if f["rule"] != "TXA02"] == ["other.py"]
