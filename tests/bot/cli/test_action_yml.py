"""The GitHub Action (`action.yml`) run without GitHub: its `run:` steps in bash, in a
temporary git repository, with the event file and the variables Actions sets.

The action's install step really runs: `pip install "$GITHUB_ACTION_PATH"` from a copy of
this repository into a fresh virtualenv. Offline: the virtualenv sees this Python's
site-packages through a `.pth` file (the dependencies are installed already), and pip is told
by its own environment variables to use no index and no build isolation.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import site
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import REPO

ACTION = yaml.safe_load((REPO / "action.yml").read_text(encoding="utf-8"))
_EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
#: The shell GitHub runs for `shell: bash`.
BASH = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]
#: pip's own variables: no index (no network), no build isolation (setuptools is installed).
OFFLINE_PIP = {"PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0"}

CLEAN = "async def ok(session):\n    return await session.get(int, 1)\n"
OLD_BAD = "\n\nasync def old(session):\n    await session.commit()\n"
SPLIT = (
    "\n\nasync def split():\n"
    "    async with get_background_session() as first:\n        pass\n"
    "    async with get_background_session() as second:\n        pass\n"
)
BLANKET = "\n\nFLAG = 1  # txaudit: ignore\n"


def helpers(count: int) -> str:
    """`count` helpers that commit a borrowed session: one TX002 error each."""
    return "".join(
        f"\n\nasync def helper_{i}(session):\n    await session.commit()\n" for i in range(count)
    )


def git(root: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", "-c", "user.name=T", "-c", "user.email=t@example.com", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout.strip()


# --- the runner ------------------------------------------------------------------------


def _evaluate(template: str, inputs: Mapping[str, str], steps: Mapping[str, dict[str, str]]) -> str:
    """`${{ inputs.x }}` and `${{ steps.id.outputs.y }}`: all the expressions action.yml uses."""

    def one(match: re.Match[str]) -> str:
        expression = match[1]
        if expression.startswith("inputs."):
            return inputs[expression.removeprefix("inputs.")]
        parts = expression.split(".")
        if len(parts) == 4 and parts[0] == "steps" and parts[2] == "outputs":
            return steps.get(parts[1], {}).get(parts[3], "")
        raise AssertionError(
            f"action.yml uses an expression the runner does not know: {expression}"
        )

    return _EXPRESSION.sub(one, str(template))


def _read_outputs(path: Path) -> dict[str, str]:
    """A `GITHUB_OUTPUT` file: `name=value` lines and `name<<DELIMITER` blocks."""
    values: dict[str, str] = {}
    lines = iter(path.read_text(encoding="utf-8").splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            block = []
            for item in lines:
                if item == delimiter:
                    break
                block.append(item)
            values[name] = "\n".join(block)
        elif "=" in line:
            name, value = line.split("=", 1)
            values[name] = value
    return values


@dataclass
class ActionRun:
    status: int
    stdout: str
    stderr: str
    summary: str
    outputs: dict[str, str]

    @property
    def commands(self) -> list[str]:
        return self.stdout.splitlines()


@dataclass(frozen=True)
class Runner:
    """Runs action.yml's steps the way a composite action runs them (first failure stops)."""

    action_path: Path
    venv: Path

    def run(
        self,
        workspace: Path,
        event_name: str,
        event: dict[str, Any],
        *,
        inputs: Mapping[str, str] | None = None,
        only: str | None = None,
        skip: tuple[str, ...] = ("Install txaudit",),
    ) -> ActionRun:
        temp = workspace.parent / f"runner-temp-{os.urandom(4).hex()}"
        temp.mkdir()
        event_path = temp / "event.json"
        event_path.write_text(json.dumps(event), encoding="utf-8")
        summary_path = temp / "step_summary.md"
        env = {
            "PATH": f"{self.venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
            "HOME": os.environ.get("HOME", str(temp)),
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": event_name,
            "GITHUB_EVENT_PATH": str(event_path),
            "GITHUB_WORKSPACE": str(workspace),
            "GITHUB_STEP_SUMMARY": str(summary_path),
            "GITHUB_ACTION_PATH": str(self.action_path),
            "GITHUB_REPOSITORY": "acme/shop",
            "GITHUB_SERVER_URL": "https://github.com",
            "RUNNER_TEMP": str(temp),
            **OFFLINE_PIP,
        }
        values = {name: str(spec.get("default", "")) for name, spec in ACTION["inputs"].items()}
        values.update(inputs or {})
        step_outputs: dict[str, dict[str, str]] = {}
        status, stdout, stderr = 0, "", ""
        for number, step in enumerate(ACTION["runs"]["steps"]):
            if "uses" in step:  # setup-python: the virtualenv's Python plays its part
                assert step["uses"].startswith("actions/setup-python@")
                continue
            if step["name"] in skip or (only is not None and step["name"] != only):
                continue
            assert "${{" not in step["run"], "inputs reach scripts through env:, never inline"
            output_path = temp / f"output_{number}"
            output_path.touch()
            script = temp / f"step_{number}.sh"
            script.write_text(step["run"], encoding="utf-8")
            step_env = {
                k: _evaluate(v, values, step_outputs) for k, v in step.get("env", {}).items()
            }
            proc = subprocess.run(
                [*BASH, str(script)],
                cwd=workspace,
                env={**env, **step_env, "GITHUB_OUTPUT": str(output_path)},
                capture_output=True,
                text=True,
                timeout=300,
            )
            stdout += proc.stdout
            stderr += proc.stderr
            if "id" in step:
                step_outputs[step["id"]] = _read_outputs(output_path)
            if proc.returncode != 0:
                status = proc.returncode
                break
        outputs = {
            name: _evaluate(spec["value"], values, step_outputs)
            for name, spec in ACTION["outputs"].items()
        }
        summary = summary_path.read_text(encoding="utf-8") if summary_path.exists() else ""
        return ActionRun(status, stdout, stderr, summary, outputs)


def _see_our_site_packages(venv: Path) -> None:
    """Let `venv` import what this Python has installed (also when this Python is itself a
    virtualenv, as in CI, where `--system-site-packages` would show the base's instead)."""
    (target,) = (venv / "lib").glob("python*/site-packages")
    (target / "_txaudit_test_parent.pth").write_text(
        "".join(f"{path}\n" for path in site.getsitepackages()), encoding="utf-8"
    )


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Runner:
    """The action's checkout (a copy of this repository) installed by its own install step."""
    base = tmp_path_factory.mktemp("action")
    action_path = base / "txaudit-action"
    shutil.copytree(
        REPO,
        action_path,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "__pycache__", "*.egg-info", "build", ".*_cache", ".hypothesis"
        ),
    )
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    _see_our_site_packages(venv)
    runner = Runner(action_path, venv)
    workspace = base / "workspace"
    workspace.mkdir()
    installed = runner.run(workspace, "pull_request", {}, only="Install txaudit", skip=())
    assert installed.status == 0, installed.stderr
    assert (venv / "bin" / "txaudit").exists()
    where = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import bot.cli.action; print(bot.cli.action.__file__)",
        ],
        cwd=workspace,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(venv)), where  # the action's own copy, not another install
    return runner


# --- scenarios -------------------------------------------------------------------------


@dataclass(frozen=True)
class Repo:
    root: Path
    base: str
    head: str


def make_repo(root: Path, head_files: Mapping[str, str]) -> Repo:
    """`main` with a guide config and an old TX002 in app/jobs.py; `feature` writes `head_files`."""
    root.mkdir(parents=True)
    files = {
        ".github/txaudit.yml": "guides:\n  transaction: {path: Docs/tx.md}\n",
        "app/__init__.py": "",
        "app/jobs.py": CLEAN + OLD_BAD,
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "base")
    base = git(root, "rev-parse", "HEAD")
    git(root, "checkout", "-q", "-b", "feature")
    for rel, text in head_files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "feature")
    return Repo(root, base, git(root, "rev-parse", "HEAD"))


def pull_request_event(repo: Repo, number: int = 7) -> dict[str, Any]:
    return {
        "action": "synchronize",
        "number": number,
        "pull_request": {
            "number": number,
            "base": {"ref": "main", "sha": repo.base},
            "head": {"ref": "feature", "sha": repo.head},
        },
        "repository": {"full_name": "acme/shop", "default_branch": "main"},
    }


def test_pull_request_annotations_summary_outputs_and_failure(
    runner: Runner, tmp_path: Path
) -> None:
    repo = make_repo(
        tmp_path / "workspace",
        {
            "app/helpers.py": helpers(12) + SPLIT + BLANKET,
            "app/jobs.py": CLEAN + OLD_BAD + "\n\nLIMIT = 10\n",  # touched, old finding stays
        },
    )
    run = runner.run(repo.root, "pull_request", pull_request_event(repo))

    assert run.status == 1, run.stderr  # errors on added lines, fail_on: error
    commands = run.commands
    assert all(line.startswith("::") for line in commands)  # stdout: workflow commands only
    errors = [c for c in commands if c.startswith("::error ")]
    assert len(errors) == 10  # GitHub shows 10 errors per step: the loudest go first
    assert errors[0].startswith("::error file=app/helpers.py,line=4,col=11,")
    assert "title=TX002 borrowed-session-commit::" in errors[0]
    guide = f"https://github.com/acme/shop/blob/{repo.base}/Docs/tx.md#"
    assert f"(guide: {guide}" in errors[0]
    assert commands[10].startswith("::warning file=app/helpers.py,") and "TX004" in commands[10]
    assert commands[11].startswith("::notice file=app/helpers.py,") and "TXA00" in commands[11]
    assert commands[12].startswith("::notice title=txaudit::2 more findings are not annotated")
    assert "listed in the job summary" in commands[12]
    assert len(commands) == 13

    assert run.summary.startswith("## txaudit: 12 errors, 1 warning, 1 notice in 1 file\n")
    assert f"against base `{repo.base[:12]}`" in run.summary
    row = r"\| TX002 \| borrowed-session-commit \| error \| 12 \| 1 \| \[transaction guide: [^]]+\]"
    assert re.search(row + rf"\({re.escape(guide)}", run.summary), run.summary
    assert "set the action's `filter: file` to list them" in run.summary
    assert "/txaudit full" not in run.summary
    assert "Audited pull request #7 (base: " in run.summary
    assert "2 of 14 findings are not annotated" in run.summary
    for i in range(12):  # every finding, also the two without an annotation
        assert f"`app/helpers.py:{4 + 4 * i}` **TX002**" in run.summary
    assert run.outputs == {"findings": "14", "sarif-file": "", "conclusion": "failure"}
    assert "conclusion: failure" in run.stderr


def test_clean_pull_request_passes_quietly(runner: Runner, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "workspace", {"app/clean.py": CLEAN})
    run = runner.run(repo.root, "pull_request", pull_request_event(repo))
    assert run.status == 0, run.stderr
    assert run.stdout == ""
    assert run.summary.startswith("## txaudit: No findings in 1 file\n")
    assert "No findings." in run.summary
    assert run.outputs == {"findings": "0", "sarif-file": "", "conclusion": "success"}


def test_fail_on_and_filter_inputs(runner: Runner, tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path / "workspace", {"app/jobs.py": CLEAN + OLD_BAD + SPLIT}
    )  # adds a TX004 warning to a file with an old TX002 error
    event = pull_request_event(repo)
    default = runner.run(repo.root, "pull_request", event)
    assert (default.status, default.outputs["findings"]) == (0, "1")
    assert default.commands == [default.commands[0]]
    assert default.commands[0].startswith("::warning file=app/jobs.py,line=12,")

    strict = runner.run(repo.root, "pull_request", event, inputs={"fail-on": "warning"})
    assert (strict.status, strict.outputs["conclusion"]) == (1, "failure")

    whole = runner.run(repo.root, "pull_request", event, inputs={"filter": "file"})
    assert (whole.status, whole.outputs["findings"]) == (1, "2")  # the old TX002 counts now
    assert whole.commands[0].startswith("::error file=app/jobs.py,line=6,")
    assert "every finding in the touched files" in whole.summary


def test_push_in_a_subfolder_with_sarif(runner: Runner, tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    repo = make_repo(workspace / "src", {"app/helpers.py": helpers(2)})
    event = {
        "ref": "refs/heads/feature",
        "before": repo.base,
        "after": repo.head,
        "repository": {"full_name": "acme/shop", "default_branch": "main"},
    }
    run = runner.run(
        workspace,
        "push",
        event,
        inputs={"sarif": "true", "fail-on": "never", "working-directory": "src"},
    )
    assert run.status == 0, run.stderr  # fail-on: never
    assert [c.split(",")[0] for c in run.commands] == ["::error file=src/app/helpers.py"] * 2
    assert "Audited push to feature " in run.summary
    sarif_file = Path(run.outputs["sarif-file"])
    assert sarif_file.name == "txaudit.sarif" and sarif_file.parent.name.startswith("runner-temp")
    sarif = json.loads(sarif_file.read_text(encoding="utf-8"))
    results = sarif["runs"][0]["results"]
    assert [
        (r["ruleId"], r["locations"][0]["physicalLocation"]["region"]["startLine"]) for r in results
    ] == [
        ("TX002", 4),
        ("TX002", 8),
    ]
    assert run.outputs["findings"] == "2"


def test_push_of_a_new_branch_audits_against_the_default_branch(
    runner: Runner, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "workspace", {"app/helpers.py": helpers(1)})
    git(repo.root, "update-ref", "refs/remotes/origin/main", repo.base)
    event = {
        "ref": "refs/heads/feature",
        "created": True,
        "before": "0" * 40,
        "after": repo.head,
        "repository": {"full_name": "acme/shop", "default_branch": "main"},
    }
    run = runner.run(repo.root, "push", event)
    assert run.status == 1
    assert run.outputs["findings"] == "1"
    assert "Audited new branch feature (base: origin/main)" in run.summary


def test_a_bad_input_is_refused(runner: Runner, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "workspace", {"app/clean.py": CLEAN})
    run = runner.run(repo.root, "pull_request", pull_request_event(repo), inputs={"sarif": "yes"})
    assert run.status == 2
    assert run.stdout.startswith("::error title=txaudit::input sarif must be true or false")
    bad = runner.run(
        repo.root, "pull_request", pull_request_event(repo), inputs={"filter": "lines"}
    )
    assert bad.status == 2
    assert "argument --filter: invalid choice: 'lines'" in bad.stderr
