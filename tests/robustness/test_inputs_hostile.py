"""Untrusted pull request content: every odd file gives a finding, a notice or a named skip,
and the rest of the pull request is still audited. The app only parses; it never runs code."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from app_helpers import Harness, helper_source
from fakegithub import FakeGitHub, Submodule, Symlink

GOOD = "app/jobs.py"  # one TX002 error: proves the rest of the pull request is audited
LATIN1 = "x = 'caf\xe9'\n"

HOSTILE: dict[str, Any] = {
    "app/syntax.py": "def broken(:\n    pass\n",
    "app/py2.py": "print 'hello'\nexec 'x = 1'\n",
    "app/latin1_nocookie.py": LATIN1.encode("latin-1"),
    "app/latin1_cookie.py": b"# -*- coding: latin-1 -*-\n"
    + (helper_source(1) + LATIN1).encode("latin-1"),
    "app/bad_cookie.py": b"# -*- coding: klingon -*-\nx = 1\n",
    "app/nul.py": b"x = 1\x00\ny = 2\n",
    "app/huge.py": b"x = 1\n" * (10 * 1024 * 1024 // 6),  # 10 MB
    "app/deep_parens.py": "x = " + "(" * 5000 + "1" + ")" * 5000 + "\n",
    "app/deep_sum.py": "x = " + "+".join(["1"] * 100_000) + "\n",
    "app/deep_calls.py": "x = f" + "()" * 50_000 + "\n",
    "app/deep_blocks.py": "".join(" " * i + "if x:\n" for i in range(120)) + " " * 120 + "pass\n",
    "app/template.py": "{% for row in rows %}\n  {{ row }}\n{% endfor %}\n",
    "app/link.py": Symlink("jobs.py"),
    "vendor/lib": Submodule("a" * 40),
    "app/lib.py": Submodule("b" * 40),
    "app/omitted.py": helper_source(1, start=10),
}


def make_pr(fake: FakeGitHub, files: dict[str, Any], base: dict[str, Any] | None = None) -> Any:
    repo = fake.create_repo("acme/payments", files=base or {"README.md": "hi\n"})
    repo.push("feature", files)
    return repo, repo.open_pull(head="feature", user="alice")


async def audit(harness: Harness, pr: Any) -> Any:
    response = await harness.deliver("pull_request", harness.pr_event("opened", pr))
    assert response.status == 202
    [run] = harness.fake.runs_for(pr.head_sha)
    assert run.status == "completed"
    return run


async def test_every_hostile_file_is_named_and_the_rest_is_audited(app_client: Harness) -> None:
    fake = app_client.fake
    base = {
        "README.md": "hi\n",
        "app/gone.py": "GONE = True\n",
        "app/old_name.py": helper_source(3, start=30),
    }
    files = {**HOSTILE, GOOD: helper_source(1), "app/gone.py": None, "app/old_name.py": None}
    files["app/new_name.py"] = helper_source(4, start=30)  # renamed, one helper added
    _, pr = make_pr(fake, files, base)
    pr.omit_patch.add("app/omitted.py")
    started = time.monotonic()
    run = await audit(app_client, pr)
    elapsed = time.monotonic() - started
    summary = run.output["summary"]

    # The ordinary file, the renamed one and the one without a patch are audited.
    annotated = {a["path"] for a in run.annotations if a["annotation_level"] == "failure"}
    assert {GOOD, "app/new_name.py", "app/omitted.py", "app/latin1_cookie.py"} <= annotated
    assert run.conclusion == "failure"
    commented = {c.path for c in fake.review_comments_of(pr)}
    assert {GOOD, "app/new_name.py", "app/latin1_cookie.py"} <= commented
    assert "app/omitted.py" not in commented  # no diff to anchor to
    assert "### Audited whole (GitHub sent no diff)" in summary and "app/omitted.py" in summary

    # Files that do not parse or decode: a TXA02 notice each, on the check run.
    notices = {a["path"]: a["message"] for a in run.annotations if a["title"].startswith("TXA02")}
    for path in (
        "app/syntax.py",
        "app/py2.py",
        "app/latin1_nocookie.py",
        "app/bad_cookie.py",
        "app/nul.py",
        "app/deep_parens.py",
        "app/deep_sum.py",
        "app/deep_calls.py",
        "app/deep_blocks.py",
        "app/template.py",
    ):
        assert path in notices, path
    assert "TXA02" in summary

    # Skips are named in the summary with the reason.
    skipped = summary.split("### Skipped", 1)[1]
    assert "`app/huge.py`: larger than 1 MB (10.0 MB)" in skipped
    assert "`app/link.py`: a symbolic link" in skipped
    assert "`app/lib.py`: a submodule; not audited" in skipped
    # The removed file is named too; the submodules are not Python files at all.
    assert "app/gone.py" in summary
    assert "vendor/lib" not in summary
    # The 10 MB blob was never downloaded (the tree says how large it is).
    huge_sha = pr.file("app/huge.py").sha
    blob_calls = fake.log.calls("GET /repos/{o}/{r}/git/blobs/{sha}")
    assert not any(r.path.endswith(huge_sha) for r in blob_calls)
    assert elapsed < 20


async def test_pure_rename_has_no_changed_lines(app_client: Harness) -> None:
    """GitHub sends no `patch` for a rename without changes: nothing was added, so the old
    findings are "already present", not new (and the check does not fail on them)."""
    fake = app_client.fake
    source = helper_source(2)
    _, pr = make_pr(fake, {"app/old.py": None, "app/new.py": source}, {"app/old.py": source})
    [entry] = pr.files()
    assert entry.status == "renamed" and entry.patch is None
    run = await audit(app_client, pr)
    assert run.conclusion == "success"
    assert run.annotations == [] and fake.reviews_of(pr) == []
    assert "Already present" in run.output["summary"]


async def test_mode_change_only_has_no_changed_lines(app_client: Harness) -> None:
    fake = app_client.fake
    source = helper_source(1)
    repo = fake.create_repo("acme/payments", files={GOOD: source})
    repo.commit({GOOD: source}, branch="feature", executable=[GOOD])
    pr = repo.open_pull(head="feature", user="alice")
    [entry] = pr.files()
    assert entry.status == "changed" and entry.patch is None
    run = await audit(app_client, pr)
    assert run.conclusion == "success" and run.annotations == []


async def test_a_file_github_cannot_serve_is_skipped_and_named(app_client: Harness) -> None:
    fake = app_client.fake
    _, pr = make_pr(fake, {GOOD: helper_source(1), "app/other.py": helper_source(1, start=5)})
    other_sha = pr.file("app/other.py").sha
    fake.faults.add(path=rf"/repos/acme/payments/git/blobs/{other_sha}", status=404, times=None)
    run = await audit(app_client, pr)
    assert run.conclusion == "failure"
    assert {a["path"] for a in run.annotations} == {GOOD}
    assert (
        "`app/other.py`: could not be read from GitHub (404); not audited" in run.output["summary"]
    )


async def test_pull_request_code_is_parsed_never_run(app_client: Harness, tmp_path: Path) -> None:
    """Files whose import (or execution) would write a marker file: audited, marker absent."""
    fake = app_client.fake
    marker = tmp_path / "pwned"
    payload = f"open({str(marker)!r}, 'w').write('ran')\n"
    files = {
        "app/__init__.py": payload,
        "app/evil.py": payload + f"import os\nos.system('touch ' + {str(marker)!r})\n",
        "conftest.py": payload,
        "setup.py": payload,
        "sitecustomize.py": payload,
        "app/jobs.py": "from app.evil import helper\n\n" + helper_source(1),
        "app/__main__.py": payload,
    }
    _, pr = make_pr(fake, files)
    run = await audit(app_client, pr)
    assert run.conclusion == "failure"  # app/jobs.py's finding
    assert not marker.exists()


@pytest.mark.parametrize("count", [3000])
async def test_three_thousand_changed_files(app_client: Harness, count: int) -> None:
    fake = app_client.fake
    files = {f"pkg/mod_{i:04}.py": f"VALUE_{i} = {i}\n" for i in range(count - 1)}
    files[GOOD] = helper_source(1)
    _, pr = make_pr(fake, files)
    started = time.monotonic()
    run = await audit(app_client, pr)
    elapsed = time.monotonic() - started
    assert run.conclusion == "failure" and [a["path"] for a in run.annotations] == [GOOD]
    assert run.output["title"] == "1 error in 1 file"
    assert f"Audited {count} Python files" in run.output["summary"]
    calls = fake.log.by_route()
    assert calls["GET /repos/{o}/{r}/pulls/{n}/files"] == count // 100
    print(f"\n{count} files: {len(fake.log)} GitHub calls, {elapsed:.1f} s\n{fake.log.summary()}")


async def test_more_files_than_github_lists_says_so(app_client: Harness) -> None:
    fake = app_client.fake
    files = {f"pkg/mod_{i:04}.py": f"VALUE_{i} = {i}\n" for i in range(3005)}
    _, pr = make_pr(fake, files)
    run = await audit(app_client, pr)
    assert "GitHub lists only 3000 of the 3005 changed files" in run.output["summary"]
