"""TX007 across modules: resolution through imports, classes, instances and call chains."""

from __future__ import annotations

from collections.abc import Callable

from rules.engine.model import Finding, Severity

Audit = Callable[..., list[Finding]]

PKG = {"app/__init__.py": "", "app/jobs/__init__.py": "", "app/services/__init__.py": ""}

ADAPTER = """
from sqlalchemy.ext.asyncio import AsyncSession


class SitemapAdapter:
    def __init__(self, base_url: str = "x") -> None:
        self.base_url = base_url

    async def submit(self, session: AsyncSession, items: list) -> None:
        for item in items:
            session.add(item)
        await session.commit()

    async def flush_only(self, session: AsyncSession) -> None:
        await session.flush()

    async def savepoint(self, session: AsyncSession) -> None:
        async with session.begin_nested():
            await session.flush()

    @staticmethod
    async def submit_static(session: AsyncSession) -> None:
        await session.rollback()

    @classmethod
    async def submit_cls(cls, session: AsyncSession) -> None:
        async with session.begin():
            pass


async def submit_all(session, items):
    await session.commit()


adapter = SitemapAdapter()
"""


def scheduler(imports: str, body: str) -> str:
    body = "\n".join("        " + line for line in body.strip("\n").splitlines())
    return (
        "from app.db import get_background_session\n"
        f"{imports}\n\n\n"
        "async def process_pending(items):\n"
        "    async with get_background_session() as session:\n"
        f"{body}\n"
    )


def one(findings: list[Finding]) -> Finding:
    assert len(findings) == 1, [f.message for f in findings]
    return findings[0]


def test_absolute_import_function(audit: Audit) -> None:
    files = {
        **PKG,
        "app/services/sitemap_adapter.py": ADAPTER,
        "app/jobs/scheduler.py": scheduler(
            "from app.services.sitemap_adapter import submit_all",
            "await submit_all(session, items)",
        ),
    }
    finding = one(audit(files, "app/jobs/scheduler.py"))
    assert finding.rule == "TX007"
    assert finding.name == "callee-manages-transaction"
    assert finding.severity is Severity.ERROR
    assert (finding.line, finding.column) == (7, 15)
    assert finding.scope == "process_pending"
    assert finding.snippet == "submit_all(session, items)"
    assert "`submit_all` (app/services/sitemap_adapter.py:31), which commits it" in finding.message
    assert finding.message.startswith("Passes `session` to ")


def test_inline_instantiation(audit: Audit) -> None:
    files = {
        **PKG,
        "app/services/sitemap_adapter.py": ADAPTER,
        "app/jobs/scheduler.py": scheduler(
            "from app.services.sitemap_adapter import SitemapAdapter",
            "await SitemapAdapter().submit(session, items)",
        ),
    }
    finding = one(audit(files, "app/jobs/scheduler.py"))
    assert "`SitemapAdapter.submit` (app/services/sitemap_adapter.py:11)" in finding.message


def test_instance_in_same_function(audit: Audit) -> None:
    files = {
        **PKG,
        "app/services/sitemap_adapter.py": ADAPTER,
        "app/jobs/scheduler.py": scheduler(
            "from app.services.sitemap_adapter import SitemapAdapter",
            "a = SitemapAdapter(base_url='y')\nawait a.submit(session, items)",
        ),
    }
    assert "SitemapAdapter.submit" in one(audit(files, "app/jobs/scheduler.py")).message


def test_instance_rebound_is_not_resolved(audit: Audit) -> None:
    files = {
        **PKG,
        "app/services/sitemap_adapter.py": ADAPTER,
        "app/jobs/scheduler.py": scheduler(
            "from app.services.sitemap_adapter import SitemapAdapter\nfrom x import Other",
            "a = SitemapAdapter()\na = Other()\nawait a.submit(session, items)",
        ),
    }
    assert audit(files, "app/jobs/scheduler.py") == []


def test_self_attribute_from_init(audit: Audit) -> None:
    files = {
        **PKG,
        "app/services/sitemap_adapter.py": ADAPTER,
        "app/jobs/scheduler.py": """
            from app.db import get_background_session
            from app.services.sitemap_adapter import SitemapAdapter


            class Scheduler:
                def __init__(self) -> None:
                    self.adapter = SitemapAdapter()

                async def run(self, items):
                    async with get_background_session() as s:
                        await self.adapter.submit(s, items)
        """,
    }
    finding = one(audit(files, "app/jobs/scheduler.py"))
    assert finding.scope == "Scheduler.run"
    assert finding.message.startswith("Passes `s` to `SitemapAdapter.submit`")


def test_self_helper_same_class_and_file_without_index() -> None:
    from tx007_check import check_tx007

    from rules.engine.config import Config

    source = b"""
from app.db import get_background_session


class Scheduler:
    async def run(self):
        async with get_background_session() as s:
            await self.helper(s)

    async def helper(self, session):
        await session.commit()
"""
    finding = one(check_tx007(source, "app/jobs/scheduler.py", Config(), None))
    assert "`Scheduler.helper` (app/jobs/scheduler.py:11), which commits it" in finding.message


def test_static_and_class_methods(audit: Audit) -> None:
    files = {
        **PKG,
        "app/services/sitemap_adapter.py": ADAPTER,
        "app/jobs/scheduler.py": scheduler(
            "from app.services.sitemap_adapter import SitemapAdapter",
            "await SitemapAdapter.submit_static(session)\n"
            "await SitemapAdapter.submit_cls(session)\n"
            "await SitemapAdapter().submit_static(session)\n"
            "await SitemapAdapter().submit_cls(session)",
        ),
    }
    findings = audit(files, "app/jobs/scheduler.py")
    assert [f.line for f in findings] == [7, 8, 9, 10]
    assert findings[0].message.startswith(
        "Passes `session` to `SitemapAdapter.submit_static` (app/services/sitemap_adapter.py:22), "
        "which rolls it back;"
    )
    assert (
        "(app/services/sitemap_adapter.py:26), which begins a transaction on it"
        in findings[1].message
    )


def test_keyword_passing(audit: Audit) -> None:
    files = {
        **PKG,
        "app/services/notify.py": """
            class Notifier:
                async def send(self, items, *, session, retries=3):
                    await session.commit()

                async def other(self, items, *, db, session=None):
                    await db.commit()
        """,
        "app/jobs/scheduler.py": scheduler(
            "from app.services.notify import Notifier",
            "await Notifier().send(items, session=session)\n"
            "await Notifier().other(items, session=session, db=None)",
        ),
    }
    finding = one(audit(files, "app/jobs/scheduler.py"))
    assert finding.line == 7 and "Notifier.send" in finding.message


def test_positional_maps_to_the_right_parameter(audit: Audit) -> None:
    files = {
        **PKG,
        "app/services/two.py": """
            async def copy(src, dst):
                await dst.commit()
        """,
        "app/jobs/scheduler.py": scheduler(
            "from app.services.two import copy",
            "await copy(session, None)\nawait copy(None, session)",
        ),
    }
    assert one(audit(files, "app/jobs/scheduler.py")).line == 8


def test_relative_import(audit: Audit) -> None:
    files = {
        **PKG,
        "app/services/sitemap_adapter.py": ADAPTER,
        "app/jobs/scheduler.py": scheduler(
            "from ..services import sitemap_adapter",
            "await sitemap_adapter.submit_all(session=session, items=items)",
        ),
    }
    assert "`submit_all`" in one(audit(files, "app/jobs/scheduler.py")).message


def test_import_module_as_alias(audit: Audit) -> None:
    files = {
        **PKG,
        "app/services/sitemap_adapter.py": ADAPTER,
        "app/jobs/scheduler.py": scheduler(
            "import app.services.sitemap_adapter as m\nimport app.services.sitemap_adapter",
            "await m.submit_all(session, items)\n"
            "await app.services.sitemap_adapter.submit_all(session, items)\n"
            "await m.SitemapAdapter().submit(session, items)",
        ),
    }
    assert [f.line for f in audit(files, "app/jobs/scheduler.py")] == [8, 9, 10]


def test_src_layout(audit: Audit) -> None:
    files = {
        "src/app/__init__.py": "",
        "src/app/services/__init__.py": "",
        "src/app/jobs/__init__.py": "",
        "src/app/services/sitemap_adapter.py": ADAPTER,
        "src/app/jobs/scheduler.py": scheduler(
            "from app.services import sitemap_adapter",
            "await sitemap_adapter.adapter.submit(session, items)",
        ),
    }
    finding = one(audit(files, "src/app/jobs/scheduler.py"))
    assert "(src/app/services/sitemap_adapter.py:11)" in finding.message


def test_reexport_in_package_init(audit: Audit) -> None:
    files = {
        **PKG,
        "app/services/__init__.py": "from .sitemap_adapter import SitemapAdapter\n",
        "app/services/sitemap_adapter.py": ADAPTER,
        "app/jobs/scheduler.py": scheduler(
            "from app.services import SitemapAdapter",
            "await SitemapAdapter().submit(session, items)",
        ),
    }
    assert (
        "(app/services/sitemap_adapter.py:11)" in one(audit(files, "app/jobs/scheduler.py")).message
    )


def test_module_level_instance(audit: Audit) -> None:
    files = {
        **PKG,
        "app/services/sitemap_adapter.py": ADAPTER,
        "app/jobs/scheduler.py": scheduler(
            "from app.services.sitemap_adapter import adapter",
            "await adapter.submit(session, items)",
        ),
    }
    assert "SitemapAdapter.submit" in one(audit(files, "app/jobs/scheduler.py")).message


def _chain(levels: int) -> dict[str, str]:
    """scheduler -> level1 -> ... -> level<levels>, which commits; one module per level."""
    files = dict(PKG)
    for n in range(1, levels + 1):
        if n == levels:
            body = "    await session.commit()\n"
        else:
            body = f"    from app.services.level{n + 1} import step{n + 1}\n"
            body += f"    await step{n + 1}(session)\n"
        files[f"app/services/level{n}.py"] = f"async def step{n}(session):\n{body}"
    files["app/jobs/scheduler.py"] = scheduler(
        "from app.services.level1 import step1", "await step1(session)"
    )
    return files


def test_three_level_chain_is_reported(audit: Audit) -> None:
    finding = one(audit(_chain(3), "app/jobs/scheduler.py"))
    assert finding.message.startswith(
        "Passes `session` to `step1`, which passes it on through `step2` "
        "to `step3` (app/services/level3.py:2), which commits it"
    )


def test_four_level_chain_is_not_reported(audit: Audit) -> None:
    assert audit(_chain(4), "app/jobs/scheduler.py") == []


def test_flush_and_begin_nested_are_not_reported(audit: Audit) -> None:
    files = {
        **PKG,
        "app/services/sitemap_adapter.py": ADAPTER,
        "app/jobs/scheduler.py": scheduler(
            "from app.services.sitemap_adapter import SitemapAdapter",
            "await SitemapAdapter().flush_only(session)\nawait SitemapAdapter().savepoint(session)",
        ),
    }
    assert audit(files, "app/jobs/scheduler.py") == []


def test_unresolvable_callees_are_not_reported(audit: Audit) -> None:
    files = {
        **PKG,
        "app/services/sitemap_adapter.py": ADAPTER,
        "app/jobs/scheduler.py": scheduler(
            "from thirdparty import push\nfrom app.services import missing_module",
            "await push(session)\n"
            "await missing_module.push(session)\n"
            "await items.submit(session)\n"
            "await get_adapter().submit(session, items)\n"
            "await (lambda s: s)(session)",
        ),
    }
    assert audit(files, "app/jobs/scheduler.py") == []


def test_callee_that_rebinds_its_parameter_is_not_reported(audit: Audit) -> None:
    files = {
        **PKG,
        "app/services/own.py": """
            from app.db import get_background_session


            async def isolated(session):
                async with get_background_session() as session:
                    await session.commit()
        """,
        "app/jobs/scheduler.py": scheduler(
            "from app.services.own import isolated", "await isolated(session)"
        ),
    }
    assert audit(files, "app/jobs/scheduler.py") == []


def test_route_endpoint_begin_block(audit: Audit) -> None:
    files = {
        **PKG,
        "app/services/sitemap_adapter.py": ADAPTER,
        "app/api/__init__.py": "",
        "app/api/routes.py": """
            from fastapi import APIRouter, Depends
            from app.db import get_db_session
            from app.services.sitemap_adapter import SitemapAdapter

            router = APIRouter()


            @router.post("/sitemaps")
            async def create(items: list, session=Depends(get_db_session)):
                async with session.begin():
                    await SitemapAdapter().submit(session, items)
                await SitemapAdapter().submit(session, items)


            async def not_a_route(session):
                async with session.begin():
                    await SitemapAdapter().submit(session, [])
        """,
    }
    finding = one(audit(files, "app/api/routes.py"))
    assert finding.line == 11 and finding.scope == "create"


def test_factory_alias_and_module_attribute(audit: Audit) -> None:
    files = {
        **PKG,
        "app/services/sitemap_adapter.py": ADAPTER,
        "app/jobs/scheduler.py": """
            from app import db
            from app.db import get_background_session as background
            from app.services.sitemap_adapter import submit_all


            async def one():
                async with background() as fetch_session:
                    await submit_all(fetch_session, [])


            async def two():
                async with db.get_background_session() as s, other() as t:
                    await submit_all(t, [])
                    await submit_all(s, [])
        """,
    }
    findings = audit(files, "app/jobs/scheduler.py")
    assert [(f.line, f.scope) for f in findings] == [(8, "one"), (14, "two")]
    assert findings[0].message.startswith("Passes `fetch_session` to `submit_all`")


def test_severity_follows_config(audit: Audit) -> None:
    from rules.engine.config import parse_config

    files = {
        **PKG,
        "app/services/sitemap_adapter.py": ADAPTER,
        "app/jobs/scheduler.py": scheduler(
            "from app.services.sitemap_adapter import submit_all", "await submit_all(session, [])"
        ),
    }
    assert audit(files, "app/jobs/scheduler.py", parse_config({"rules": {"TX007": "off"}})) == []
    warned = audit(files, "app/jobs/scheduler.py", parse_config({"rules": {"TX007": "warning"}}))
    assert one(warned).severity is Severity.WARNING


def test_custom_session_factory(audit: Audit) -> None:
    from rules.engine.config import parse_config

    files = {
        **PKG,
        "app/services/sitemap_adapter.py": ADAPTER,
        "app/jobs/scheduler.py": """
            from app.db import worker_session
            from app.services.sitemap_adapter import submit_all


            async def job():
                async with worker_session() as s:
                    await submit_all(s, [])
        """,
    }
    config = parse_config({"session_factories": ["worker_session"]})
    assert one(audit(files, "app/jobs/scheduler.py", config)).line == 7
    assert audit(files, "app/jobs/scheduler.py") == []


def test_module_cap_cuts_the_search(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from conftest import write_tree
    from tx007_check import check_tx007

    from rules.engine.callgraph import ProjectIndex
    from rules.engine.config import Config

    write_tree(tmp_path, _chain(3))
    source = (tmp_path / "app/jobs/scheduler.py").read_bytes()
    capped = ProjectIndex.from_disk(tmp_path, Config(), max_modules=2)
    assert check_tx007(source, "app/jobs/scheduler.py", Config(), capped) == []
    assert capped.limit_hit
    assert capped.skipped and len(capped.loaded) == 2
    full = ProjectIndex.from_disk(tmp_path, Config(), max_modules=Config().max_callee_modules)
    assert len(check_tx007(source, "app/jobs/scheduler.py", Config(), full)) == 1
    assert not full.limit_hit


def test_constructor_that_keeps_the_session(audit: Audit) -> None:
    files = {
        **PKG,
        "app/services/repo.py": """
            class Repo:
                def __init__(self, session, name="x"):
                    self.session = session
                    self.name = name

                async def save(self, item):
                    self.session.add(item)
                    await self.session.commit()


            class ReadOnly:
                def __init__(self, session):
                    self.session = session

                async def load(self):
                    await self.session.flush()
        """,
        "app/jobs/scheduler.py": scheduler(
            "from app.services.repo import ReadOnly, Repo",
            "repo = Repo(session)\nawait repo.save(items)\nawait ReadOnly(session).load()",
        ),
    }
    finding = one(audit(files, "app/jobs/scheduler.py"))
    assert finding.line == 7
    assert finding.message.startswith(
        "Passes `session` to `Repo`, which keeps it as `self.session` and `Repo.save` "
        "(app/services/repo.py:8), which commits it;"
    )
