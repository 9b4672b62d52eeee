"""Tests of the fake GitHub itself, driven over HTTP by gidgethub 6 as the app will drive it."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import cachetools
import gidgethub
import jwt
import pytest
from fakegithub import FakeGitHub, PullRequest, Repo, Submodule, Symlink, blob_sha
from fakegithub.state import generate_private_key_pem
from gidgethub import apps
from gidgethub.aiohttp import GitHubAPI

MODELS_V1 = "".join(f"line_{i} = {i}\n" for i in range(1, 41))
MODELS_V2 = MODELS_V1.replace("line_20 = 20\n", "line_20 = 'changed'\n")


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def installation_client(
    fake: FakeGitHub, session: aiohttp.ClientSession, **kwargs: Any
) -> GitHubAPI:
    """A gidgethub client holding a token minted over HTTP, like the app does."""
    app_gh = GitHubAPI(session, "txaudit-tests", base_url=fake.url)
    token = await apps.get_installation_access_token(
        app_gh,
        installation_id=str(fake.installation_id),
        app_id=str(fake.app_id),
        private_key=fake.private_key_pem,
    )
    return GitHubAPI(
        session, "txaudit-tests", oauth_token=token["token"], base_url=fake.url, **kwargs
    )


@pytest.fixture
async def gh(fake_github: FakeGitHub, session: aiohttp.ClientSession) -> GitHubAPI:
    return await installation_client(fake_github, session)


def make_pr(fake: FakeGitHub) -> tuple[Repo, PullRequest]:
    """acme/payments with models.py changed on line 20 and a new file."""
    repo = fake.create_repo(
        "acme/payments", files={"app/models.py": MODELS_V1, "README.md": "hello\n"}
    )
    repo.commit({"app/models.py": MODELS_V2, "app/new.py": "x = 1\ny = 2\n"}, branch="feature")
    return repo, repo.open_pull(head="feature", title="Tweak models")


# -- authentication --------------------------------------------------------------------------------


async def test_installation_token_flow_and_get_app(
    fake_github: FakeGitHub, session: aiohttp.ClientSession
) -> None:
    app_gh = GitHubAPI(
        session,
        "t",
        base_url=fake_github.url,
        app_id=str(fake_github.app_id),
        private_key=fake_github.private_key_pem,
    )
    app = await app_gh.getitem("/app")
    assert app["id"] == fake_github.app_id and app["slug"] == "txaudit"
    token = await apps.get_installation_access_token(
        app_gh,
        installation_id=str(fake_github.installation_id),
        app_id=str(fake_github.app_id),
        private_key=fake_github.private_key_pem,
    )
    assert token["token"].startswith("ghs_")
    assert set(token) >= {"token", "expires_at", "permissions", "repository_selection"}
    assert fake_github.log.calls("POST /app/installations/{id}/access_tokens")[0].status == 201


async def test_jwt_signed_with_another_key_is_rejected(
    fake_github: FakeGitHub, session: aiohttp.ClientSession
) -> None:
    app_gh = GitHubAPI(session, "t", base_url=fake_github.url)
    with pytest.raises(gidgethub.BadRequest) as exc:
        await apps.get_installation_access_token(
            app_gh,
            installation_id=str(fake_github.installation_id),
            app_id=str(fake_github.app_id),
            private_key=generate_private_key_pem(),
        )
    assert exc.value.status_code == 401
    assert not fake_github.tokens


@pytest.mark.parametrize(
    ("iat_offset", "exp_offset", "message"),
    [
        (-700, -60, "'Expiration time' claim ('exp') must be"),
        (-60, 600, "too far in the future"),
        (300, 500, "'Issued at' claim ('iat')"),
    ],
)
async def test_jwt_time_window(
    fake_github: FakeGitHub,
    session: aiohttp.ClientSession,
    iat_offset: int,
    exp_offset: int,
    message: str,
) -> None:
    now = int(time.time())
    claims = {"iat": now + iat_offset, "exp": now + exp_offset, "iss": fake_github.app_id}
    # PyJWS: PyJWT's encode refuses an integer iss, which GitHub accepts.
    token = jwt.PyJWS().encode(
        json.dumps(claims).encode(), fake_github.private_key_pem, algorithm="RS256"
    )
    app_gh = GitHubAPI(session, "t", base_url=fake_github.url)
    with pytest.raises(gidgethub.BadRequest) as exc:
        await app_gh.getitem("/app", jwt=token)
    assert exc.value.status_code == 401
    assert message in str(exc.value)


async def test_jwt_with_integer_iss_is_accepted(
    fake_github: FakeGitHub, session: aiohttp.ClientSession
) -> None:
    now = int(time.time())
    claims = {"iat": now - 60, "exp": now + 540, "iss": fake_github.app_id}
    token = jwt.PyJWS().encode(
        json.dumps(claims).encode(), fake_github.private_key_pem, algorithm="RS256"
    )
    app_gh = GitHubAPI(session, "t", base_url=fake_github.url)
    assert (await app_gh.getitem("/app", jwt=token))["id"] == fake_github.app_id


async def test_expired_and_revoked_tokens_get_401(fake_github: FakeGitHub, gh: GitHubAPI) -> None:
    fake_github.create_repo("acme/payments", files={"a.py": "x = 1\n"})
    assert (await gh.getitem("/repos/acme/payments"))["full_name"] == "acme/payments"
    fake_github.clock.advance(3601)  # installation tokens live one hour
    with pytest.raises(gidgethub.BadRequest) as exc:
        await gh.getitem("/repos/acme/payments")
    assert exc.value.status_code == 401 and "Bad credentials" in str(exc.value)
    assert "x-ratelimit-remaining" in exc.value.headers

    other = fake_github.mint_token()
    fake_github.revoke_token(other.token)
    with pytest.raises(gidgethub.BadRequest):
        await gh.getitem("/repos/acme/payments", oauth_token=other.token)
    assert fake_github.log.count(status=401) == 2


async def test_token_lifetime_is_settable(fake_github: FakeGitHub, gh: GitHubAPI) -> None:
    fake_github.token_lifetime = 5
    token = fake_github.mint_token()
    assert token.expires_at - fake_github.clock.now() <= 5


# -- pull requests and files -----------------------------------------------------------------------


async def test_pull_request_shape(fake_github: FakeGitHub, gh: GitHubAPI) -> None:
    repo, pr = make_pr(fake_github)
    data = await gh.getitem("/repos/acme/payments/pulls/{n}", {"n": pr.number})
    assert data["head"]["sha"] == pr.head_sha and data["head"]["ref"] == "feature"
    assert data["base"]["sha"] == repo.branches["main"]
    assert data["head"]["repo"]["full_name"] == "acme/payments"
    assert data["url"] == f"{fake_github.url}/repos/acme/payments/pulls/{pr.number}"
    assert data["html_url"] == f"https://github.com/acme/payments/pull/{pr.number}"
    assert data["draft"] is False and data["state"] == "open" and data["changed_files"] == 2


async def test_files_patch_and_blob_sha(fake_github: FakeGitHub, gh: GitHubAPI) -> None:
    _, pr = make_pr(fake_github)
    files = [f async for f in gh.getiter(f"/repos/acme/payments/pulls/{pr.number}/files")]
    by_name = {f["filename"]: f for f in files}
    models = by_name["app/models.py"]
    assert models["status"] == "modified"
    assert models["sha"] == blob_sha(MODELS_V2.encode())
    assert models["patch"].startswith("@@ -17,7 +17,7 @@")
    assert (models["additions"], models["deletions"], models["changes"]) == (1, 1, 2)
    assert by_name["app/new.py"]["status"] == "added"
    assert by_name["app/new.py"]["patch"] == "@@ -0,0 +1,2 @@\n+x = 1\n+y = 2"


async def test_files_pagination_beyond_100(fake_github: FakeGitHub, gh: GitHubAPI) -> None:
    repo = fake_github.create_repo("acme/big", files={"keep.py": "k = 1\n"})
    repo.commit({f"pkg/m{i:03}.py": f"v = {i}\n" for i in range(250)}, branch="many")
    pr = repo.open_pull(head="many")
    url = f"/repos/acme/big/pulls/{pr.number}/files"

    names = [f["filename"] async for f in gh.getiter(url + "?per_page=100")]
    assert len(names) == 250 and len(set(names)) == 250
    assert fake_github.log.count("GET /repos/{o}/{r}/pulls/{n}/files") == 3

    async with aiohttp.ClientSession() as raw:
        token = next(iter(fake_github.tokens))
        async with raw.get(
            fake_github.url + url, headers={"Authorization": f"token {token}"}
        ) as resp:
            assert len(await resp.json()) == 30  # default per_page
            assert 'rel="next"' in resp.headers["Link"] and 'rel="last"' in resp.headers["Link"]
            assert "page=9" in resp.headers["Link"]  # ceil(250 / 30)


async def test_files_capped_at_3000(fake_github: FakeGitHub, gh: GitHubAPI) -> None:
    repo = fake_github.create_repo("acme/huge", files={"keep.py": "k = 1\n"})
    repo.commit({f"f{i:04}.txt": "x\n" for i in range(3005)}, branch="huge")
    pr = repo.open_pull(head="huge")
    names = [
        f["filename"]
        async for f in gh.getiter(f"/repos/acme/huge/pulls/{pr.number}/files?per_page=100")
    ]
    assert len(names) == 3000


async def test_patch_omitted_for_chosen_binary_and_huge_files(
    fake_github: FakeGitHub, gh: GitHubAPI
) -> None:
    repo = fake_github.create_repo("acme/payments", files={"a.py": "a = 1\n", "b.py": "b = 1\n"})
    repo.max_patch_lines = 50
    repo.commit(
        {
            "a.py": "a = 2\n",
            "b.py": "b = 2\n",
            "logo.png": b"\x89PNG\0\0binary",
            "big.py": "".join(f"x{i} = {i}\n" for i in range(100)),
        },
        branch="feature",
    )
    pr = repo.open_pull(head="feature")
    pr.omit_patch.add("b.py")
    files = {
        f["filename"]: f async for f in gh.getiter(f"/repos/acme/payments/pulls/{pr.number}/files")
    }
    assert "patch" in files["a.py"]
    assert "patch" not in files["b.py"] and files["b.py"]["changes"] == 2
    assert "patch" not in files["logo.png"]
    assert "patch" not in files["big.py"] and files["big.py"]["additions"] == 100


async def test_rename_and_remove(fake_github: FakeGitHub, gh: GitHubAPI) -> None:
    repo = fake_github.create_repo("acme/payments", files={"old.py": MODELS_V1, "gone.py": "g\n"})
    repo.commit({"old.py": None, "new.py": MODELS_V2, "gone.py": None}, branch="feature")
    pr = repo.open_pull(head="feature")
    files = {
        f["filename"]: f async for f in gh.getiter(f"/repos/acme/payments/pulls/{pr.number}/files")
    }
    assert files["new.py"]["status"] == "renamed"
    assert files["new.py"]["previous_filename"] == "old.py"
    assert files["gone.py"]["status"] == "removed"


async def test_find_pulls_of_a_commit_and_by_head(fake_github: FakeGitHub, gh: GitHubAPI) -> None:
    repo, pr = make_pr(fake_github)
    by_commit = await gh.getitem(f"/repos/acme/payments/commits/{pr.head_sha}/pulls")
    assert [p["number"] for p in by_commit] == [pr.number]
    by_head = await gh.getitem("/repos/acme/payments/pulls?state=open&head=acme:feature")
    assert [p["number"] for p in by_head] == [pr.number]
    assert await gh.getitem("/repos/acme/payments/pulls?state=closed") == []


async def test_push_synchronizes_and_outdates_comments(
    fake_github: FakeGitHub, gh: GitHubAPI
) -> None:
    _, pr = make_pr(fake_github)
    await gh.post(
        f"/repos/acme/payments/pulls/{pr.number}/reviews",
        data={
            "event": "COMMENT",
            "body": "audit",
            "comments": [
                {"path": "app/models.py", "line": 20, "body": "one"},
                {"path": "app/new.py", "line": 1, "body": "two"},
            ],
        },
    )
    before = pr.head_sha
    after = pr.push({"app/models.py": MODELS_V1}).sha
    assert pr.head_sha == after and pr.head_history == [before, after]
    comments = await gh.getitem(f"/repos/acme/payments/pulls/{pr.number}/comments")
    by_path = {c["path"]: c for c in comments}
    assert by_path["app/models.py"]["line"] is None  # outdated
    assert by_path["app/models.py"]["original_line"] == 20
    assert by_path["app/new.py"]["line"] == 1


async def test_compare_and_users(fake_github: FakeGitHub, gh: GitHubAPI) -> None:
    _, pr = make_pr(fake_github)
    cmp = await gh.getitem(f"/repos/acme/payments/compare/main...{pr.head_sha}")
    assert (cmp["status"], cmp["ahead_by"], cmp["behind_by"]) == ("ahead", 1, 0)
    assert {f["filename"] for f in cmp["files"]} == {"app/models.py", "app/new.py"}
    bot = await gh.getitem("/users/{login}", {"login": "txaudit[bot]"})
    assert bot["type"] == "Bot"


# -- contents, blobs, trees ------------------------------------------------------------------------


async def test_contents_json_raw_too_large_and_missing(
    fake_github: FakeGitHub, gh: GitHubAPI
) -> None:
    big = "x" * (1024 * 1024 + 1)
    repo = fake_github.create_repo("acme/payments", files={"a.py": "é = 1\n", "big.py": big})
    sha = repo.branches["main"]
    data = await gh.getitem(f"/repos/acme/payments/contents/a.py?ref={sha}")
    assert data["type"] == "file" and data["encoding"] == "base64"
    assert base64.b64decode(data["content"]) == "é = 1\n".encode()
    assert data["sha"] == blob_sha("é = 1\n".encode())
    raw = await gh.getitem(
        f"/repos/acme/payments/contents/a.py?ref={sha}", accept="application/vnd.github.raw"
    )
    assert raw == "é = 1\n"
    with pytest.raises(gidgethub.BadRequest) as exc:
        await gh.getitem(f"/repos/acme/payments/contents/big.py?ref={sha}")
    assert exc.value.status_code == 403
    raw_big = await gh.getitem(
        "/repos/acme/payments/contents/big.py", accept="application/vnd.github.raw"
    )
    assert len(raw_big) == len(big)
    with pytest.raises(gidgethub.BadRequest) as exc:
        await gh.getitem(f"/repos/acme/payments/contents/nope.py?ref={sha}")
    assert exc.value.status_code == 404


async def test_blobs_and_trees_with_symlink_and_submodule(
    fake_github: FakeGitHub, gh: GitHubAPI
) -> None:
    repo = fake_github.create_repo(
        "acme/payments",
        files={
            "src/app.py": "print(1)\n",
            "link.py": Symlink("src/app.py"),
            "vendor/lib": Submodule("a" * 40),
        },
    )
    tree = await gh.getitem("/repos/acme/payments/git/trees/main?recursive=1")
    entries = {e["path"]: e for e in tree["tree"]}
    assert entries["src"]["type"] == "tree"
    assert entries["src/app.py"]["mode"] == "100644"
    assert entries["link.py"]["mode"] == "120000"
    assert entries["vendor/lib"] == {
        "path": "vendor/lib",
        "mode": "160000",
        "type": "commit",
        "sha": "a" * 40,
    }
    assert tree["sha"] == repo.objects[repo.branches["main"]].tree_sha
    top = await gh.getitem(f"/repos/acme/payments/git/trees/{tree['sha']}")
    assert {e["path"] for e in top["tree"]} == {"src", "link.py", "vendor"}

    sha = entries["src/app.py"]["sha"]
    blob = await gh.getitem(f"/repos/acme/payments/git/blobs/{sha}")
    assert base64.b64decode(blob["content"]) == b"print(1)\n" and blob["encoding"] == "base64"
    raw = await gh.getitem(
        f"/repos/acme/payments/git/blobs/{sha}", accept="application/vnd.github.raw+json"
    )
    assert raw == "print(1)\n"
    link = await gh.getitem("/repos/acme/payments/contents/link.py")
    assert link["type"] == "symlink" and link["target"] == "src/app.py"


# -- check runs ------------------------------------------------------------------------------------


def make_annotations(n: int, start: int = 1) -> list[dict[str, Any]]:
    return [
        {
            "path": "app/models.py",
            "start_line": i,
            "end_line": i,
            "annotation_level": "warning",
            "message": f"finding {i}",
        }
        for i in range(start, start + n)
    ]


async def test_check_run_annotations_limit_and_append(
    fake_github: FakeGitHub, gh: GitHubAPI
) -> None:
    _, pr = make_pr(fake_github)
    run = await gh.post(
        "/repos/acme/payments/check-runs",
        data={"name": "txaudit", "head_sha": pr.head_sha, "status": "in_progress"},
    )
    url = f"/repos/acme/payments/check-runs/{run['id']}"
    with pytest.raises(gidgethub.InvalidField) as exc:
        await gh.patch(
            url,
            data={"output": {"title": "t", "summary": "s", "annotations": make_annotations(51)}},
        )
    assert exc.value.status_code == 422
    assert fake_github.check_runs[run["id"]].annotations == []

    await gh.patch(
        url, data={"output": {"title": "t", "summary": "s", "annotations": make_annotations(50)}}
    )
    done = await gh.patch(
        url,
        data={
            "conclusion": "failure",
            "output": {"title": "t", "summary": "s2", "annotations": make_annotations(30, 51)},
        },
    )
    assert done["status"] == "completed" and done["output"]["annotations_count"] == 80
    listed = [a async for a in gh.getiter(url + "/annotations?per_page=50")]
    assert [a["start_line"] for a in listed] == list(range(1, 81))
    (stored,) = fake_github.runs_for(pr.head_sha)
    assert len(stored.annotations) == 80 and stored.output["summary"] == "s2"
    by_ref = await gh.getitem(f"/repos/acme/payments/commits/{pr.head_sha}/check-runs")
    assert by_ref["total_count"] == 1 and by_ref["check_runs"][0]["id"] == run["id"]


@pytest.mark.parametrize(
    "body",
    [
        {"status": "completed"},
        {"status": "waiting"},
        {"conclusion": "stale"},
        {"output": {"title": "t", "summary": "x" * 65536}},
        {"output": {"title": "t", "summary": "s", "text": "x" * 65536}},
        {"output": {"summary": "s"}},
        {
            "output": {
                "title": "t",
                "summary": "s",
                "annotations": [{**make_annotations(1)[0], "title": "x" * 256}],
            }
        },
        {
            "output": {
                "title": "t",
                "summary": "s",
                "annotations": [
                    {k: v for k, v in make_annotations(1)[0].items() if k != "message"}
                ],
            }
        },
        {
            "output": {
                "title": "t",
                "summary": "s",
                "annotations": [{**make_annotations(1)[0], "end_line": 3, "start_column": 1}],
            }
        },
        {"actions": [{"label": "x", "description": "d", "identifier": "i"}] * 4},
        {"actions": [{"label": "x" * 21, "description": "d", "identifier": "i"}]},
        {"actions": [{"label": "x", "description": "d" * 41, "identifier": "i"}]},
        {"actions": [{"label": "x", "description": "d", "identifier": "i" * 21}]},
    ],
)
async def test_check_run_validation(
    fake_github: FakeGitHub, gh: GitHubAPI, body: dict[str, Any]
) -> None:
    _, pr = make_pr(fake_github)
    with pytest.raises(gidgethub.BadRequest) as exc:
        await gh.post(
            "/repos/acme/payments/check-runs",
            data={"name": "txaudit", "head_sha": pr.head_sha, **body},
        )
    assert exc.value.status_code == 422
    assert not fake_github.check_runs


async def test_only_the_creating_app_may_update_a_run(
    fake_github: FakeGitHub, gh: GitHubAPI
) -> None:
    _, pr = make_pr(fake_github)
    other_app = fake_github.add_app("other-ci")
    other_token = fake_github.mint_token(fake_github.installation_of(other_app).id)
    run = await gh.post(
        "/repos/acme/payments/check-runs",
        data={"name": "ci", "head_sha": pr.head_sha},
        oauth_token=other_token.token,
    )
    assert run["app"]["id"] == other_app.id
    with pytest.raises(gidgethub.BadRequest) as exc:
        await gh.patch(
            f"/repos/acme/payments/check-runs/{run['id']}",
            data={"status": "completed", "conclusion": "success"},
        )
    assert exc.value.status_code == 403
    with pytest.raises(gidgethub.InvalidField):
        await gh.patch(
            f"/repos/acme/payments/check-runs/{run['id']}",
            data={"head_sha": "b" * 40},
            oauth_token=other_token.token,
        )


# -- reviews ---------------------------------------------------------------------------------------


async def test_review_comment_outside_hunk_is_422_and_stores_nothing(
    fake_github: FakeGitHub, gh: GitHubAPI
) -> None:
    _, pr = make_pr(fake_github)
    url = f"/repos/acme/payments/pulls/{pr.number}/reviews"
    good = {"path": "app/models.py", "line": 20, "body": "changed line"}
    context = {"path": "app/models.py", "line": 17, "body": "context line in the hunk"}
    outside = {"path": "app/models.py", "line": 2, "body": "far from the hunk"}
    with pytest.raises((gidgethub.InvalidField, gidgethub.ValidationError)) as exc:
        await gh.post(url, data={"event": "COMMENT", "body": "b", "comments": [good, outside]})
    assert exc.value.status_code == 422
    assert getattr(exc.value, "errors", None) == [
        "Pull request review thread line must be part of the diff"
    ]
    assert fake_github.reviews_of(pr) == [] and fake_github.review_comments_of(pr) == []

    for bad in (
        {"path": "README.md", "line": 1, "body": "not in the PR"},
        {"path": "app/models.py", "line": 24, "body": "just past the hunk (17-23)"},
        {"path": "app/models.py", "line": 20, "side": "LEFT", "body": "20 is removed, ok"}
        | {"line": 30},
    ):
        with pytest.raises((gidgethub.InvalidField, gidgethub.ValidationError)):
            await gh.post(url, data={"event": "COMMENT", "body": "b", "comments": [bad]})

    review = await gh.post(url, data={"event": "COMMENT", "body": "b", "comments": [good, context]})
    assert review["state"] == "COMMENTED" and review["commit_id"] == pr.head_sha
    comments = [c async for c in gh.getiter(f"/repos/acme/payments/pulls/{pr.number}/comments")]
    assert [(c["line"], c["pull_request_review_id"]) for c in comments] == [
        (20, review["id"]),
        (17, review["id"]),
    ]
    assert comments[0]["user"]["login"] == "txaudit[bot]"
    reviews = await gh.getitem(f"/repos/acme/payments/pulls/{pr.number}/reviews")
    assert [r["id"] for r in reviews] == [review["id"]]


async def test_review_multiline_and_missing_patch(fake_github: FakeGitHub, gh: GitHubAPI) -> None:
    _, pr = make_pr(fake_github)
    url = f"/repos/acme/payments/pulls/{pr.number}/reviews"
    multi = {"path": "app/new.py", "start_line": 1, "line": 2, "body": "```suggestion\nz\n```"}
    await gh.post(url, data={"event": "COMMENT", "body": "b", "comments": [multi]})
    pr.omit_patch.add("app/new.py")
    with pytest.raises(gidgethub.ValidationError):
        await gh.post(url, data={"event": "COMMENT", "body": "b", "comments": [multi]})


# -- issue comments, reactions, permissions --------------------------------------------------------


async def test_issue_comments_and_reactions(fake_github: FakeGitHub, gh: GitHubAPI) -> None:
    repo, pr = make_pr(fake_github)
    human = repo.add_comment(pr.number, "/txaudit run", user="alice")
    url = f"/repos/acme/payments/issues/comments/{human.id}/reactions"
    async with aiohttp.ClientSession() as raw:
        token = next(iter(fake_github.tokens))
        headers = {"Authorization": f"token {token}"}
        async with raw.post(fake_github.url + url, json={"content": "eyes"}, headers=headers) as r:
            assert r.status == 201
        async with raw.post(fake_github.url + url, json={"content": "eyes"}, headers=headers) as r:
            assert r.status == 200
    with pytest.raises(gidgethub.ValidationError):
        await gh.post(url, data={"content": "thumbs"})
    assert [r.content for r in fake_github.reactions_on(human)] == ["eyes"]

    posted = await gh.post(f"/repos/acme/payments/issues/{pr.number}/comments", data={"body": "Hi"})
    assert posted["user"]["type"] == "Bot"
    assert posted["performed_via_github_app"]["id"] == fake_github.app_id
    with pytest.raises(gidgethub.ValidationError):
        await gh.post(
            f"/repos/acme/payments/issues/{pr.number}/comments", data={"body": "x" * 65537}
        )
    listed = [c async for c in gh.getiter(f"/repos/acme/payments/issues/{pr.number}/comments")]
    assert [c["body"] for c in listed] == ["/txaudit run", "Hi"]


async def test_collaborator_permission(fake_github: FakeGitHub, gh: GitHubAPI) -> None:
    repo, _ = make_pr(fake_github)
    repo.set_permission("bob", "maintain")
    repo.set_permission("mallory", "none")
    url = "/repos/acme/payments/collaborators/{user}/permission"
    bob = await gh.getitem(url, {"user": "bob"})
    assert (bob["permission"], bob["role_name"]) == ("write", "maintain")
    assert (await gh.getitem(url, {"user": "mallory"}))["permission"] == "none"
    assert (await gh.getitem(url, {"user": "acme"}))["permission"] == "admin"
    assert (await gh.getitem(url, {"user": "stranger"}))["permission"] == "read"


# -- conditional requests, rate limits -------------------------------------------------------------


async def test_etag_304_through_gidgethub_cache(
    fake_github: FakeGitHub, session: aiohttp.ClientSession
) -> None:
    _, pr = make_pr(fake_github)
    gh = await installation_client(fake_github, session, cache=cachetools.LRUCache(maxsize=50))
    first = await gh.getitem(f"/repos/acme/payments/pulls/{pr.number}")
    assert gh.rate_limit is not None
    remaining = gh.rate_limit.remaining
    second = await gh.getitem(f"/repos/acme/payments/pulls/{pr.number}")
    assert second == first
    (_, hit) = fake_github.log.calls("GET /repos/{o}/{r}/pulls/{n}")
    assert hit.status == 304 and fake_github.log.not_modified == 1
    token = next(iter(fake_github.tokens))
    assert fake_github.rate_bucket(token).remaining == remaining  # the 304 was free


async def test_rate_limit_headers_and_exhaustion(fake_github: FakeGitHub, gh: GitHubAPI) -> None:
    make_pr(fake_github)
    await gh.getitem("/repos/acme/payments")
    assert gh.rate_limit is not None
    assert gh.rate_limit.limit == 5000 and gh.rate_limit.remaining == 4999
    fake_github.set_rate_limit(next(iter(fake_github.tokens)), remaining=0)
    with pytest.raises(gidgethub.RateLimitExceeded):
        await gh.getitem("/repos/acme/payments")


# -- fault injection -------------------------------------------------------------------------------


async def test_fault_502_times_then_success(fake_github: FakeGitHub, gh: GitHubAPI) -> None:
    _, pr = make_pr(fake_github)
    fault = fake_github.faults.add(
        method="POST", path=r"/repos/.*/pulls/\d+/reviews", status=502, times=2
    )
    url = f"/repos/acme/payments/pulls/{pr.number}/reviews"
    for _ in range(2):
        with pytest.raises(gidgethub.GitHubBroken):
            await gh.post(url, data={"event": "COMMENT", "body": "b"})
    await gh.post(url, data={"event": "COMMENT", "body": "b"})
    assert fault.fired == 2
    assert [r.status for r in fake_github.log.calls("POST /repos/{o}/{r}/pulls/{n}/reviews")] == [
        502,
        502,
        200,
    ]
    assert len(fake_github.reviews_of(pr)) == 1


async def test_fault_429_and_secondary_limit_carry_retry_after(
    fake_github: FakeGitHub, gh: GitHubAPI
) -> None:
    make_pr(fake_github)
    fake_github.faults.too_many_requests(route="GET /repos/{o}/{r}", retry_after=2)
    with pytest.raises(gidgethub.BadRequest) as exc:
        await gh.getitem("/repos/acme/payments")
    assert exc.value.status_code == 429 and exc.value.headers["retry-after"] == "2"
    fake_github.faults.secondary_rate_limit(path="/repos/acme/payments")
    with pytest.raises(gidgethub.BadRequest) as exc:
        await gh.getitem("/repos/acme/payments")
    assert exc.value.status_code == 403 and not isinstance(exc.value, gidgethub.RateLimitExceeded)
    fake_github.faults.primary_rate_limit(
        path="/repos/acme/payments", reset_at=int(time.time()) + 60
    )
    with pytest.raises(gidgethub.RateLimitExceeded):
        await gh.getitem("/repos/acme/payments")
    assert (await gh.getitem("/repos/acme/payments"))["name"] == "payments"


async def test_fault_drop_connection_on_nth_call(fake_github: FakeGitHub, gh: GitHubAPI) -> None:
    _, pr = make_pr(fake_github)
    fake_github.faults.add(route="POST /repos/{o}/{r}/check-runs", nth=2, drop=True)
    data = {"name": "txaudit", "head_sha": pr.head_sha}
    await gh.post("/repos/acme/payments/check-runs", data=data)
    with pytest.raises(aiohttp.ClientError):
        await gh.post("/repos/acme/payments/check-runs", data=data)
    await gh.post("/repos/acme/payments/check-runs", data=data)
    calls = fake_github.log.calls("POST /repos/{o}/{r}/check-runs")
    assert [r.status for r in calls] == [201, 0, 201]
    assert len(fake_github.runs_for(pr.head_sha)) == 2


async def test_dropped_get_is_retried_once_by_aiohttp(
    fake_github: FakeGitHub, gh: GitHubAPI
) -> None:
    """aiohttp's client silently retries an idempotent request once after a disconnect."""
    make_pr(fake_github)
    fake_github.faults.add(route="GET /repos/{o}/{r}", drop=True, times=1)
    assert (await gh.getitem("/repos/acme/payments"))["name"] == "payments"
    fake_github.faults.add(route="GET /repos/{o}/{r}", drop=True, times=2)
    with pytest.raises(aiohttp.ClientError):
        await gh.getitem("/repos/acme/payments")
    assert [r.status for r in fake_github.log.calls("GET /repos/{o}/{r}")] == [0, 200, 0, 0]


async def test_fault_delay_and_global_latency(fake_github: FakeGitHub, gh: GitHubAPI) -> None:
    make_pr(fake_github)
    fake_github.faults.add(path="/repos/acme/payments", delay=0.2)
    started = time.monotonic()
    await gh.getitem("/repos/acme/payments")
    assert time.monotonic() - started >= 0.2
    fake_github.latency = 0.05
    started = time.monotonic()
    await gh.getitem("/repos/acme/payments")
    assert 0.05 <= time.monotonic() - started < 0.2


# -- GitHub Enterprise Server layout ---------------------------------------------------------------


async def test_base_path_api_v3(
    make_fake_github: Callable[..., Awaitable[FakeGitHub]], session: aiohttp.ClientSession
) -> None:
    fake = await make_fake_github(base_path="/api/v3")
    assert fake.url.endswith("/api/v3")
    _, pr = make_pr(fake)
    gh = await installation_client(fake, session)
    data = await gh.getitem(f"/repos/acme/payments/pulls/{pr.number}")
    assert data["url"].startswith(fake.url + "/repos/")
    files = [f async for f in gh.getiter(data["url"] + "/files?per_page=1")]
    assert len(files) == 2
    assert fake.log.count("GET /repos/{o}/{r}/pulls/{n}/files") == 2
    assert all(r.path.startswith("/") and not r.path.startswith("/api") for r in fake.log)
    async with session.get(fake.root_url + f"/repos/acme/payments/pulls/{pr.number}") as resp:
        assert resp.status == 404  # nothing is served outside the prefix
