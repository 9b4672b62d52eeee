"""Reporting queries for the admin dashboard, built with the ORM."""

from __future__ import annotations

import logging
from datetime import date

from sqlalchemy import Date, cast, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Page, SitemapJob

logger = logging.getLogger(__name__)

REPORT_COLUMNS = ("day", "imported")


async def daily_imports(session: AsyncSession, since: date) -> list[dict[str, object]]:
    """Imported sitemaps per day since `since`."""
    day = cast(SitemapJob.finished_at, Date).label("day")
    result = await session.execute(
        select(day, func.count().label("imported"))
        .where(SitemapJob.status == "done", SitemapJob.finished_at >= since)
        .group_by(day)
        .order_by(day.desc())
    )
    return [dict(zip(REPORT_COLUMNS, row, strict=True)) for row in result]


async def failed_jobs(session: AsyncSession, domain: str, limit: int = 100) -> list[tuple]:
    """The most recent failed jobs of a domain, for the support team."""
    logger.info("Select a domain from the list to see its failures")
    result = await session.execute(
        select(SitemapJob.id, SitemapJob.url, SitemapJob.error, SitemapJob.finished_at)
        .where(SitemapJob.domain == domain, SitemapJob.status == "failed")
        .order_by(SitemapJob.finished_at.desc())
        .limit(limit)
    )
    return list(result.all())


async def pages_per_domain(session: AsyncSession) -> dict[str, int]:
    """How many pages each domain has, largest first."""
    result = await session.execute(
        select(Page.domain, func.count()).group_by(Page.domain).order_by(func.count().desc())
    )
    return {domain: count for domain, count in result}


async def purge_orphan_pages(session: AsyncSession) -> int:
    """Pages whose job row is gone (left over from a manual clean-up)."""
    result = await session.execute(
        delete(Page)
        .where(Page.job_id.not_in(select(SitemapJob.id)))
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


def table_for(kind: str) -> str:
    """Which table a dashboard widget reads; update the set of results when adding one."""
    return {"jobs": SitemapJob.__tablename__, "pages": Page.__tablename__}[kind]
