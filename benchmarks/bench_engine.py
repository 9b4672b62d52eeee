"""Benchmark txaudit on realistic service code: parsers, the engine, the CLI and semgrep.

The corpus. `generate()` writes (seeded, deterministic) the tree of a FastAPI + async
SQLAlchemy service, ~160 files for 30,000 lines (most of them of 100-400 lines; 15 domains
of two to four models each, then the same domains again with a numeric suffix for larger
corpora):

    app/core/        db.py (engine, `get_background_session`, `get_db_session`), config, errors
    app/models/      declarative models, two to four per domain (some with session helpers)
    app/repositories/ one per model: select/insert/update/delete on a borrowed session, as a
                     class holding `self.session` or as module functions; a few `text()` and
                     raw SQL f-strings
    app/services/    one per model: methods that take `session: AsyncSession` and call the
                     repositories; a few commit, roll back or begin the borrowed session
    app/routers/     FastAPI routes with `Depends(get_db_session)` (or `Annotated[...]`): one
                     module per model, or one per domain for a parent model and its children
    app/schedulers/  jobs that open `async with get_background_session() as session:`; a few
                     nest `session.begin()`, split the batch, commit by hand or open a
                     failure session in `except`
    app/workers/     queue handlers, same pattern as the schedulers
    app/schemas/     pydantic models (no database: the minority of files)
    app/main.py, package `__init__`s (router and scheduler registration, model imports)

Names of entities, fields, statuses and bound session variables vary per model and per
function; violations are sparse (a few percent of the functions), so the findings are real
but few, like on a maintained code base. `.github/txaudit.yml` is the `examples/service`
configuration (its factories, session parameter names and request dependency) without the
guide links. Every file is checked with `ast.parse` when written.

The measurements, side by side, best of `--runs` (default 3):

  1. `ast.parse` of every file (the reference: CPython's parser, which the engine uses)
  2. `libcst.parse_module` of every file (parse only)
  3. the engine on one core: `rules.engine.audit_sources(files, config, project=index)`
     in-process over every file (callees first, as `txaudit check` audits a tree), with a
     fresh TX007 `ProjectIndex` (and cleared summary cache) per run; `--tx007 without|both`
     also times it with TX007 off and no index
  4. `txaudit check . --format json --fail-on never` as a subprocess: a cold process per
     run on all cores (the CLI's own process pool), startup included, with txaudit's
     bytecode compiled first (`python -m compileall` of `rules/` and `bot/`, as `pip
     install` of a wheel does and as any run without `PYTHONDONTWRITEBYTECODE` leaves it);
     `--no-cache` is passed when `txaudit check --help` lists it. Then the same command
     on a result cache that one run filled (`--cache-dir` in a temporary folder): the warm
     row, which must find the same, and which is not the cold target. With `--tx007
     without|both`, also the cold command with `--ignore TX007` (the rules semgrep's
     equivalent config has: it has no TX007, which needs other modules)
  5. `semgrep scan --config <--semgrep-config> --json --metrics=off
     --disable-version-check --jobs <cores> .` on the same tree, as a subprocess (skipped,
     with a line saying why, when semgrep is not installed or the config file is missing)
  6. peak RSS of (4) and (5). Each tool runs under a small `python -S -c` wrapper that
     starts it with `subprocess.call` and then reads its own
     `getrusage(RUSAGE_CHILDREN).ru_maxrss` (KiB on Linux): the largest max RSS of any
     process it reaped, directly or through its children (the kernel folds a reaped
     child's max RSS into its parent's). That is the RSS of the largest single process of
     the tool's tree: for semgrep the largest of the `pysemgrep` CLI and the semgrep-core
     processes it starts and waits for; for txaudit the largest of the main process and
     its pool workers. It is not a sum over concurrent processes. The wrapper also times
     the tool (its own startup is not counted). Two simpler ways are wrong: `os.wait4()`
     of a child of this script reports at least this script's RSS (the child is spawned
     with vfork and the kernel keeps the high-water RSS across exec), and
     `RUSAGE_CHILDREN` of this script is a max over every child it ever reaped, so the
     second tool would inherit the first's. The wrapper's own ~10 MiB is the floor of the
     measure. The largest value over the runs is reported.
  7. ratios: engine / ast.parse (target <= 3x), engine / libcst, semgrep / txaudit check
     wall time (target >= 8x), and the findings of each tool by rule.

Usage: python benchmarks/bench_engine.py [--runs 3] [--lines 30000] [--seed 7]
       [--tx007 with|without|both] [--semgrep-config FILE] [--no-subprocess]
       [--keep DIR] [--json]
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from string import Template

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import libcst  # noqa: E402

from bot.cli import local  # noqa: E402
from rules.engine.config import Config, load_config_file  # noqa: E402
from rules.engine.model import Severity  # noqa: E402

DEFAULT_SEMGREP_CONFIG = (REPO / ".." / "shared" / "bench" / "semgrep-equivalent.yml").resolve()

#: The configuration of `examples/service/.github/txaudit.yml`, without its guide links
#: (the generated tree has no Docs/ folder).
CONFIG = """\
# txaudit configuration of the generated benchmark service (from examples/service).
rules:
  TX004: warning
session_factories: [get_background_session]
session_param_names: [session, db, db_session, async_session]
request_session_dependencies: [get_db_session]
paths:
  include: ["app/**/*.py"]
  exclude: ["tests/**", "**/migrations/**"]
fail_on: error
"""

#: Files "touching the database": a session, a transaction call, `text(`, `execute`, a
#: SQLAlchemy statement constructor or a SQL keyword.
DB_WORDS = re.compile(
    r"(?i:session)|\.commit\(|\.rollback\(|\.begin\(|\btext\(|\bexecute\b"
    r"|\b(?:select|insert|update|delete)\(|\b(?:SELECT|INSERT|UPDATE|DELETE)\b"
)


# --- the corpus ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Corpus:
    root: Path
    files: tuple[Path, ...]
    lines: int
    sources: tuple[bytes, ...]
    rels: tuple[str, ...]


@dataclass(frozen=True)
class Field:
    name: str
    column: str  # the mapped_column() arguments
    annotation: str  # the Mapped[...] / pydantic type
    kind: str  # str, int, float, bool, text, dt
    example: str


FIELD_POOL: tuple[Field, ...] = (
    Field("name", "String(200)", "str", "str", '"acme"'),
    Field("title", "String(255)", "str", "str", '"quarterly"'),
    Field("email", "String(320), index=True", "str", "str", '"ops@example.com"'),
    Field("external_id", "String(64), unique=True", "str | None", "str", '"ext-1"'),
    Field("reference", "String(64), index=True", "str", "str", '"REF-001"'),
    Field("domain", "String(255), index=True", "str", "str", '"example.com"'),
    Field("url", "String(2048)", "str", "str", '"https://example.com/a"'),
    Field("region", "String(16)", "str", "str", '"eu-west"'),
    Field("currency", "String(3)", "str", "str", '"EUR"'),
    Field("slug", "String(120), unique=True", "str", "str", '"spring-sale"'),
    Field("amount_cents", "Integer, default=0", "int", "int", "1999"),
    Field("quantity", "Integer, default=1", "int", "int", "3"),
    Field("priority", "Integer, default=0", "int", "int", "5"),
    Field("weight_grams", "Integer, default=0", "int", "int", "250"),
    Field("retry_after", "Integer, default=60", "int", "int", "120"),
    Field("score", "Float, default=0.0", "float", "float", "0.5"),
    Field("ratio", "Float, default=1.0", "float", "float", "1.0"),
    Field("is_active", "Boolean, default=True", "bool", "bool", "True"),
    Field("is_archived", "Boolean, default=False", "bool", "bool", "False"),
    Field("notes", "Text, default=None", "str | None", "text", "None"),
    Field("payload", "Text, default=None", "str | None", "text", "None"),
    Field("due_at", "DateTime(timezone=True), default=None", "datetime | None", "dt", "None"),
    Field("processed_at", "DateTime(timezone=True), default=None", "datetime | None", "dt", "None"),
    Field("expires_at", "DateTime(timezone=True), default=None", "datetime | None", "dt", "None"),
)  # fmt: skip

DOMAINS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("billing", ("Invoice", "Payment", "Refund", "Payout")),
    ("customers", ("Customer", "Account", "ApiKey")),
    ("orders", ("Order", "OrderLine", "Coupon")),
    ("shipping", ("Shipment", "Carrier", "Parcel")),
    ("catalog", ("Product", "Category", "Listing")),
    ("inventory", ("Warehouse", "StockItem", "Supplier", "PurchaseOrder")),
    ("subscriptions", ("Subscription", "Plan", "UsageRecord")),
    ("teams", ("Team", "Membership", "Invitation")),
    ("projects", ("Project", "Task", "Comment", "Attachment")),
    ("messaging", ("Notification", "EmailMessage", "Webhook")),
    ("reporting", ("Report", "Export", "ImportJob")),
    ("crawling", ("Sitemap", "Page", "Crawl", "Feed")),
    ("security", ("AuditEvent", "LoginAttempt", "Device")),
    ("support", ("Ticket", "Reply", "Macro")),
    ("marketing", ("Campaign", "Segment", "Lead")),
)

INITIAL = ("pending", "queued", "new")
ACTIVE = ("processing", "running", "in_progress")
FINAL = ("done", "completed", "settled", "published", "delivered")
BOUND_NAMES = ("session", "session", "session", "db", "batch_session", "job_session", "s")

#: How often a function gets its bad variant (a violation), per kind of function.
BAD_RATE = {
    "repo_raw": 0.18,  # a repository with a hand-written SQL method (ORM001/ORM002/ORM003)
    "repo_commit": 0.03,  # module-function repository that commits (TX002)
    "service_commit": 0.035,  # service method commits / rolls back the borrowed session
    "service_begin": 0.05,  # service method begins on the borrowed session (TX003)
    "job_nested_begin": 0.05,  # TX001
    "job_split": 0.035,  # TX004
    "job_except_session": 0.03,  # TX005
    "job_commit": 0.035,  # TX006
    "route_raw": 0.03,  # a route with an f-string SQL execute (ORM002)
}


#: About how many lines one model adds (model, schemas, repository, service, routes, jobs).
LINES_PER_MODEL = 850


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _plural(word: str) -> str:
    if word.endswith("y") and word[-2:-1] not in "aeiou":
        return word[:-1] + "ies"
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    return word + "s"


@dataclass
class Entity:
    name: str  # class name
    domain: str
    fields: list[Field]
    initial: str
    active: str
    final: str
    parent: Entity | None
    style: str  # repository style: "class" or "functions"
    methods: set[str] = field(default_factory=set)  # service methods that exist
    bad_methods: set[str] = field(default_factory=set)  # service methods that commit/begin

    @property
    def snake(self) -> str:
        return _snake(self.name)

    @property
    def plural(self) -> str:
        return _plural(self.snake)

    @property
    def table(self) -> str:
        return self.plural

    @property
    def repo_module(self) -> str:
        return f"{self.snake}_repository"

    @property
    def service_module(self) -> str:
        return f"{self.snake}_service"

    def of_kind(self, *kinds: str) -> list[Field]:
        return [f for f in self.fields if f.kind in kinds]


_BLOCK = re.compile(r"^(?P<indent> *)\$\{?(?P<name>\w+)\}?$")


def _t(template: str, **values: object) -> str:
    """`template` dedented, with `$name` placeholders filled.

    A placeholder alone on its line is a block: each line of its value is indented like the
    placeholder (an empty value drops the line).
    """
    strings = {k: str(v) for k, v in values.items()}
    out = []
    for line in textwrap.dedent(template).strip("\n").split("\n"):
        block = _BLOCK.match(line)
        if block and block["name"] in strings:
            if strings[block["name"]]:
                out.append(_indent(strings[block["name"]], len(block["indent"])))
            continue
        out.append(Template(line).substitute(strings))
    return "\n".join(out)


def _method_name(pattern: str) -> str:
    """A repository method's name in a class: "get_{es}_by_ids" -> "get_by_ids"."""
    return re.sub(r"_?\{es?\}_?", "_", pattern).strip("_").replace("__", "_")


def _indent(text: str, spaces: int = 4) -> str:
    return textwrap.indent(text, " " * spaces, lambda line: bool(line.strip()))


class _Generator:
    """Writes one service tree; every choice comes from `rng`."""

    def __init__(self, root: Path, rng: random.Random) -> None:
        self.root = root
        self.rng = rng
        self.lines = 0
        self.files: dict[str, str] = {}
        self.router_vars: list[tuple[str, str]] = []  # (module, APIRouter variable)

    def chance(self, kind: str) -> bool:
        return self.rng.random() < BAD_RATE[kind]

    def write(self, rel: str, text: str) -> None:
        text = text.rstrip("\n") + "\n"
        try:
            ast.parse(text, filename=rel)
        except SyntaxError as exc:  # a bug in a template: say where
            raise AssertionError(f"generated {rel} does not parse: {exc}") from exc
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        self.files[rel] = text
        self.lines += text.count("\n")

    # --- entities --------------------------------------------------------------------------

    def entities(self, domain: str, names: Sequence[str]) -> list[Entity]:
        rng = self.rng
        out: list[Entity] = []
        for name in names:
            pool = list(FIELD_POOL)
            rng.shuffle(pool)
            fields = pool[: rng.randint(3, 7)]
            if not any(f.kind == "str" for f in fields):
                fields.append(next(f for f in pool if f.kind == "str"))
            fields.sort(key=FIELD_POOL.index)
            parent = out[0] if out and rng.random() < 0.7 else None
            out.append(
                Entity(
                    name=name,
                    domain=domain,
                    fields=fields,
                    initial=rng.choice(INITIAL),
                    active=rng.choice(ACTIVE),
                    final=rng.choice(FINAL),
                    parent=parent,
                    style="functions" if rng.random() < 0.35 else "class",
                )
            )
        return out

    # --- app/models ------------------------------------------------------------------------

    def models(self, domain: str, entities: list[Entity]) -> None:
        rng = self.rng
        helpers = [rng.random() < 0.75 for _ in entities]
        imports = [
            "from __future__ import annotations",
            "",
            "from datetime import UTC, datetime, timedelta",
            "",
            "from sqlalchemy import Boolean, DateTime, Float, ForeignKey, Index, Integer, "
            "String, Text, func, select",
            "from sqlalchemy.ext.asyncio import AsyncSession",
            "from sqlalchemy.orm import Mapped, mapped_column, relationship",
            "",
            "from app.models.base import Base",
        ]
        parts = [f'"""ORM models of the {domain} domain."""', "", "\n".join(imports)]
        if not any(helpers):
            parts[-1] = (
                parts[-1]
                .replace(", select", "")
                .replace("from sqlalchemy.ext.asyncio import AsyncSession\n", "")
            )
        for entity, helper in zip(entities, helpers, strict=True):
            parts.append("\n" + self.model_class(entity, entities, helper))
        self.write(f"app/models/{domain}.py", "\n".join(parts))

    def model_class(self, e: Entity, siblings: list[Entity], helper: bool) -> str:
        rng = self.rng
        columns = [
            "id: Mapped[int] = mapped_column(Integer, primary_key=True)",
        ]
        if e.parent is not None:
            p = e.parent
            ondelete = rng.choice(("CASCADE", "SET NULL", "RESTRICT"))
            columns.append(
                f"{p.snake}_id: Mapped[int] = mapped_column("
                f'ForeignKey("{p.table}.id", ondelete="{ondelete}"), index=True)'
            )
        for f in e.fields:
            columns.append(f"{f.name}: Mapped[{f.annotation}] = mapped_column({f.column})")
        columns += [
            f'status: Mapped[str] = mapped_column(String(32), default="{e.initial}", index=True)',
            "attempts: Mapped[int] = mapped_column(Integer, default=0)",
            "error: Mapped[str | None] = mapped_column(Text, default=None)",
            "created_at: Mapped[datetime] = mapped_column(\n"
            "    DateTime(timezone=True), server_default=func.now()\n)",
            "updated_at: Mapped[datetime] = mapped_column(\n"
            "    DateTime(timezone=True), server_default=func.now(), onupdate=func.now()\n)",
        ]
        relations = []
        if e.parent is not None:
            relations.append(
                f"{e.parent.snake}: Mapped[{e.parent.name}] = relationship("
                f'back_populates="{e.plural}")'
            )
        for child in siblings:
            if child.parent is e:
                relations.append(
                    f"{child.plural}: Mapped[list[{child.name}]] = relationship(\n"
                    f'    back_populates="{e.snake}", cascade="all, delete-orphan"\n)'
                )
        body = [
            f'"""One {e.snake.replace("_", " ")} of the {e.domain} domain."""',
            "",
            f'__tablename__ = "{e.table}"',
            "__table_args__ = (",
            f'    Index("ix_{e.table}_status_created", "status", "created_at"),',
            ")",
            "",
            *columns,
        ]
        if relations:
            body += ["", *relations]
        body += [
            "",
            _t(
                """
                TERMINAL_STATUSES = ("$final", "failed")

                def __repr__(self) -> str:
                    return f"<$Name id={self.id} status={self.status}>"

                @property
                def is_terminal(self) -> bool:
                    return self.status in self.TERMINAL_STATUSES

                def can_retry(self, max_attempts: int = $max) -> bool:
                    return self.status == "failed" and self.attempts < max_attempts
                """,
                Name=e.name,
                final=e.final,
                max=rng.choice((3, 5, 8)),
            ),
        ]
        if any(f.name == "expires_at" for f in e.fields):
            body.append(
                "\n"
                + _t(
                    """
                    def is_expired(self, now: datetime | None = None) -> bool:
                        now = now or datetime.now(UTC)
                        return self.expires_at is not None and self.expires_at <= now
                    """
                )
            )
        if helper:
            key = e.of_kind("str")[0]
            body.append(
                "\n"
                + _t(
                    '''
                    @classmethod
                    async def by_$key(cls, session: AsyncSession, $key: str) -> $Name | None:
                        """The $name with this $key, if any."""
                        return await session.scalar(select(cls).where(cls.$key == $key))

                    @classmethod
                    async def stale(
                        cls, session: AsyncSession, older_than: timedelta
                    ) -> list[$Name]:
                        cutoff = datetime.now(UTC) - older_than
                        rows = await session.scalars(
                            select(cls).where(cls.status == "$active", cls.updated_at < cutoff)
                        )
                        return list(rows)
                    ''',
                    Name=e.name,
                    name=e.snake.replace("_", " "),
                    key=key.name,
                    active=e.active,
                )
            )
        return f"class {e.name}(Base):\n" + _indent("\n".join(body))

    # --- app/repositories ------------------------------------------------------------------

    def repository(self, e: Entity) -> None:
        rng = self.rng
        cls = e.style == "class"
        S = "self.session" if cls else "session"
        sig = "self" if cls else "session: AsyncSession"

        def name(pattern: str) -> str:
            if cls:
                return _method_name(pattern)
            return pattern.format(e=e.snake, es=e.plural)

        common = {"S": S, "sig": sig, "M": e.name, "m": e.snake, "ms": e.plural}
        methods: list[str] = []

        def add(pattern: str, template: str, **extra: object) -> None:
            methods.append(_t(template, fn=name(pattern), **common, **extra))

        add(
            "get_{e}",
            '''
            async def $fn($sig, ${m}_id: int) -> $M | None:
                """The $m with this id, or None."""
                return await $S.get($M, ${m}_id)
            ''',
        )
        add(
            "get_{es}_by_ids",
            """
            async def $fn($sig, ids: Sequence[int]) -> list[$M]:
                if not ids:
                    return []
                rows = await $S.scalars(select($M).where($M.id.in_(ids)))
                return list(rows)
            """,
        )
        add(
            "list_{es}_by_status",
            """
            async def $fn(
                $sig, status: str | None = None, *, limit: int = 50, offset: int = 0
            ) -> list[$M]:
                query = select($M).order_by($M.created_at.desc()).limit(limit).offset(offset)
                if status is not None:
                    query = query.where($M.status == status)
                return list(await $S.scalars(query))
            """,
        )
        add(
            "lock_{e}_batch",
            '''
            async def $fn($sig, limit: int = 100) -> list[$M]:
                """Claim up to `limit` $initial rows; other workers skip the locked ones."""
                query = (
                    select($M)
                    .where($M.status == "$initial")
                    .order_by($M.created_at)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
                return list(await $S.scalars(query))
            ''',
            initial=e.initial,
        )
        if cls or not self.chance("repo_commit"):
            add(
                "add_{e}",
                """
                async def $fn($sig, ${m}: $M) -> $M:
                    $S.add(${m})
                    await $S.flush()
                    return ${m}
                """,
            )
        else:
            add(
                "add_{e}",
                """
                async def $fn($sig, ${m}: $M) -> $M:
                    $S.add(${m})
                    await $S.commit()
                    await $S.refresh(${m})
                    return ${m}
                """,
            )
        add(
            "update_{e}_status",
            """
            async def $fn($sig, ids: Sequence[int], status: str) -> int:
                if not ids:
                    return 0
                result = await $S.execute(
                    update($M)
                    .where($M.id.in_(ids))
                    .values(status=status, updated_at=datetime.now(UTC))
                    .execution_options(synchronize_session=False)
                )
                return result.rowcount
            """,
        )
        add(
            "count_{es}_by_status",
            """
            async def $fn($sig) -> dict[str, int]:
                result = await $S.execute(
                    select($M.status, func.count($M.id)).group_by($M.status)
                )
                return {status: count for status, count in result.all()}
            """,
        )
        optional: list[tuple[str, str, dict[str, object]]] = []
        for f in e.of_kind("str"):
            optional.append(
                (
                    f"get_{{e}}_by_{f.name}",
                    """
                    async def $fn($sig, value: str) -> $M | None:
                        return await $S.scalar(select($M).where($M.$f == value).limit(1))
                    """,
                    {"f": f.name},
                )
            )
            optional.append(
                (
                    f"search_{{es}}_by_{f.name}",
                    '''
                    async def $fn($sig, term: str, limit: int = 20) -> list[$M]:
                        """Case-insensitive substring search on $f."""
                        pattern = f"%{term.strip()}%"
                        query = select($M).where($M.$f.ilike(pattern)).limit(limit)
                        return list(await $S.scalars(query))
                    ''',
                    {"f": f.name},
                )
            )
        for f in e.of_kind("int", "float"):
            optional.append(
                (
                    f"total_{{es}}_{f.name}",
                    """
                    async def $fn($sig, status: str = "$final") -> $typ:
                        total = await $S.scalar(
                            select(func.coalesce(func.sum($M.$f), 0)).where($M.status == status)
                        )
                        return $typ(total or 0)
                    """,
                    {"f": f.name, "final": e.final, "typ": f.annotation},
                )
            )
        for f in e.of_kind("bool"):
            optional.append(
                (
                    f"list_{{es}}_where_{f.name}",
                    """
                    async def $fn($sig, value: bool = True, limit: int = 100) -> list[$M]:
                        query = select($M).where($M.$f.is_(value)).limit(limit)
                        return list(await $S.scalars(query))
                    """,
                    {"f": f.name},
                )
            )
        if e.parent is not None:
            optional.append(
                (
                    f"list_{{es}}_for_{e.parent.snake}",
                    """
                    async def $fn($sig, ${p}_id: int) -> list[$M]:
                        query = (
                            select($M)
                            .where($M.${p}_id == ${p}_id)
                            .order_by($M.created_at)
                        )
                        return list(await $S.scalars(query))
                    """,
                    {"p": e.parent.snake},
                )
            )
            optional.append(
                (
                    f"count_{{es}}_per_{e.parent.snake}",
                    """
                    async def $fn($sig) -> dict[int, int]:
                        result = await $S.execute(
                            select($M.${p}_id, func.count($M.id)).group_by($M.${p}_id)
                        )
                        return dict(result.tuples().all())
                    """,
                    {"p": e.parent.snake},
                )
            )
        optional += [
            (
                "delete_{es}_older_than",
                """
                async def $fn($sig, days: int = $days) -> int:
                    cutoff = datetime.now(UTC) - timedelta(days=days)
                    result = await $S.execute(
                        delete($M).where($M.status == "$final", $M.updated_at < cutoff)
                    )
                    return result.rowcount
                """,
                {"days": rng.choice((30, 90, 180, 365)), "final": e.final},
            ),
            (
                "requeue_failed_{es}",
                """
                async def $fn($sig, max_attempts: int = 5) -> int:
                    result = await $S.execute(
                        update($M)
                        .where($M.status == "failed", $M.attempts < max_attempts)
                        .values(status="$initial", error=None)
                    )
                    return result.rowcount
                """,
                {"initial": e.initial},
            ),
            (
                "latest_{es}",
                """
                async def $fn($sig, limit: int = 10) -> list[$M]:
                    query = select($M).order_by($M.updated_at.desc(), $M.id.desc()).limit(limit)
                    return list(await $S.scalars(query))
                """,
                {},
            ),
            (
                "{e}_exists",
                """
                async def $fn($sig, ${m}_id: int) -> bool:
                    found = await $S.scalar(select($M.id).where($M.id == ${m}_id))
                    return found is not None
                """,
                {},
            ),
            (
                "page_{es}",
                '''
                async def $fn(
                    $sig, *, after_id: int = 0, page_size: int = 100
                ) -> tuple[list[$M], int | None]:
                    """Keyset pagination: a page of rows and the cursor of the next page."""
                    rows = list(
                        await $S.scalars(
                            select($M)
                            .where($M.id > after_id)
                            .order_by($M.id)
                            .limit(page_size + 1)
                        )
                    )
                    next_cursor = rows[page_size - 1].id if len(rows) > page_size else None
                    return rows[:page_size], next_cursor
                ''',
                {},
            ),
            (
                "insert_{es}",
                """
                async def $fn($sig, rows: Sequence[dict[str, object]]) -> int:
                    if not rows:
                        return 0
                    await $S.execute(insert($M), list(rows))
                    return len(rows)
                """,
                {},
            ),
            (
                "touch_{es}",
                """
                async def $fn($sig, ids: Iterable[int]) -> None:
                    for ${m}_id in ids:
                        ${m} = await $S.get($M, ${m}_id)
                        if ${m} is not None:
                            ${m}.updated_at = datetime.now(UTC)
                """,
                {},
            ),
        ]
        for f in e.of_kind("dt"):
            optional.append(
                (
                    f"{{es}}_with_{f.name}_before",
                    """
                    async def $fn($sig, moment: datetime, limit: int = 200) -> list[$M]:
                        query = (
                            select($M)
                            .where($M.$f.is_not(None), $M.$f <= moment)
                            .order_by($M.$f)
                            .limit(limit)
                        )
                        return list(await $S.scalars(query))
                    """,
                    {"f": f.name},
                )
            )
        for f in e.fields:
            if "None" in f.annotation:
                optional.append(
                    (
                        f"clear_{{e}}_{f.name}",
                        """
                        async def $fn($sig, ids: Sequence[int]) -> int:
                            result = await $S.execute(
                                update($M).where($M.id.in_(ids)).values($f=None)
                            )
                            return result.rowcount
                        """,
                        {"f": f.name},
                    )
                )
        for f in e.of_kind("str")[:1]:
            optional.append(
                (
                    f"distinct_{{es}}_{f.name}_values",
                    """
                    async def $fn($sig) -> list[str]:
                        rows = await $S.scalars(select($M.$f).distinct().order_by($M.$f))
                        return [value for value in rows if value]
                    """,
                    {"f": f.name},
                )
            )
        optional += [
            (
                "stream_{es}",
                '''
                async def $fn($sig, status: str) -> AsyncIterator[$M]:
                    """Every row with `status`, fetched 500 at a time."""
                    result = await $S.stream_scalars(
                        select($M).where($M.status == status).execution_options(yield_per=500)
                    )
                    async for row in result:
                        yield row
                ''',
                {},
            ),
            (
                "lock_{e}",
                """
                async def $fn($sig, ${m}_id: int) -> $M | None:
                    query = select($M).where($M.id == ${m}_id).with_for_update()
                    return await $S.scalar(query)
                """,
                {},
            ),
            (
                "count_{es}_since",
                """
                async def $fn($sig, since: datetime, status: str | None = None) -> int:
                    query = select(func.count($M.id)).where($M.created_at >= since)
                    if status is not None:
                        query = query.where($M.status == status)
                    return int(await $S.scalar(query) or 0)
                """,
                {},
            ),
            (
                "{es}_created_between",
                """
                async def $fn($sig, start: datetime, end: datetime) -> list[$M]:
                    query = (
                        select($M)
                        .where($M.created_at >= start, $M.created_at < end)
                        .order_by($M.created_at)
                    )
                    return list(await $S.scalars(query))
                """,
                {},
            ),
        ]
        for f in e.of_kind("str")[:2]:
            optional.append(
                (
                    f"get_{{es}}_by_{f.name}_in",
                    """
                    async def $fn($sig, values: Iterable[str]) -> dict[str, $M]:
                        wanted = sorted(set(values))
                        if not wanted:
                            return {}
                        rows = await $S.scalars(select($M).where($M.$f.in_(wanted)))
                        return {row.$f: row for row in rows}
                    """,
                    {"f": f.name},
                )
            )
        for f in e.of_kind("int", "float")[:2]:
            optional.append(
                (
                    f"{{es}}_with_{f.name}_above",
                    """
                    async def $fn($sig, threshold: $typ, limit: int = 100) -> list[$M]:
                        query = (
                            select($M)
                            .where($M.$f > threshold)
                            .order_by($M.$f.desc())
                            .limit(limit)
                        )
                        return list(await $S.scalars(query))
                    """,
                    {"f": f.name, "typ": f.annotation},
                )
            )
        optional += [
            (
                "oldest_{e}_waiting",
                """
                async def $fn($sig) -> $M | None:
                    query = (
                        select($M)
                        .where($M.status == "$initial")
                        .order_by($M.created_at)
                        .limit(1)
                    )
                    return await $S.scalar(query)
                """,
                {"initial": e.initial},
            ),
            (
                "set_{es}_error",
                """
                async def $fn($sig, errors: dict[int, str]) -> None:
                    for ${m}_id, message in errors.items():
                        await $S.execute(
                            update($M)
                            .where($M.id == ${m}_id)
                            .values(status="failed", error=message[:500])
                        )
                """,
                {},
            ),
            (
                "changed_{es}_since",
                '''
                async def $fn($sig, since: datetime, limit: int = 1000) -> list[int]:
                    """Ids of the rows changed since `since` (for the search index sync)."""
                    rows = await $S.scalars(
                        select($M.id)
                        .where($M.updated_at >= since)
                        .order_by($M.updated_at)
                        .limit(limit)
                    )
                    return list(rows)
                ''',
                {},
            ),
        ]
        rng.shuffle(optional)
        target = rng.randint(130, 400)
        raw = self.chance("repo_raw")
        budget = target - (25 if raw else 0) - 22
        gap = 2 if cls else 3  # a method's lines and the blank lines after it
        used = sum(m.count("\n") + gap for m in methods)
        for pattern, template, extra in optional:
            if used >= budget:
                break
            add(pattern, template, **extra)
            used += methods[-1].count("\n") + gap
        constants = ""
        uses_text = False
        if raw:
            flavour = rng.randrange(3)
            if flavour == 0:
                uses_text = True
                add(
                    "{e}_status_report",
                    '''
                    async def $fn($sig, since: datetime) -> list[tuple[str, int]]:
                        """Rows per status since `since` (hand-written "for speed")."""
                        result = await $S.execute(
                            text(
                                "SELECT status, COUNT(*) FROM $table "
                                "WHERE created_at >= :since GROUP BY status"
                            ),
                            {"since": since},
                        )
                        return [(row[0], row[1]) for row in result]
                    ''',
                    table=e.table,
                )
            elif flavour == 1:
                add(
                    "purge_{es}",
                    '''
                    async def $fn($sig, days: int) -> int:
                        """Delete finished rows older than `days` (the ORM version was "slow")."""
                        result = await $S.execute(
                            f"DELETE FROM $table WHERE status = '$final' "
                            f"AND updated_at < NOW() - INTERVAL {int(days)} DAY"
                        )
                        return result.rowcount
                    ''',
                    table=e.table,
                    final=e.final,
                )
            else:
                uses_text = True
                constants = _t(
                    '''
                    DAILY_${U}_SQL = """
                        SELECT DATE(created_at) AS day, COUNT(*) AS created
                        FROM $table
                        WHERE created_at >= :since
                        GROUP BY DATE(created_at)
                    """
                    ''',
                    U=e.plural.upper(),
                    table=e.table,
                )
                add(
                    "daily_{es}",
                    """
                    async def $fn($sig, since: datetime) -> dict[str, int]:
                        result = await $S.execute(text(DAILY_${U}_SQL), {"since": since})
                        return {str(day): count for day, count in result}
                    """,
                    U=e.plural.upper(),
                )
        imports = [
            "from __future__ import annotations",
            "",
            "import logging",
            "from collections.abc import AsyncIterator, Iterable, Sequence",
            "from datetime import UTC, datetime, timedelta",
            "",
            "from sqlalchemy import delete, func, insert, select, "
            + ("text, " if uses_text else "")
            + "update",
            "from sqlalchemy.ext.asyncio import AsyncSession",
            "",
            f"from app.models.{e.domain} import {e.name}",
            "",
            "logger = logging.getLogger(__name__)",
        ]
        head = f'"""Data access for {e.plural.replace("_", " ")}: the caller owns the session."""'
        parts = [head, "", "\n".join(imports)]
        if constants:
            parts += ["", constants]
        if cls:
            init = _t(
                """
                def __init__(self, session: AsyncSession) -> None:
                    self.session = session
                """
            )
            body = "\n\n".join([init, *methods])
            parts += [
                "",
                "",
                f"class {e.name}Repository:\n"
                + _indent(
                    f'"""Queries on {e.table}; never commits (the caller does)."""\n\n' + body
                ),
            ]
        else:
            parts += ["", "", "\n\n\n".join(methods)]
        self.write(f"app/repositories/{e.repo_module}.py", "\n".join(parts))

    def repo_call(self, e: Entity, method: str, session: str, args: str = "") -> str:
        """An expression calling repository `method` of `e` on `session`."""
        if e.style == "class":
            short = _method_name(method)
            return f"{e.name}Repository({session}).{short}({args})"
        fn = method.format(e=e.snake, es=e.plural)
        sep = ", " if args else ""
        return f"{e.repo_module}.{fn}({session}{sep}{args})"

    def repo_import(self, e: Entity) -> str:
        if e.style == "class":
            return f"from app.repositories.{e.repo_module} import {e.name}Repository"
        return f"from app.repositories import {e.repo_module}"

    # --- app/services ----------------------------------------------------------------------

    def service(self, e: Entity) -> None:
        rng = self.rng
        M, m, ms = e.name, e.snake, e.plural
        words = ms.replace("_", " ")
        common = {"M": M, "m": m, "ms": ms, "words": words}
        methods: list[tuple[str, str]] = []  # (name, code)
        param = rng.choice(("session", "session", "session", "db"))

        def add(name: str, template: str, **extra: object) -> None:
            methods.append((name, _t(template, **common, sess=param, **extra)))

        # create
        commit = self.chance("service_commit")
        add(
            "create",
            '''
            async def create(self, $sess: AsyncSession, data: ${M}Create) -> $M:
                """Validate and add a new $m; the caller's transaction writes it."""
                ${m} = $M(**data.model_dump(exclude_unset=True))
                self._validate(${m})
                await $add
                logger.info("created $m %s", ${m}.id)$tail
                return ${m}
            ''',
            add=self.repo_call(e, "add_{e}", param, m),
            tail=f"\n    await {param}.commit()" if commit else "",
        )
        if commit:
            e.bad_methods.add("create")
        # get_or_404
        add(
            "get_or_raise",
            """
            async def get_or_raise(self, $sess: AsyncSession, ${m}_id: int) -> $M:
                ${m} = await $get
                if ${m} is None:
                    raise NotFoundError(f"$m {${m}_id} not found")
                return ${m}
            """,
            get=self.repo_call(e, "get_{e}", param, f"{m}_id"),
        )
        # update: either a plain update, or (rarely) a rollback on integrity errors
        bad = self.chance("service_commit")
        if bad and rng.random() < 0.5:
            add(
                "update",
                """
                async def update(self, $sess: AsyncSession, ${m}_id: int, data: ${M}Update) -> $M:
                    ${m} = await self.get_or_raise($sess, ${m}_id)
                    for key, value in data.model_dump(exclude_unset=True).items():
                        setattr(${m}, key, value)
                    try:
                        await $sess.flush()
                    except IntegrityError as exc:
                        await $sess.rollback()
                        raise ConflictError(str(exc.orig)) from exc
                    return ${m}
                """,
            )
            e.bad_methods.add("update")
        else:
            add(
                "update",
                """
                async def update(self, $sess: AsyncSession, ${m}_id: int, data: ${M}Update) -> $M:
                    ${m} = await self.get_or_raise($sess, ${m}_id)
                    changes = data.model_dump(exclude_unset=True)
                    for key, value in changes.items():
                        setattr(${m}, key, value)
                    self._validate(${m})
                    await $sess.flush()$tail
                    return ${m}
                """,
                tail=f"\n    await {param}.commit()" if bad else "",
            )
            if bad:
                e.bad_methods.add("update")
        # transitions
        for target in (e.active, e.final, "failed"):
            bad = self.chance("service_commit")
            add(
                f"mark_{target}",
                '''
                async def mark_$target(
                    self, $sess: AsyncSession, ${m}_id: int, reason: str | None = None
                ) -> $M:
                    """Move one $m to "$target"."""
                    ${m} = await self.get_or_raise($sess, ${m}_id)
                    self._check_transition(${m}.status, "$target")
                    ${m}.status = "$target"
                    ${m}.error = reason$attempts$tail
                    return ${m}
                ''',
                target=target,
                attempts=f"\n    {m}.attempts += 1" if target == e.active else "",
                tail=f"\n    await {param}.commit()" if bad else "",
            )
            if bad:
                e.bad_methods.add(f"mark_{target}")
        # batch processing
        add(
            "process_pending",
            '''
            async def process_pending(self, $sess: AsyncSession, limit: int = $limit) -> int:
                """Process a claimed batch of $words in the caller's session."""
                batch = await $lock
                done = 0
                for ${m} in batch:
                    try:
                        await self.process_one($sess, ${m})
                    except ExternalServiceError as exc:
                        # mark it failed in memory; the caller's transaction writes it
                        ${m}.status = "failed"
                        ${m}.error = str(exc)[:500]
                        logger.warning("$m %s failed: %s", ${m}.id, exc)
                    else:
                        done += 1
                return done
            ''',
            lock=self.repo_call(e, "lock_{e}_batch", param, "limit"),
            limit=rng.choice((25, 50, 100, 200)),
        )
        add(
            "process_one",
            """
            async def process_one(self, $sess: AsyncSession, ${m}: $M) -> None:
                ${m}.status = "$active"
                ${m}.attempts += 1
                response = await self.client.post("/$ms/sync", json={"id": ${m}.id})
                if response.status_code >= 500:
                    raise ExternalServiceError(f"upstream answered {response.status_code}")
                ${m}.status = "$final"
                await $sess.flush()
            """,
            active=e.active,
            final=e.final,
        )
        bad = self.chance("service_begin")
        if bad:
            add(
                "retry_failed",
                """
                async def retry_failed(self, $sess: AsyncSession, max_attempts: int = 5) -> int:
                    async with $sess.begin():
                        ids = await self._failed_ids($sess, max_attempts)
                        count = await $requeue
                    logger.info("requeued %d $words", count)
                    return count
                """,
                requeue=self.repo_call(e, "update_{e}_status", param, f'ids, "{e.initial}"'),
            )
            e.bad_methods.add("retry_failed")
        else:
            add(
                "retry_failed",
                """
                async def retry_failed(self, $sess: AsyncSession, max_attempts: int = 5) -> int:
                    ids = await self._failed_ids($sess, max_attempts)
                    count = await $requeue
                    logger.info("requeued %d $words", count)
                    return count
                """,
                requeue=self.repo_call(e, "update_{e}_status", param, f'ids, "{e.initial}"'),
            )
        add(
            "_failed_ids",
            """
            async def _failed_ids(self, $sess: AsyncSession, max_attempts: int) -> list[int]:
                rows = await $listing
                return [row.id for row in rows if row.attempts < max_attempts]
            """,
            listing=self.repo_call(e, "list_{es}_by_status", param, '"failed", limit=500'),
        )
        add(
            "summary",
            """
            async def summary(self, $sess: AsyncSession) -> dict[str, int]:
                counts = await $count
                counts.setdefault("$initial", 0)
                counts["total"] = sum(counts.values())
                return counts
            """,
            count=self.repo_call(e, "count_{es}_by_status", param),
            initial=e.initial,
        )
        if e.parent is not None:
            p = e.parent
            add(
                f"attach_to_{p.snake}",
                """
                async def attach_to_$p(self, $sess: AsyncSession, ${m}_id: int, ${p}_id: int) -> $M:
                    ${m} = await self.get_or_raise($sess, ${m}_id)
                    parent = await $sess.get($P, ${p}_id)
                    if parent is None:
                        raise NotFoundError(f"$p {${p}_id} not found")
                    ${m}.${p}_id = parent.id
                    await $sess.flush()
                    return ${m}
                """,
                p=p.snake,
                P=p.name,
            )
        extras = self.service_extras(e, param)
        rng.shuffle(extras)
        size = rng.randint(170, 400)
        used = sum(code.count("\n") + 2 for _, code in methods) + 60
        for name, code in extras:
            if used >= size:
                break
            methods.append((name, code))
            used += code.count("\n") + 2
        # pure helpers (no session): a realistic share of service code
        add(
            "_validate",
            """
            def _validate(self, ${m}: $M) -> None:
                problems = []
                $checks
                if problems:
                    raise ValidationError("; ".join(problems))
            """,
            checks=self.checks(e),
        )
        add(
            "_check_transition",
            """
            @staticmethod
            def _check_transition(current: str, target: str) -> None:
                allowed = {
                    "$initial": {"$active", "failed"},
                    "$active": {"$final", "failed"},
                    "failed": {"$initial", "$active"},
                }
                if target not in allowed.get(current, set()):
                    raise ValidationError(f"cannot move from {current!r} to {target!r}")
            """,
            initial=e.initial,
            active=e.active,
            final=e.final,
        )
        for f in e.of_kind("str")[:2]:
            add(
                f"normalize_{f.name}",
                """
                @staticmethod
                def normalize_$f(value: str) -> str:
                    value = " ".join(value.split())
                    return value.lower() if "$f" in {"email", "domain", "slug"} else value
                """,
                f=f.name,
            )
        e.methods = {name for name, _ in methods}
        imports = [
            "from __future__ import annotations",
            "",
            "import logging",
            "",
            "from datetime import UTC, datetime, timedelta",
            "",
            "import httpx",
            "from pydantic import ValidationError as PydanticValidationError",
            "from sqlalchemy import func, select, update",
            "from sqlalchemy.exc import IntegrityError",
            "from sqlalchemy.ext.asyncio import AsyncSession",
            "",
            "from app.core.errors import (",
            "    ConflictError,",
            "    ExternalServiceError,",
            "    NotFoundError,",
            "    ValidationError,",
            ")",
            f"from app.models.{e.domain} import {M}"
            + (f", {e.parent.name}" if e.parent is not None else ""),
            self.repo_import(e),
            f"from app.schemas.{e.domain} import {M}Create, {M}Update",
            "",
            "logger = logging.getLogger(__name__)",
        ]
        init = _t(
            """
            def __init__(self, client: httpx.AsyncClient | None = None) -> None:
                self.client = client or httpx.AsyncClient(base_url=UPSTREAM_URL, timeout=10)
            """
        )
        body = "\n\n".join([init, *(code for _, code in methods)])
        text = "\n".join(
            [
                f'"""Business rules for {words}: methods use the session they are handed."""',
                "",
                "\n".join(imports),
                "",
                f'UPSTREAM_URL = "https://{e.domain}.internal.example.com"',
                "",
                "",
                f"class {M}Service:\n"
                + _indent(
                    f'"""Operations on {words}; routers and jobs own the transaction."""\n\n' + body
                ),
            ]
        )
        self.write(f"app/services/{e.service_module}.py", text)

    def service_extras(self, e: Entity, param: str) -> list[tuple[str, str]]:
        """Optional service methods (the service picks some, to vary its length)."""
        rng = self.rng
        M, m, ms = e.name, e.snake, e.plural
        v = {"M": M, "m": m, "ms": ms, "sess": param, "words": ms.replace("_", " ")}
        v.update(initial=e.initial, active=e.active, final=e.final)
        out: list[tuple[str, str]] = []

        def tail(name: str) -> str:
            """A write method's last step: nothing, or (rarely) a commit of the borrowed
            session (TX002)."""
            if self.chance("service_commit"):
                e.bad_methods.add(name)
                return f"await {param}.commit()"
            return ""

        def add(name: str, template: str, **extra: object) -> None:
            out.append((name, _t(template, **v, **extra)))

        add(
            f"bulk_mark_{e.final}",
            '''
            async def bulk_mark_$final(self, $sess: AsyncSession, ids: list[int]) -> int:
                """Move many $words to "$final" at once; the others are left alone."""
                if not ids:
                    return 0
                rows = await $many
                moved = 0
                for row in rows:
                    if row.status == "$active":
                        row.status = "$final"
                        moved += 1
                await $sess.flush()
                $tail
                return moved
            ''',
            many=self.repo_call(e, "get_{es}_by_ids", param, "ids"),
            tail=tail(f"bulk_mark_{e.final}"),
        )
        add(
            "import_rows",
            '''
            async def import_rows(self, $sess: AsyncSession, rows: list[dict[str, object]]) -> int:
                """Create $words from an uploaded file; invalid rows are logged and skipped."""
                created = []
                for number, raw in enumerate(rows, start=1):
                    try:
                        data = ${M}Create.model_validate(raw)
                    except PydanticValidationError as exc:
                        logger.info("row %d: %d problems, skipped", number, exc.error_count())
                        continue
                    created.append($M(**data.model_dump()))
                $sess.add_all(created)
                await $sess.flush()
                $tail
                return len(created)
            ''',
            tail=tail("import_rows"),
        )
        add(
            "reconcile",
            '''
            async def reconcile(self, $sess: AsyncSession) -> dict[str, int]:
                """Flag the $words that the upstream system no longer knows."""
                response = await self.client.get("/$ms/ids")
                response.raise_for_status()
                known = {int(value) for value in response.json()}
                rows = await $sess.scalars(select($M).where($M.status != "failed"))
                missing = 0
                for row in rows:
                    if row.id not in known:
                        row.status = "failed"
                        row.error = "unknown upstream"
                        missing += 1
                return {"known": len(known), "missing": missing}
            ''',
        )
        add(
            "export_rows",
            """
            async def export_rows(
                self, $sess: AsyncSession, status: str = "$final"
            ) -> list[dict[str, object]]:
                rows = await $listing
                return [self.to_event(row) for row in rows]
            """,
            listing=self.repo_call(e, "list_{es}_by_status", param, "status, limit=10_000"),
        )
        add(
            "to_event",
            """
            @staticmethod
            def to_event(${m}: $M) -> dict[str, object]:
                return {
                    "type": f"$m.{${m}.status}",
                    "id": ${m}.id,
                    "attempts": ${m}.attempts,
                    "error": ${m}.error,
                    "updated_at": ${m}.updated_at.isoformat() if ${m}.updated_at else None,
                }
            """,
        )
        add(
            "archive_finished",
            '''
            async def archive_finished(self, $sess: AsyncSession, days: int = $days) -> int:
                """Archive the $words finished more than `days` ago."""
                cutoff = datetime.now(UTC) - timedelta(days=days)
                result = await $sess.execute(
                    update($M)
                    .where($M.status == "$final", $M.updated_at < cutoff)
                    .values(status="archived")
                )
                $tail
                return result.rowcount
            ''',
            days=rng.choice((14, 30, 90)),
            tail=tail("archive_finished"),
        )
        add(
            "backoff_seconds",
            """
            @staticmethod
            def backoff_seconds(attempts: int, base: int = $base, cap: int = 3600) -> int:
                return min(cap, base * 2 ** max(0, attempts - 1))
            """,
            base=rng.choice((5, 10, 30)),
        )
        add(
            "sync_from_upstream",
            '''
            async def sync_from_upstream(self, $sess: AsyncSession, ${m}_id: int) -> $M:
                """Refresh one $m from the upstream system."""
                ${m} = await self.get_or_raise($sess, ${m}_id)
                response = await self.client.get(f"/$ms/{${m}_id}")
                if response.status_code == 404:
                    ${m}.status = "failed"
                    ${m}.error = "gone upstream"
                    return ${m}
                response.raise_for_status()
                for key, value in response.json().items():
                    if hasattr(${m}, key) and key not in {"id", "created_at"}:
                        setattr(${m}, key, value)
                $tail
                return ${m}
            ''',
            tail=tail("sync_from_upstream"),
        )
        add(
            "count_recent",
            """
            async def count_recent(self, $sess: AsyncSession, hours: int = 24) -> int:
                since = datetime.now(UTC) - timedelta(hours=hours)
                total = await $sess.scalar(select(func.count($M.id)).where($M.created_at >= since))
                return int(total or 0)
            """,
        )
        add(
            "purge_failed",
            '''
            async def purge_failed(self, $sess: AsyncSession, ids: list[int]) -> int:
                """Delete failed $words that an operator gave up on."""
                rows = await $many
                deleted = 0
                for row in rows:
                    if row.status == "failed":
                        await $sess.delete(row)
                        deleted += 1
                $tail
                return deleted
            ''',
            many=self.repo_call(e, "get_{es}_by_ids", param, "ids"),
            tail=tail("purge_failed"),
        )
        for f in e.of_kind("int", "float")[:2]:
            add(
                f"adjust_{f.name}",
                """
                async def adjust_$f(self, $sess: AsyncSession, ${m}_id: int, delta: $typ) -> $M:
                    ${m} = await self.get_or_raise($sess, ${m}_id)
                    value = (${m}.$f or 0) + delta
                    if value < 0:
                        raise ValidationError("$f would become negative")
                    ${m}.$f = value
                    return ${m}
                """,
                f=f.name,
                typ=f.annotation,
            )
        if any(f.kind == "bool" for f in e.fields):
            f = e.of_kind("bool")[0]
            add(
                f"toggle_{f.name}",
                """
                async def toggle_$f(self, $sess: AsyncSession, ${m}_id: int) -> bool:
                    ${m} = await self.get_or_raise($sess, ${m}_id)
                    ${m}.$f = not ${m}.$f
                    logger.info("$m %s: $f is now %s", ${m}_id, ${m}.$f)
                    return ${m}.$f
                """,
                f=f.name,
            )
        return out

    def checks(self, e: Entity) -> str:
        out = []
        m = e.snake
        for f in e.fields:
            if f.kind == "str" and "None" not in f.annotation:
                out.append(f'if not {m}.{f.name}:\n    problems.append("{f.name} is required")')
            elif f.kind in ("int", "float"):
                out.append(
                    f"if {m}.{f.name} is not None and {m}.{f.name} < 0:\n"
                    f'    problems.append("{f.name} must not be negative")'
                )
        return "\n".join(out) or "pass"

    # --- app/schemas -----------------------------------------------------------------------

    def schemas(self, domain: str, entities: list[Entity]) -> None:
        parts = [
            f'"""Request and response bodies of the {domain} API."""',
            "",
            "from __future__ import annotations",
            "",
            "from datetime import datetime",
            "",
            "from pydantic import BaseModel, ConfigDict, Field, field_validator",
        ]
        for e in entities:
            fields = []
            optional = []
            for f in e.fields:
                if f.kind == "str" and "None" not in f.annotation:
                    fields.append(f"{f.name}: str = Field(min_length=1, max_length=255)")
                else:
                    default = f.example if "None" not in f.annotation else "None"
                    fields.append(f"{f.name}: {f.annotation} = {default}")
                optional.append(f"{f.name}: {f.annotation.replace(' | None', '')} | None = None")
            if e.parent is not None:
                fields.append(f"{e.parent.snake}_id: int")
            first_str = e.of_kind("str")[0].name
            parts.append(
                "\n\n"
                + _t(
                    '''
                    class ${M}Base(BaseModel):
                        $fields


                    class ${M}Create(${M}Base):
                        """What a client sends to create one $words."""

                        @field_validator("$first")
                        @classmethod
                        def strip_$first(cls, value: str) -> str:
                            return value.strip()


                    class ${M}Update(BaseModel):
                        """Fields a client may change; absent fields are left as they are."""

                        $optional


                    class ${M}Read(${M}Base):
                        model_config = ConfigDict(from_attributes=True)

                        id: int
                        status: str
                        attempts: int
                        error: str | None = None
                        created_at: datetime
                        updated_at: datetime


                    class ${M}Page(BaseModel):
                        items: list[${M}Read]
                        next_cursor: int | None = None
                    ''',
                    M=e.name,
                    words=e.snake.replace("_", " "),
                    first=first_str,
                    fields="\n".join(fields),
                    optional="\n".join(optional),
                )
            )
        self.write(f"app/schemas/{domain}.py", "\n".join(parts))

    # --- app/routers -----------------------------------------------------------------------

    def router(self, domain: str, group: list[Entity]) -> None:
        """One router module: the routes of one entity, or of a parent and its children
        (one APIRouter each)."""
        rng = self.rng
        annotated = rng.random() < 0.4
        dep = (
            "session: Annotated[AsyncSession, Depends(get_db_session)]"
            if annotated
            else "session: AsyncSession = Depends(get_db_session)"
        )
        single = len(group) == 1
        module = group[0].snake if single else domain
        target = rng.randint(130, 330) if single else rng.randint(280, 400)
        blocks: list[str] = []
        declarations: list[str] = []
        imports: list[str] = []
        for e in group:
            rvar = "router" if single else f"{e.snake}_router"
            svar = "service" if single else f"{e.snake}_service"
            routes, needs = self.routes(e, dep, target // len(group))
            blocks += [
                code.replace("@router.", f"@{rvar}.").replace("await service.", f"await {svar}.")
                for code in routes
            ]
            path = e.plural.replace("_", "-")
            declarations += [
                f'{rvar} = APIRouter(prefix="/{path}", tags=["{e.domain}"])',
                f"{svar} = {e.name}Service()",
            ]
            imports += needs
            self.router_vars.append((module, rvar))
        first = [
            "from __future__ import annotations",
            "",
            *(["from typing import Annotated", ""] if annotated else []),
            "from fastapi import APIRouter, Depends, HTTPException, Query, Response, status",
            "from sqlalchemy import func, select",
            "from sqlalchemy.ext.asyncio import AsyncSession",
            "",
            "from app.core.db import get_db_session",
            "from app.core.errors import ConflictError, ValidationError",
        ]
        names = ", ".join(e.plural.replace("_", " ") for e in group)
        text = "\n".join(
            [
                f'"""HTTP API for {names}."""',
                "",
                "\n".join(first + sorted(set(imports))),
                "",
                "\n".join(declarations),
                "",
                "",
                "\n\n\n".join(blocks),
            ]
        )
        self.write(f"app/routers/{module}.py", text)

    def routes(self, e: Entity, dep: str, budget: int) -> tuple[list[str], list[str]]:
        """The route functions of `e` (about `budget` lines) and the imports they need."""
        rng = self.rng
        M, m, ms = e.name, e.snake, e.plural
        common = {"M": M, "m": m, "ms": ms, "dep": dep, "path": ms.replace("_", "-")}
        routes: list[str] = []

        def add(template: str, **extra: object) -> None:
            routes.append(_t(template, **common, **extra))

        add(
            """
            @router.get("", response_model=${M}Page)
            async def list_$ms(
                $dep,
                status_filter: str | None = Query(None, alias="status"),
                after: int = 0,
                limit: int = Query(50, ge=1, le=500),
            ) -> ${M}Page:
                rows, cursor = await $page
                if status_filter is not None:
                    rows = [row for row in rows if row.status == status_filter]
                items = [${M}Read.model_validate(row) for row in rows]
                return ${M}Page(items=items, next_cursor=cursor)
            """,
            page=self.repo_call(e, "page_{es}", "session", "after_id=after, page_size=limit")
            if self._has_repo_method(e, "page_{es}")
            else f"_page_{ms}(session, after, limit)",
        )
        add(
            """
            @router.get("/{${m}_id}", response_model=${M}Read)
            async def get_$m(${m}_id: int, $dep) -> $M:
                return await service.get_or_raise(session, ${m}_id)
            """
        )
        style = rng.randrange(3)
        if style == 0:
            add(
                """
                @router.post("", status_code=status.HTTP_201_CREATED, response_model=${M}Read)
                async def create_$m(payload: ${M}Create, $dep) -> $M:
                    async with session.begin():
                        ${m} = await service.create(session, payload)
                    return ${m}
                """
            )
        elif style == 1:
            add(
                """
                @router.post("", status_code=status.HTTP_201_CREATED, response_model=${M}Read)
                async def create_$m(payload: ${M}Create, $dep) -> $M:
                    ${m} = await service.create(session, payload)
                    await session.commit()
                    await session.refresh(${m})
                    return ${m}
                """
            )
        else:
            add(
                """
                @router.post("", status_code=status.HTTP_201_CREATED, response_model=${M}Read)
                async def create_$m(payload: ${M}Create, $dep) -> $M:
                    try:
                        ${m} = await service.create(session, payload)
                        await session.commit()
                    except ConflictError as exc:
                        await session.rollback()
                        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
                    return ${m}
                """
            )
        add(
            """
            @router.patch("/{${m}_id}", response_model=${M}Read)
            async def update_$m(${m}_id: int, payload: ${M}Update, $dep) -> $M:
                ${m} = await service.update(session, ${m}_id, payload)
                await session.commit()
                return ${m}
            """
        )
        for target in (e.final, "failed"):
            add(
                """
                @router.post("/{${m}_id}/$target", response_model=${M}Read)
                async def mark_${m}_$target(${m}_id: int, $dep, reason: str | None = None) -> $M:
                    async with session.begin():
                        ${m} = await service.mark_$target(session, ${m}_id, reason)
                    return ${m}
                """,
                target=target,
            )
        add(
            """
            @router.post("/retry-failed")
            async def retry_failed_$ms($dep, max_attempts: int = Query(5, ge=1)) -> dict[str, int]:
                async with session.begin():
                    count = await service.retry_failed(session, max_attempts)
                return {"requeued": count}
            """
        )
        add(
            """
            @router.get("/stats/summary")
            async def ${ms}_summary($dep) -> dict[str, int]:
                return await service.summary(session)
            """
        )
        add(
            """
            @router.delete("/{${m}_id}", status_code=status.HTTP_204_NO_CONTENT)
            async def delete_$m(${m}_id: int, $dep) -> None:
                ${m} = await service.get_or_raise(session, ${m}_id)
                await session.delete(${m})
                await session.commit()
            """
        )
        for f in e.of_kind("str")[:2]:
            add(
                """
                @router.get("/by-$fdash/{value}", response_model=${M}Read)
                async def get_${m}_by_$f(value: str, $dep) -> $M:
                    ${m} = await session.scalar(select($M).where($M.$f == value))
                    if ${m} is None:
                        raise HTTPException(status.HTTP_404_NOT_FOUND, "$m not found")
                    return ${m}
                """,
                f=f.name,
                fdash=f.name.replace("_", "-"),
            )
        if e.parent is not None:
            add(
                """
                @router.get("/for-$p/{${p}_id}", response_model=list[${M}Read])
                async def list_${ms}_for_$p(${p}_id: int, $dep) -> list[$M]:
                    rows = await session.scalars(
                        select($M).where($M.${p}_id == ${p}_id).order_by($M.id)
                    )
                    return list(rows)
                """,
                p=e.parent.snake,
            )
        extras: list[tuple[str, dict[str, object]]] = []
        if f"bulk_mark_{e.final}" in e.methods:
            extras.append(
                (
                    """
                    @router.post("/bulk/$final")
                    async def bulk_mark_${ms}_$final(ids: list[int], $dep) -> dict[str, int]:
                        async with session.begin():
                            moved = await service.bulk_mark_$final(session, ids)
                        return {"moved": moved, "asked": len(ids)}
                    """,
                    {"final": e.final},
                )
            )
        if "import_rows" in e.methods:
            extras.append(
                (
                    """
                    @router.post("/import", status_code=status.HTTP_202_ACCEPTED)
                    async def import_$ms(rows: list[dict[str, object]], $dep) -> dict[str, int]:
                        if len(rows) > 5_000:
                            raise HTTPException(
                                status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, "too many rows"
                            )
                        created = await service.import_rows(session, rows)
                        await session.commit()
                        return {"created": created, "skipped": len(rows) - created}
                    """,
                    {},
                )
            )
        if "export_rows" in e.methods:
            extras.append(
                (
                    """
                    @router.get("/export/json")
                    async def export_${ms}_json(
                        $dep, status_filter: str = "$final"
                    ) -> list[dict[str, object]]:
                        return await service.export_rows(session, status_filter)
                    """,
                    {"final": e.final},
                )
            )
        if "reconcile" in e.methods:
            extras.append(
                (
                    """
                    @router.post("/reconcile")
                    async def reconcile_$ms($dep) -> dict[str, int]:
                        async with session.begin():
                            return await service.reconcile(session)
                    """,
                    {},
                )
            )
        if "sync_from_upstream" in e.methods:
            extras.append(
                (
                    """
                    @router.post("/{${m}_id}/sync", response_model=${M}Read)
                    async def sync_$m(${m}_id: int, $dep) -> $M:
                        async with session.begin():
                            ${m} = await service.sync_from_upstream(session, ${m}_id)
                        return ${m}
                    """,
                    {},
                )
            )
        if "purge_failed" in e.methods:
            extras.append(
                (
                    """
                    @router.post("/purge-failed")
                    async def purge_failed_$ms(ids: list[int], $dep) -> dict[str, int]:
                        deleted = await service.purge_failed(session, ids)
                        await session.commit()
                        return {"deleted": deleted}
                    """,
                    {},
                )
            )
        for f in e.of_kind("str")[:1]:
            extras.append(
                (
                    """
                    @router.get("/search", response_model=list[${M}Read])
                    async def search_$ms(
                        $dep, q: str = Query(min_length=2), limit: int = Query(20, le=100)
                    ) -> list[$M]:
                        rows = await session.scalars(
                            select($M).where($M.$f.ilike(f"%{q}%")).order_by($M.id).limit(limit)
                        )
                        return list(rows)
                    """,
                    {"f": f.name},
                )
            )
        extras.append(
            (
                """
                @router.get("/stats/count")
                async def count_$ms($dep, status_filter: str | None = None) -> dict[str, int]:
                    query = select(func.count($M.id))
                    if status_filter is not None:
                        query = query.where($M.status == status_filter)
                    return {"count": int(await session.scalar(query) or 0)}
                """,
                {},
            )
        )
        extras.append(
            (
                """
                @router.post("/{${m}_id}/retry", response_model=${M}Read)
                async def retry_$m(${m}_id: int, $dep) -> $M:
                    ${m} = await service.get_or_raise(session, ${m}_id)
                    if ${m}.status != "failed":
                        raise HTTPException(status.HTTP_409_CONFLICT, "only failed rows retry")
                    ${m}.status = "$initial"
                    ${m}.error = None
                    await session.commit()
                    return ${m}
                """,
                {"initial": e.initial},
            )
        )
        extras.append(
            (
                """
                @router.get("/latest", response_model=list[${M}Read])
                async def latest_$ms($dep, limit: int = Query(10, ge=1, le=100)) -> list[$M]:
                    rows = await session.scalars(
                        select($M).order_by($M.updated_at.desc()).limit(limit)
                    )
                    return list(rows)
                """,
                {},
            )
        )
        if "archive_finished" in e.methods:
            extras.append(
                (
                    """
                    @router.post("/archive")
                    async def archive_$ms($dep, days: int = Query(30, ge=1)) -> dict[str, int]:
                        async with session.begin():
                            archived = await service.archive_finished(session, days)
                        return {"archived": archived}
                    """,
                    {},
                )
            )
        if "count_recent" in e.methods:
            extras.append(
                (
                    """
                    @router.get("/stats/recent")
                    async def recent_$ms(
                        $dep, hours: int = Query(24, ge=1, le=720)
                    ) -> dict[str, int]:
                        created = await service.count_recent(session, hours)
                        return {"hours": hours, "created": created}
                    """,
                    {},
                )
            )
        for name in sorted(e.methods):
            if name.startswith("adjust_"):
                attr = name.removeprefix("adjust_")
                extras.append(
                    (
                        """
                        @router.post("/{${m}_id}/$fdash", response_model=${M}Read)
                        async def adjust_${m}_$f(${m}_id: int, delta: int, $dep) -> $M:
                            try:
                                ${m} = await service.adjust_$f(session, ${m}_id, delta)
                            except ValidationError as exc:
                                raise HTTPException(422, str(exc)) from exc
                            await session.commit()
                            return ${m}
                        """,
                        {"f": attr, "fdash": attr.replace("_", "-")},
                    )
                )
            elif name.startswith("toggle_"):
                attr = name.removeprefix("toggle_")
                extras.append(
                    (
                        """
                        @router.post("/{${m}_id}/toggle-$fdash")
                        async def toggle_${m}_$f(${m}_id: int, $dep) -> dict[str, bool]:
                            async with session.begin():
                                value = await service.toggle_$f(session, ${m}_id)
                            return {"$f": value}
                        """,
                        {"f": attr, "fdash": attr.replace("_", "-")},
                    )
                )
        if e.parent is not None:
            extras.append(
                (
                    """
                    @router.put("/{${m}_id}/$p/{${p}_id}", response_model=${M}Read)
                    async def attach_${m}_to_$p(${m}_id: int, ${p}_id: int, $dep) -> $M:
                        async with session.begin():
                            ${m} = await service.attach_to_$p(session, ${m}_id, ${p}_id)
                        return ${m}
                    """,
                    {"p": e.parent.snake},
                )
            )
        rng.shuffle(extras)
        used = sum(code.count("\n") + 3 for code in routes) + 20
        for template, extra in extras:
            if used >= budget:
                break
            add(template, **extra)
            used += routes[-1].count("\n") + 3
        if self.chance("route_raw"):
            add(
                """
                @router.get("/export/csv")
                async def export_${ms}_csv($dep, status_filter: str = "$final") -> Response:
                    result = await session.execute(
                        "SELECT id, status, created_at FROM $table "
                        f"WHERE status = '{status_filter}'"
                    )
                    lines = ["id,status,created_at"]
                    for row in result:
                        lines.append(f"{row.id},{row.status},{row.created_at.isoformat()}")
                    return Response("\\n".join(lines), media_type="text/csv")
                """,
                final=e.final,
                table=e.table,
            )
        helper = ""
        if not self._has_repo_method(e, "page_{es}"):
            helper = _t(
                """
                async def _page_$ms(
                    session: AsyncSession, after: int, limit: int
                ) -> tuple[list[$M], int | None]:
                    rows = list(
                        await session.scalars(
                            select($M).where($M.id > after).order_by($M.id).limit(limit + 1)
                        )
                    )
                    return rows[:limit], (rows[limit - 1].id if len(rows) > limit else None)
                """,
                M=M,
                ms=ms,
            )
        imports = [
            f"from app.models.{e.domain} import {M}",
            f"from app.schemas.{e.domain} import {M}Create, {M}Page, {M}Read, {M}Update",
            f"from app.services.{e.service_module} import {M}Service",
        ]
        if self._has_repo_method(e, "page_{es}"):
            imports.append(self.repo_import(e))
        return [*([helper] if helper else []), *routes], imports

    def _has_repo_method(self, e: Entity, pattern: str) -> bool:
        src = self.files.get(f"app/repositories/{e.repo_module}.py", "")
        if e.style == "class":
            short = _method_name(pattern)
            return f"async def {short}(" in src
        return f"async def {pattern.format(e=e.snake, es=e.plural)}(" in src

    # --- app/schedulers and app/workers ---------------------------------------------------

    def job(self, e: Entity, kind: str, n: int) -> tuple[str, str]:
        """(function name, code) of one background job on `e`."""
        rng = self.rng
        s = rng.choice(BOUND_NAMES)
        M, m, ms = e.name, e.snake, e.plural
        words = ms.replace("_", " ")
        nested = self.chance("job_nested_begin")

        def block(code: str) -> str:
            """The body of the factory block: `code`, under a nested begin() (TX001)."""
            code = textwrap.dedent(code).strip("\n")
            return f"async with {s}.begin():\n" + _indent(code) if nested else code

        header = f"async with get_background_session() as {s}:"
        if kind == "process":
            name = f"process_{e.initial}_{ms}"
            code = _t(
                '''
                async def $name() -> int:
                    """Claim and process a batch of $initial $words."""
                    $header
                        $body
                    logger.info("processed %d $words", processed)
                    return processed
                ''',
                name=name,
                initial=e.initial,
                words=words,
                header=header,
                body=block(f"processed = await {M}Service().process_pending({s}, BATCH_SIZE)"),
            )
        elif kind == "expire":
            name = f"expire_stale_{ms}"
            commit = f"await {s}.commit()" if self.chance("job_commit") else ""
            code = _t(
                '''
                async def $name(max_age_minutes: int = $age) -> int:
                    """Rows stuck in "$active" for too long go back to "$initial"."""
                    cutoff = datetime.now(UTC) - timedelta(minutes=max_age_minutes)
                    $header
                        $body
                    if expired:
                        logger.warning("expired %d stuck $words", expired)
                    return expired
                ''',
                name=name,
                age=rng.choice((15, 30, 60, 120)),
                active=e.active,
                initial=e.initial,
                words=words,
                header=header,
                body=block(
                    f"""
                    result = await {s}.execute(
                        update({M})
                        .where({M}.status == "{e.active}", {M}.updated_at < cutoff)
                        .values(status="{e.initial}", attempts={M}.attempts + 1)
                    )
                    expired = result.rowcount
                    {commit}
                    """
                ),
            )
        elif kind == "mark":
            name = f"finish_{ms}_batch_{n}"
            split = self.chance("job_split")
            in_except = not split and self.chance("job_except_session")
            method = "mark_" + e.final
            if split:  # TX004: the status update in a second session block
                second = _t(
                    """
                    async with get_background_session() as status_session:
                        for ${m}_id in done_ids:
                            await ${M}Service().$method(status_session, ${m}_id)
                    """,
                    m=m,
                    M=M,
                    method=method,
                )
                loop = "done_ids.append(row.id)"
            else:
                second = ""
                loop = f"await {M}Service().{method}({s}, row.id)\ndone_ids.append(row.id)"
            if in_except:  # TX005: the failure written in its own session
                handler = _t(
                    """
                    async with get_background_session() as failure_session:
                        failed = await failure_session.get($M, row.id)
                        if failed is not None:
                            failed.status = "failed"
                            failed.error = str(exc)[:500]
                    """,
                    M=M,
                )
            else:
                handler = 'row.status = "failed"\nrow.error = str(exc)[:500]'
            body = _t(
                """
                rows = await $s.scalars(
                    select($M).where($M.status == "$active").limit(limit)
                )
                for row in rows:
                    try:
                        $loop
                    except ExternalServiceError as exc:
                        $handler
                        logger.warning("could not finish $m %s", row.id)
                """,
                s=s,
                M=M,
                m=m,
                active=e.active,
                loop=loop,
                handler=handler,
            )
            code = _t(
                '''
                async def $name(limit: int = $limit) -> list[int]:
                    """Finish the $active $words whose upstream work is done."""
                    done_ids: list[int] = []
                    $header
                        $body
                    $second
                    return done_ids
                ''',
                name=name,
                limit=rng.choice((20, 50, 100, 250, 500)),
                active=e.active,
                words=words,
                header=header,
                body=block(body),
                second=second,
            )
        elif kind == "cleanup":
            name = f"cleanup_{ms}"
            repo = self.repo_call(e, "update_{e}_status", s, f'ids, "{e.initial}"')
            code = _t(
                '''
                async def $name() -> int:
                    """Requeue the failed $words that may be retried."""
                    $header
                        $body
                    return len(ids)
                ''',
                name=name,
                words=words,
                header=header,
                body=block(
                    f"""
                    rows = await {s}.scalars(select({M}).where({M}.status == "failed"))
                    ids = [row.id for row in rows if row.can_retry()]
                    await {repo}
                    """
                ),
            )
        else:  # "summary"
            name = f"log_{ms}_summary"
            code = _t(
                """
                async def $name() -> dict[str, int]:
                    $header
                        $body
                    logger.info("$words: %s", counts)
                    return counts
                """,
                name=name,
                words=words,
                header=header,
                body=block(f"counts = await {M}Service().summary({s})"),
            )
        return name, code

    def scheduler(self, domain: str, entities: list[Entity]) -> None:
        rng = self.rng
        jobs: list[tuple[str, str]] = []
        target = rng.randint(110, 360)
        kinds = ["process", "expire", "mark", "cleanup", "summary"]
        n = 0
        while sum(c.count("\n") + 3 for _, c in jobs) < target - 40 and n < len(entities) * len(
            kinds
        ):
            e = entities[n % len(entities)]
            kind = kinds[(n // len(entities)) % len(kinds)]
            name, code = self.job(e, kind, n)
            if name not in {j for j, _ in jobs}:
                jobs.append((name, code))
            n += 1
        registrations = "\n".join(
            f'scheduler.add_job({name}, "interval", minutes={rng.choice((1, 5, 10, 15, 60))}, '
            f'id="{domain}.{name}", max_instances=1, coalesce=True)'
            for name, _ in jobs
        )
        text = "\n".join(
            [
                f'"""Scheduled jobs of the {domain} domain: one background session per job."""',
                "",
                self.job_imports(entities),
                "",
                f"BATCH_SIZE = {rng.choice((25, 50, 100))}",
                "",
                "",
                "\n\n\n".join(code for _, code in jobs),
                "",
                "",
                "def register(scheduler: AsyncIOScheduler) -> None:",
                _indent(registrations),
            ]
        )
        text = text.replace(
            "from sqlalchemy import select, update\n",
            "from apscheduler.schedulers.asyncio import AsyncIOScheduler\n"
            "from sqlalchemy import select, update\n",
            1,
        )
        self.write(f"app/schedulers/{domain}_jobs.py", text)

    def job_imports(self, entities: list[Entity]) -> str:
        lines = [
            "from __future__ import annotations",
            "",
            "import logging",
            "from datetime import UTC, datetime, timedelta",
            "",
            "from sqlalchemy import select, update",
            "",
            "from app.core.db import get_background_session",
            "from app.core.errors import ExternalServiceError",
            "from app.models.{} import {}".format(
                entities[0].domain, ", ".join(e.name for e in entities)
            ),
        ]
        lines += sorted({self.repo_import(e) for e in entities if e.style == "functions"})
        lines += sorted({self.repo_import(e) for e in entities if e.style == "class"})
        lines += [f"from app.services.{e.service_module} import {e.name}Service" for e in entities]
        lines += ["", "logger = logging.getLogger(__name__)"]
        return "\n".join(lines)

    def worker(self, domain: str, entities: list[Entity]) -> None:
        rng = self.rng
        handlers: list[tuple[str, str]] = []
        for e in entities:
            s = rng.choice(BOUND_NAMES)
            M, m, ms = e.name, e.snake, e.plural
            nested = self.chance("job_nested_begin")
            commit = self.chance("job_commit")
            core = _t(
                """
                ${m} = await $s.get($M, ${m}_id)
                if ${m} is None:
                    logger.warning("$m %s vanished before its event was handled", ${m}_id)
                    return
                if ${m}.is_terminal:
                    return
                try:
                    await ${M}Service().process_one($s, ${m})
                except ExternalServiceError as exc:
                    ${m}.status = "failed"
                    ${m}.error = str(exc)[:500]
                    raise
                $commit
                """,
                M=M,
                m=m,
                s=s,
                commit=f"await {s}.commit()" if commit else "",
            )
            if nested:
                core = f"async with {s}.begin():\n" + _indent(core)
            handlers.append(
                (
                    f"handle_{m}_created",
                    _t(
                        '''
                        async def handle_${m}_created(ctx: dict[str, object], ${m}_id: int) -> None:
                            """Queue handler: the API created this $words."""
                            async with get_background_session() as $s:
                                $core
                        ''',
                        m=m,
                        s=s,
                        words=m.replace("_", " "),
                        core=core,
                    ),
                )
            )
            handlers.append(
                (
                    f"handle_{ms}_bulk_retry",
                    _t(
                        '''
                        async def handle_${ms}_bulk_retry(
                            ctx: dict[str, object], max_attempts: int = 5
                        ) -> int:
                            """Queue handler: an operator asked to retry every failed $word."""
                            async with get_background_session() as $s:
                                return await ${M}Service().retry_failed($s, max_attempts)
                        ''',
                        M=M,
                        ms=ms,
                        s=s,
                        word=m.replace("_", " "),
                    ),
                )
            )
            if rng.random() < 0.6:
                handlers.append(
                    (
                        f"handle_{m}_webhook",
                        _t(
                            '''
                            async def handle_${m}_webhook(
                                ctx: dict[str, object], payload: dict[str, object]
                            ) -> None:
                                """Queue handler: the upstream system reported on one $word."""
                                ${m}_id = int(str(payload["id"]))
                                outcome = str(payload.get("outcome", "ok"))
                                async with get_background_session() as $s:
                                    service = ${M}Service()
                                    if outcome == "ok":
                                        await service.mark_$final($s, ${m}_id)
                                    else:
                                        await service.mark_failed($s, ${m}_id, reason=outcome[:200])
                            ''',
                            M=M,
                            m=m,
                            s=s,
                            final=e.final,
                            word=m.replace("_", " "),
                        ),
                    )
                )
        names = ", ".join(name for name, _ in handlers)
        text = "\n".join(
            [
                f'"""Queue workers of the {domain} domain (arq): one session per task."""',
                "",
                self.job_imports(entities)
                .replace("from sqlalchemy import select, update\n\n", "")
                .replace("from datetime import UTC, datetime, timedelta\n", ""),
                "",
                "",
                "\n\n\n".join(code for _, code in handlers),
                "",
                "",
                "class WorkerSettings:",
                f'    """arq settings: `arq app.workers.{domain}_worker.WorkerSettings`."""',
                "",
                f"    functions = [{names}]",
                f"    max_jobs = {rng.choice((5, 10, 20))}",
                f"    job_timeout = {rng.choice((60, 300, 600))}",
            ]
        )
        # the repository imports are not used by the handlers
        text = "\n".join(
            line for line in text.split("\n") if not line.startswith("from app.repositories")
        )
        self.write(f"app/workers/{domain}_worker.py", text)

    # --- app/core and packages -------------------------------------------------------------

    def core(self) -> None:
        self.write(
            "app/core/db.py",
            _t(
                '''
                """Database engine, session factories and the FastAPI session dependency."""

                from __future__ import annotations

                from collections.abc import AsyncIterator
                from contextlib import asynccontextmanager

                from sqlalchemy.ext.asyncio import (
                    AsyncSession,
                    async_sessionmaker,
                    create_async_engine,
                )

                from app.core.config import settings

                # Connection settings are the one place where SQL is allowed.
                engine = create_async_engine(
                    settings.database_url,
                    pool_size=settings.pool_size,
                    pool_pre_ping=True,
                    connect_args={"init_command": "SET SESSION time_zone = '+00:00'"},
                )

                SessionLocal = async_sessionmaker(
                    engine, class_=AsyncSession, expire_on_commit=False
                )


                @asynccontextmanager
                async def get_background_session() -> AsyncIterator[AsyncSession]:
                    """One session and one transaction for a background task.

                    Commits when the block exits normally and rolls back when it raises, so code
                    inside the block never calls begin(), commit() or rollback() itself.
                    """
                    async with SessionLocal() as session:
                        async with session.begin():
                            yield session


                async def get_db_session() -> AsyncIterator[AsyncSession]:
                    """FastAPI dependency: a request-scoped session; routes own the transaction."""
                    async with SessionLocal() as session:
                        yield session
                '''
            ),
        )
        self.write(
            "app/core/config.py",
            _t(
                '''
                """Settings from the environment."""

                from __future__ import annotations

                from pydantic_settings import BaseSettings, SettingsConfigDict


                class Settings(BaseSettings):
                    model_config = SettingsConfigDict(env_prefix="APP_", env_file=".env")

                    database_url: str = "mysql+aiomysql://app:app@localhost:3306/app"
                    pool_size: int = 10
                    redis_url: str = "redis://localhost:6379/0"
                    upstream_timeout_seconds: float = 10.0
                    page_size_max: int = 500


                settings = Settings()
                '''
            ),
        )
        self.write(
            "app/core/errors.py",
            _t(
                '''
                """Domain errors, mapped to HTTP statuses by app.main."""


                class DomainError(Exception):
                    status_code = 400


                class NotFoundError(DomainError):
                    status_code = 404


                class ConflictError(DomainError):
                    status_code = 409


                class ValidationError(DomainError):
                    status_code = 422


                class ExternalServiceError(DomainError):
                    status_code = 502
                '''
            ),
        )

    def packages(self, domains: list[tuple[str, list[Entity]]]) -> None:
        self.write("app/__init__.py", '"""The service."""')
        self.write("app/core/__init__.py", '"""Configuration, database and errors."""')
        self.write(
            "app/models/base.py",
            _t(
                '''
                """The declarative base (naming convention for Alembic)."""

                from sqlalchemy import MetaData
                from sqlalchemy.orm import DeclarativeBase

                NAMING = {
                    "ix": "ix_%(column_0_label)s",
                    "uq": "uq_%(table_name)s_%(column_0_name)s",
                    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
                    "pk": "pk_%(table_name)s",
                }


                class Base(DeclarativeBase):
                    metadata = MetaData(naming_convention=NAMING)
                '''
            ),
        )
        models = [
            f"from app.models.{d} import {', '.join(e.name for e in es)}" for d, es in domains
        ]
        self.write(
            "app/models/__init__.py",
            '"""Every model, imported so that Base.metadata knows them all."""\n\n'
            "from app.models.base import Base\n" + "\n".join(models),
        )
        packages = {
            "repositories": "Data access: one module per model.",
            "services": "Business rules: one service class per model.",
            "schemas": "Pydantic request and response bodies, one module per domain.",
            "workers": "arq queue workers, one module per domain.",
        }
        for package, doc in packages.items():
            self.write(f"app/{package}/__init__.py", f'"""{doc}"""')
        modules = sorted({module for module, _ in self.router_vars})
        routers = [f"from app.routers import {module}" for module in modules]
        includes = [f"api_router.include_router({mod}.{var})" for mod, var in self.router_vars]
        self.write(
            "app/routers/__init__.py",
            "from fastapi import APIRouter\n\n"
            + "\n".join(routers)
            + '\n\napi_router = APIRouter(prefix="/api/v1")\n'
            + "\n".join(includes),
        )
        jobs = [f"from app.schedulers import {d}_jobs" for d, _ in domains]
        self.write(
            "app/schedulers/__init__.py",
            "from apscheduler.schedulers.asyncio import AsyncIOScheduler\n\n"
            + "\n".join(
                j for j in jobs if (self.root / f"app/schedulers/{j.split()[-1]}.py").exists()
            )
            + "\n\n\ndef register_all(scheduler: AsyncIOScheduler) -> None:\n"
            + "\n".join(
                f"    {d}_jobs.register(scheduler)"
                for d, _ in domains
                if (self.root / f"app/schedulers/{d}_jobs.py").exists()
            )
            + "\n    scheduler.start()",
        )
        self.write(
            "app/main.py",
            _t(
                '''
                """The FastAPI application."""

                from __future__ import annotations

                from collections.abc import AsyncIterator
                from contextlib import asynccontextmanager

                from apscheduler.schedulers.asyncio import AsyncIOScheduler
                from fastapi import FastAPI, Request
                from fastapi.responses import JSONResponse

                from app.core.db import engine
                from app.core.errors import DomainError
                from app.routers import api_router
                from app.schedulers import register_all


                @asynccontextmanager
                async def lifespan(app: FastAPI) -> AsyncIterator[None]:
                    scheduler = AsyncIOScheduler()
                    register_all(scheduler)
                    yield
                    scheduler.shutdown(wait=False)
                    await engine.dispose()


                app = FastAPI(title="service", lifespan=lifespan)
                app.include_router(api_router)


                @app.exception_handler(DomainError)
                async def domain_error(request: Request, exc: DomainError) -> JSONResponse:
                    return JSONResponse({"detail": str(exc)}, status_code=exc.status_code)
                '''
            ),
        )


def _domains(count_hint: int) -> Iterator[tuple[str, tuple[str, ...]]]:
    """The domains, then the same again with a numeric suffix, for larger corpora."""
    generation = 0
    while True:
        for domain, names in DOMAINS:
            if generation == 0:
                yield domain, names
            else:
                yield f"{domain}{generation + 1}", tuple(f"{n}{generation + 1}" for n in names)
        generation += 1


def generate(root: Path, target_lines: int, seed: int) -> Corpus:
    """Write a generated FastAPI/SQLAlchemy service of about `target_lines` under `root`.

    Deterministic for a (`target_lines`, `seed`) pair; see the module docstring.
    """
    rng = random.Random(seed)
    gen = _Generator(root, rng)
    gen.core()
    order = list(DOMAINS)
    rng.shuffle(order)
    done: list[tuple[str, list[Entity]]] = []
    source = _domains(0)
    shuffled = iter(order)
    while (left := target_lines - gen.lines) > 0:
        try:
            domain, names = next(shuffled)
        except StopIteration:
            domain, names = next(source)
            while domain in {d for d, _ in done}:
                domain, names = next(source)
        # 2-4 models per domain; fewer for the last domain, to end near `target_lines`
        count = min(rng.randint(2, min(4, len(names))), max(1, round(left / LINES_PER_MODEL)))
        keep = sorted(rng.sample(range(len(names)), count))
        entities = gen.entities(domain, [names[i] for i in keep])
        gen.models(domain, entities)
        gen.schemas(domain, entities)
        for e in entities:
            gen.repository(e)
            gen.service(e)
        # a parent and (some of) its children share a router module; the others get their own
        family = [entities[0]]
        for e in entities[1:]:
            if e.parent is entities[0] and len(family) < 3 and rng.random() < 0.8:
                family.append(e)
            else:
                gen.router(domain, [e])
        gen.router(domain, family)
        if rng.random() < 0.85:
            gen.scheduler(domain, entities)
        if rng.random() < 0.6:
            gen.worker(domain, entities)
        done.append((domain, entities))
    gen.packages(done)
    (root / ".github").mkdir(parents=True, exist_ok=True)
    (root / ".github" / "txaudit.yml").write_text(CONFIG, encoding="utf-8")
    files = tuple(sorted(root.rglob("*.py")))
    sources = tuple(f.read_bytes() for f in files)
    rels = tuple(f.relative_to(root).as_posix() for f in files)
    return Corpus(root, files, sum(s.count(b"\n") for s in sources), sources, rels)


def corpus_stats(corpus: Corpus, config: Config) -> dict[str, object]:
    """Files by folder, and the share of files with database / engine trigger words."""
    texts = [s.decode("utf-8") for s in corpus.sources]
    db_files = sum(1 for t in texts if DB_WORDS.search(t))
    stats: dict[str, object] = {
        "by_folder": dict(sorted(Counter(r.rsplit("/", 1)[0] for r in corpus.rels).items())),
        "db_files": db_files,
        "db_files_pct": round(100 * db_files / len(texts), 1),
        "file_lines_median": statistics.median(t.count("\n") for t in texts),
        "file_lines_max": max(t.count("\n") for t in texts),
        "files_100_400_lines": sum(1 for t in texts if 100 <= t.count("\n") <= 400),
    }
    try:  # the engine's own gate (a private helper: skip quietly if it moves)
        from rules.engine.audit import _trigger_pattern
        from rules.engine.registry import rule_classes

        pattern = _trigger_pattern(config, list(rule_classes()))
        if pattern is not None:
            gated = sum(1 for t in texts if pattern.search(t))
            stats["engine_triggered_pct"] = round(100 * gated / len(texts), 1)
    except (ImportError, AttributeError, TypeError):
        pass
    return stats


# --- timing -------------------------------------------------------------------------------


def best_of(runs: int, func: Callable[[], object]) -> tuple[float, object]:
    """The fastest of `runs` timed calls, and the last result."""
    best = float("inf")
    result: object = None
    for _ in range(runs):
        _clear_caches()
        start = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - start)
    return best, result


def _clear_caches() -> None:
    """Drop the engine's content caches so every run does the full work."""
    try:
        from rules.engine import callgraph

        callgraph.clear_cache()
    except (ImportError, AttributeError):
        pass


def engine_variants(
    config: Config, root: Path, mode: str
) -> list[tuple[str, Config, Callable[[], object | None]]]:
    """(label, config, project index factory) per engine configuration to time.

    Hook for TX007: "with" runs the full engine with the module index (built afresh in each
    timed run, like the CLI does); "without" turns TX007 off and passes no index; "both"
    times the two side by side.
    """
    variants: list[tuple[str, Config, Callable[[], object | None]]] = []
    if mode in ("with", "both"):
        variants.append(("engine", config, lambda: local.build_project_index(root, config)))
    if mode in ("without", "both"):
        rules = {**config.rules, "TX007": Severity.OFF}
        label = "engine without TX007" if mode == "both" else "engine"
        variants.append((label, replace(config, rules=rules), lambda: None))
    return variants


@dataclass
class ToolRun:
    seconds: float
    max_rss_kib: int
    returncode: int
    stdout: str
    stderr: str


#: Runs the tool (argv[2:]) and writes "<wall seconds> <peak RSS KiB>" to argv[1]. Its
#: RUSAGE_CHILDREN covers only the tool's process tree; see the module docstring, point 6.
_WRAPPER = """\
import resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.call(sys.argv[2:])
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
with open(sys.argv[1], "w") as out:
    out.write(f"{seconds} {peak}")
sys.exit(code)
"""


def run_tool(command: Sequence[str], cwd: Path) -> ToolRun:
    """Run `command` to completion in the measuring wrapper: wall time and peak RSS.

    Output goes to temporary files, not pipes, so that a large JSON report cannot block.
    """
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.TemporaryDirectory() as tmp,
    ):
        numbers = Path(tmp) / "usage"
        proc = subprocess.run(
            [sys.executable, "-S", "-c", _WRAPPER, str(numbers), *command],
            cwd=cwd,
            stdout=out,
            stderr=err,
            check=False,
        )
        seconds, peak = numbers.read_text(encoding="utf-8").split()
        out.seek(0)
        err.seek(0)
        return ToolRun(
            float(seconds),
            int(peak),
            proc.returncode,
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
        )


def best_run(runs: int, command: Sequence[str], cwd: Path) -> tuple[ToolRun, int]:
    """The fastest of `runs` runs of `command`, and the largest peak RSS over them."""
    results = [run_tool(command, cwd) for _ in range(runs)]
    for result in results:
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} exited {result.returncode}:\n{result.stderr[-2000:]}"
            )
    return min(results, key=lambda r: r.seconds), max(r.max_rss_kib for r in results)


def _executable(name: str) -> str | None:
    """`name` next to this interpreter (the active virtualenv), else on PATH."""
    sibling = Path(sys.executable).parent / name
    if sibling.is_file() and os.access(sibling, os.X_OK):
        return str(sibling)
    return shutil.which(name)


def compile_bytecode() -> str:
    """Write the bytecode of txaudit's own packages (`rules`, `bot`), as `pip install` of a
    wheel does, and say so. An editable install under `PYTHONDONTWRITEBYTECODE=1` (this
    machine's environment) otherwise compiles every txaudit module from source in each cold
    process (about 0.05 s), while semgrep and txaudit's dependencies run from the bytecode
    that pip wrote for them at install."""
    folders = []
    for package in ("rules", "bot"):
        spec = importlib.util.find_spec(package)
        folders += list(spec.submodule_search_locations or []) if spec else []
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", *folders], capture_output=True, check=True
    )
    return f"txaudit's bytecode compiled (python -m compileall {' '.join(folders)})"


def txaudit_command() -> list[str]:
    exe = _executable("txaudit")
    command = [exe] if exe else [sys.executable, "-m", "bot.cli"]
    command += ["check", ".", "--format", "json", "--fail-on", "never"]
    help_text = subprocess.run(
        [*command[: command.index("check") + 1], "--help"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    if "--no-cache" in help_text:
        command.append("--no-cache")
    return command


def semgrep_command(config: Path, cores: int) -> list[str] | str:
    """The semgrep command line, or why semgrep is skipped."""
    exe = _executable("semgrep")
    if exe is None:
        return "semgrep not found on PATH; install it with `pip install semgrep`"
    if not config.is_file():
        return f"semgrep config {config} not found (pass --semgrep-config FILE)"
    return [
        exe,
        "scan",
        "--config",
        str(config),
        "--json",
        "--metrics=off",
        "--disable-version-check",
        f"--jobs={cores}",
        ".",
    ]


def _rule_of(check_id: str) -> str:
    """semgrep's check_id is the config's dotted path plus the rule id."""
    return check_id.rsplit(".", 1)[-1]


def measure(args: argparse.Namespace, corpus: Corpus) -> dict[str, object]:
    from rules.engine import audit_sources

    config = load_config_file(corpus.root / ".github" / "txaudit.yml")
    pairs = list(zip(corpus.sources, corpus.rels, strict=True))
    cores = os.cpu_count() or 1
    results: dict[str, object] = {
        "files": len(corpus.files),
        "lines": corpus.lines,
        "runs": args.runs,
        "cores": cores,
        "corpus": corpus_stats(corpus, config),
    }

    # Each tree is dropped once parsed, as the engine drops its own: keeping every tree alive
    # would make the cyclic GC traverse them all and inflate the reference several times.
    def parse_all(parse: Callable[[bytes], object]) -> None:
        for source, _ in pairs:
            parse(source)

    ast.parse(b"x = 1\n")
    results["ast_s"], _ = best_of(args.runs, lambda: parse_all(ast.parse))
    libcst.parse_module(b"x = 1\n")  # load the native parser
    results["libcst_s"], _ = best_of(args.runs, lambda: parse_all(libcst.parse_module))

    for label, variant_config, make_project in engine_variants(config, corpus.root, args.tx007):

        def run_engine(
            cfg: Config = variant_config, make: Callable[[], object | None] = make_project
        ) -> Counter[str]:
            project = make()
            found: Counter[str] = Counter()
            for result in audit_sources(pairs, cfg, project=project):
                if result.error is not None:  # a fast engine that fails is not a result
                    raise SystemExit(f"{result.path}: {result.error}")
                found.update(f.rule for f in result.findings)
            return found

        seconds, by_rule = best_of(args.runs, run_engine)
        results[f"{label}_s"] = seconds
        results[f"{label}_by_rule"] = dict(sorted(by_rule.items()))  # type: ignore[attr-defined]

    if not args.subprocess:
        return results

    results["bytecode"] = compile_bytecode()
    command = txaudit_command()
    results["txaudit_command"] = " ".join(command[command.index("check") :])
    run, rss = best_run(args.runs, command, corpus.root)
    report = json.loads(run.stdout)
    results["check_s"] = run.seconds
    results["check_rss_kib"] = rss
    results["check_by_rule"] = dict(sorted(report["summary"]["by_rule"].items()))
    results["check_files"] = report["summary"]["files"]
    if "--no-cache" in command:  # the same run on a filled result cache (not the cold target)
        with tempfile.TemporaryDirectory(prefix="txaudit-bench-cache-") as cache_dir:
            warm = [c for c in command if c != "--no-cache"] + ["--cache-dir", cache_dir]
            subprocess.run(warm, cwd=corpus.root, capture_output=True, check=True)
            run, _ = best_run(args.runs, warm, corpus.root)
            warm_report = json.loads(run.stdout)
        if warm_report["summary"]["by_rule"] != report["summary"]["by_rule"]:
            raise SystemExit("txaudit check on a warm cache found other findings than cold")
        results["check_warm_s"] = run.seconds
    if args.tx007 in ("without", "both"):
        run, _ = best_run(args.runs, [*command, "--ignore", "TX007"], corpus.root)
        results["check_without_tx007_s"] = run.seconds
        by_rule = json.loads(run.stdout)["summary"]["by_rule"]
        if by_rule != {k: v for k, v in report["summary"]["by_rule"].items() if k != "TX007"}:
            raise SystemExit("txaudit check --ignore TX007 found other findings than with it")

    semgrep = semgrep_command(Path(args.semgrep_config).resolve(), cores)
    if isinstance(semgrep, str):
        results["semgrep_skipped"] = semgrep
        return results
    results["semgrep_command"] = " ".join(["semgrep", *semgrep[1:]])
    try:
        run, rss = best_run(args.runs, semgrep, corpus.root)
        report = json.loads(run.stdout)
    except (RuntimeError, OSError, ValueError) as exc:
        results["semgrep_skipped"] = f"semgrep failed: {str(exc)[:500]}"
        return results
    results["semgrep_s"] = run.seconds
    results["semgrep_rss_kib"] = rss
    results["semgrep_by_rule"] = dict(
        sorted(Counter(_rule_of(r["check_id"]) for r in report["results"]).items())
    )
    results["semgrep_files"] = len(report.get("paths", {}).get("scanned", []))
    results["semgrep_errors"] = len(report.get("errors", []))
    return results


# --- the report ---------------------------------------------------------------------------


def _total(by_rule: object) -> int:
    return sum(by_rule.values()) if isinstance(by_rule, dict) else 0


def report(results: dict[str, object]) -> str:
    lines = int(results["lines"])  # type: ignore[call-overload]
    cores = results["cores"]
    r: dict[str, float] = {k: float(v) for k, v in results.items() if k.endswith("_s")}  # type: ignore[arg-type]

    def row(label: str, seconds: float, note: str = "") -> str:
        rate = f"{lines / seconds:>10,.0f} lines/s"
        return f"  {label:<40} {seconds:8.3f} s {rate}  {note}".rstrip()

    stats = results["corpus"]
    assert isinstance(stats, dict)
    folders = ", ".join(f"{k} {v}" for k, v in stats["by_folder"].items())
    out = [
        f"corpus: {results['files']} files, {lines:,} lines; lines per file: median "
        f"{stats['file_lines_median']:.0f}, max {stats['file_lines_max']}; "
        f"{stats['files_100_400_lines']} files of 100-400 lines",
        f"  files touching the database (session/commit/text(/execute/SQL): "
        f"{stats['db_files']} = {stats['db_files_pct']}%"
        + (
            f"; passing the engine's trigger-word gate: {stats['engine_triggered_pct']}%"
            if "engine_triggered_pct" in stats
            else ""
        ),
        f"  {folders}",
        f"best of {results['runs']} runs; {cores} cores",
        *([f"  {results['bytecode']}"] if "bytecode" in results else []),
        "",
        row("1. ast.parse (reference, 1 core)", r["ast_s"]),
        row("2. libcst.parse_module (parse only)", r["libcst_s"]),
    ]
    engines = [k[:-2] for k in r if k.startswith("engine")]
    for label in engines:
        found = _total(results[f"{label}_by_rule"])
        out.append(row(f"3. {label} (audit_sources, 1 core)", r[f"{label}_s"], f"{found} findings"))
    if "check_s" in r:
        rss = int(results["check_rss_kib"])  # type: ignore[call-overload]
        note = f"{_total(results['check_by_rule'])} findings; peak RSS {rss / 1024:,.0f} MiB"
        out.append(row(f"4. txaudit check ({cores} cores, cold)", r["check_s"], note))
    if "check_warm_s" in r:
        note = "same findings; not the cold target"
        out.append(row("4. txaudit check, warm result cache", r["check_warm_s"], note))
    if "check_without_tx007_s" in r:
        note = "same findings but TX007's; semgrep's rule set"
        out.append(row("4. txaudit check --ignore TX007, cold", r["check_without_tx007_s"], note))
    if "semgrep_s" in r:
        rss = int(results["semgrep_rss_kib"])  # type: ignore[call-overload]
        note = f"{_total(results['semgrep_by_rule'])} findings; peak RSS {rss / 1024:,.0f} MiB"
        out.append(row(f"5. semgrep scan (--jobs {cores})", r["semgrep_s"], note))
    elif "semgrep_skipped" in results:
        out.append(f"  5. semgrep: skipped: {results['semgrep_skipped']}")
    elif "check_s" not in r:
        out.append("  4./5. txaudit check and semgrep: skipped (--no-subprocess)")

    out += ["", "ratios:"]
    for label in engines:
        ratio = r[f"{label}_s"] / r["ast_s"]
        verdict = "met" if ratio <= 3 else "MISSED"
        out.append(f"  {label} / ast.parse        {ratio:6.2f}x  (target <= 3x: {verdict})")
        out.append(f"  {label} / libcst           {r[f'{label}_s'] / r['libcst_s']:6.2f}x")
    if "semgrep_s" in r and "check_s" in r:
        ratio = r["semgrep_s"] / r["check_s"]
        verdict = "met" if ratio >= 8 else "MISSED"
        out.append(f"  semgrep / txaudit check   {ratio:6.2f}x  (target >= 8x: {verdict})")
        if "check_without_tx007_s" in r:
            ratio = r["semgrep_s"] / r["check_without_tx007_s"]
            out.append(f"  semgrep / txaudit check --ignore TX007 {ratio:6.2f}x  (not the target)")
    if "check_rss_kib" in results and "semgrep_rss_kib" in results:
        ratio = int(results["semgrep_rss_kib"]) / int(results["check_rss_kib"])  # type: ignore[call-overload]
        out.append(f"  semgrep / txaudit peak RSS {ratio:5.2f}x")

    columns = [(label, results[f"{label}_by_rule"]) for label in engines]
    if "check_by_rule" in results:
        columns.append(("txaudit check", results["check_by_rule"]))
    if "semgrep_by_rule" in results:
        columns.append(("semgrep", results["semgrep_by_rule"]))
    rules = sorted({rule for _, by_rule in columns for rule in by_rule})  # type: ignore[attr-defined]
    out += [
        "",
        "findings by rule:",
        "  " + f"{'rule':<8}" + "".join(f"{c:>22}" for c, _ in columns),
    ]
    for rule in rules:
        cells = "".join(f"{by_rule.get(rule, 0):>22}" for _, by_rule in columns)  # type: ignore[attr-defined]
        out.append(f"  {rule:<8}{cells}")
    out.append("  " + f"{'total':<8}" + "".join(f"{_total(b):>22}" for _, b in columns))
    if "semgrep_errors" in results:
        out.append(
            f"  (semgrep scanned {results['semgrep_files']} files, "
            f"{results['semgrep_errors']} errors; txaudit checked {results['check_files']})"
        )
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="best of N runs (default 3)")
    parser.add_argument("--lines", type=int, default=30_000, help="corpus size (default 30000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tx007", choices=("with", "without", "both"), default="with")
    parser.add_argument(
        "--semgrep-config",
        default=str(DEFAULT_SEMGREP_CONFIG),
        metavar="FILE",
        help=f"semgrep rules to compare with (default: {DEFAULT_SEMGREP_CONFIG})",
    )
    parser.add_argument(
        "--no-subprocess",
        dest="subprocess",
        action="store_false",
        help="skip `txaudit check` and semgrep (measurements 4-6)",
    )
    parser.add_argument("--keep", metavar="DIR", help="write the corpus to DIR and keep it")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="txaudit-bench-") as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        if args.keep:
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True)
        corpus = generate(root, args.lines, args.seed)
        results = measure(args, corpus)
    print(json.dumps(results, indent=2) if args.json else report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
