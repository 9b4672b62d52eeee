"""Property-based tests: no input makes the patch parser, the slash-command parser, the rule
engine or the webhook intake fail.

Python programs come from hypothesmith (generated from CPython's grammar, a test dependency),
and from the hand-written "Python-ish" strategy below (keywords, SQLAlchemy calls, brackets,
odd bytes).
"""

from __future__ import annotations

import asyncio
import json

import hypothesmith
from aiohttp.test_utils import TestClient, TestServer
from app_helpers import settings_for
from fakegithub import FakeGitHub, payloads
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.app import commands
from bot.app.server import make_app
from bot.review.patch import parse_patch
from rules.engine import audit_source
from rules.engine.config import Config
from rules.engine.model import FileResult

FAST = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
ENGINE = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))

# --- the patch parser ------------------------------------------------------------------------

_numbers = st.integers(min_value=0, max_value=40).map(str) | st.sampled_from(
    ["", "-1", "x", "9" * 30]
)
_hunk_header = st.builds(
    lambda a, b, c, d, tail: f"@@ -{a}{',' + b if b else ''} +{c}{',' + d if d else ''} @@{tail}",
    _numbers,
    _numbers,
    _numbers,
    _numbers,
    st.sampled_from(["", " def f():", "@@", " \r"]),
)
_patch_line = st.one_of(
    _hunk_header,
    st.builds(
        lambda k, t: k + t,
        st.sampled_from(["+", "-", " ", "\\", "", "@", "~"]),
        st.text(max_size=20),
    ),
    st.text(max_size=30),
)
patches = st.lists(_patch_line, max_size=40).map("\n".join) | st.text()


@FAST
@given(patches, st.integers(-5, 60), st.integers(-5, 60))
def test_patch_parser_never_raises(patch: str, first: int, last: int) -> None:
    lines = parse_patch(patch)
    assert lines.added <= lines.commentable
    for start, end in lines.hunks:
        assert start <= end
    assert isinstance(lines.same_hunk(first, last), bool)


@FAST
@given(st.one_of(st.none(), st.integers(), st.binary(), st.lists(st.text())))
def test_patch_parser_takes_non_strings(value: object) -> None:
    assert parse_patch(value).added == frozenset()  # type: ignore[arg-type]


# --- the slash-command parser ----------------------------------------------------------------

_comment_line = st.one_of(
    st.builds(
        lambda indent, cmd, args: " " * indent + cmd + args,
        st.integers(0, 5),
        st.sampled_from(["/txaudit", "/TXAUDIT", "/txaudit2", "/tx", "> /txaudit", "`/txaudit`"]),
        st.sampled_from(
            ["", " run", " full", " explain", " explain tx004 extra", " help", " \t", " ??"]
        )
        | st.text(max_size=30),
    ),
    st.sampled_from(["```", "~~~", "````python", "   ```", "> ```"]),
    st.text(max_size=40),
)
comment_bodies = (
    st.lists(_comment_line, max_size=30).map(lambda lines: "\n".join(lines)) | st.text()
)


@FAST
@given(comment_bodies)
def test_command_parser_never_raises(body: str) -> None:
    found = commands.parse_commands(body)
    assert len(found) <= commands.MAX_COMMANDS
    assert len(set(found)) == len(found)
    for command in found:
        assert isinstance(command.name, commands.Name)


@FAST
@given(st.text(), st.text())
def test_replies_never_raise_and_stay_short(login: str, argument: str) -> None:
    assert "\n" not in commands.denied_reply(login, argument).split("(your access is")[1]
    assert len(commands.help_reply(argument)) < 2000
    assert commands.unknown_rule_reply(argument, ["TX001"])


# --- the rule engine --------------------------------------------------------------------------

_ATOMS = [
    "session",
    "db",
    "await",
    "async",
    "def",
    "with",
    "begin()",
    "commit()",
    "rollback()",
    "session.begin()",
    "session.commit()",
    "AsyncSession",
    "text('SELECT 1')",
    "execute",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ":",
    ",",
    ".",
    "=",
    "+",
    "lambda",
    "if",
    "else",
    "for",
    "in",
    "return",
    "yield",
    "class",
    "#",
    "# txaudit: ignore[TX001]",
    "# noqa",
    "'",
    '"',
    '"""',
    "\\",
    "\t",
    "    ",
    "\n",
    "\r\n",
    "\r",
    "\x00",
    "\x0c",
    "é",
    "\ufeff",
    "0x",
    "1e",
    "f'{x}'",
    "import sqlalchemy",
    "from sqlalchemy.orm import Session",
    "get_background_session()",
]
python_ish = st.lists(st.sampled_from(_ATOMS) | st.text(max_size=5), max_size=80).map(" ".join)
source_bytes = st.one_of(
    python_ish.map(lambda text: text.encode("utf-8", "surrogatepass")),
    python_ish.map(lambda text: b"# -*- coding: latin-1 -*-\n" + text.encode("utf-8", "replace")),
    st.binary(max_size=300),
)


def _check(result: FileResult, source: bytes) -> None:
    assert isinstance(result, FileResult)
    lines = source.count(b"\n") + source.count(b"\r") + 2
    for finding in result.findings:
        assert 1 <= finding.line <= lines
        assert finding.column >= 1


@ENGINE
@given(source_bytes)
def test_engine_never_raises_on_python_ish_bytes(source: bytes) -> None:
    _check(audit_source(source, "app/fuzz.py", Config()), source)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(hypothesmith.from_grammar())
def test_engine_never_raises_on_generated_programs(program: str) -> None:
    source = program.encode("utf-8", "surrogatepass")
    _check(audit_source(source, "app/generated.py", Config()), source)


# --- the webhook intake, over HTTP -----------------------------------------------------------

_events = st.sampled_from(["pull_request", "ping", "issue_comment", "check_run", "", "x" * 300])
_content_types = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/json; charset=nope",
        "application/x-www-form-urlencoded",
        "text/plain",
        "",
    ]
)
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
_bodies = st.binary(max_size=200) | _json_values.map(lambda v: json.dumps(v).encode())


def test_webhook_never_answers_500() -> None:
    """Random headers and bodies, signed or not: 2xx/4xx only, and a rejected delivery
    makes no GitHub call."""
    loop = asyncio.new_event_loop()
    fake = FakeGitHub()
    try:
        loop.run_until_complete(fake.start())
        client = TestClient(TestServer(make_app(settings_for(fake))), loop=loop)
        loop.run_until_complete(client.start_server())

        @FAST
        @given(_events, _content_types, _bodies, st.booleans(), st.text(max_size=80))
        def post(event: str, content_type: str, body: bytes, signed: bool, bad_sig: str) -> None:
            signature = payloads.sign(body, fake.webhook_secret) if signed else bad_sig
            headers = {"x-github-event": event, "x-github-delivery": "fuzz"}
            if content_type:
                headers["content-type"] = content_type
            if signature:
                headers["x-hub-signature-256"] = signature
            try:
                headers = {k: v for k, v in headers.items() if v.isprintable()}
            except ValueError:
                return

            async def go() -> int:
                fake.log.clear()
                response = await client.post("/webhook", data=body, headers=headers)
                return response.status

            status = loop.run_until_complete(go())
            assert status in (200, 202, 400, 401, 413), status
            if status != 202:
                assert fake.log.count() == 0

        post()
        loop.run_until_complete(client.close())
    finally:
        loop.run_until_complete(fake.close())
        loop.close()
