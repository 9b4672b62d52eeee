"""Reporting queries for the admin dashboard, written by hand "for speed"."""

from __future__ import annotations

import logging
from datetime import date

from sqlalchemy import text as sql
from sqlalchemy.ext.asyncio import AsyncSession

logger = logging.getLogger(__name__)

DAILY_IMPORTS_SQL = """
    SELECT DATE(finished_at) AS day, COUNT(*) AS imported
    FROM sitemap_jobs
    WHERE status = 'done' AND finished_at >= :since
    GROUP BY DATE(finished_at)
    ORDER BY day DESC
"""

# txaudit: ignore[ORM003] -- column names only, kept in sync with DAILY_IMPORTS_SQL
REPORT_COLUMNS = ("day", "imported")


async def daily_imports(session: AsyncSession, since: date) -> list[dict[str, object]]:
    """Imported sitemaps per day since `since`."""
    result = await session.execute(sql(DAILY_IMPORTS_SQL), {"since": since})
    return [dict(zip(REPORT_COLUMNS, row, strict=True)) for row in result]


async def failed_jobs(session: AsyncSession, domain: str, limit: int = 100) -> list[tuple]:
    """The most recent failed jobs of a domain, for the support team."""
    logger.info("Select a domain from the list to see its failures")
    query = (
        "SELECT id, url, error, finished_at FROM sitemap_jobs "
        f"WHERE domain = '{domain}' AND status = 'failed' "
        f"ORDER BY finished_at DESC LIMIT {int(limit)}"
    )
    result = await session.execute(query)
    return list(result.fetchall())


async def pages_per_domain(session: AsyncSession) -> dict[str, int]:
    """How many pages each domain has, largest first."""
    result = await session.execute(sql("SELECT domain, COUNT(*) FROM pages GROUP BY domain"))
    return dict(result.fetchall())


async def purge_orphan_pages(session: AsyncSession) -> int:
    """Pages whose job row is gone (left over from a manual clean-up)."""
    result = await session.exec_driver_sql(
        "DELETE FROM pages WHERE job_id NOT IN (SELECT id FROM sitemap_jobs)"
    )
    return result.rowcount


def table_for(kind: str) -> str:
    """Which table a dashboard widget reads."""
    return {"jobs": "sitemap_jobs", "pages": "pages"}[kind]  # txaudit: ignore
