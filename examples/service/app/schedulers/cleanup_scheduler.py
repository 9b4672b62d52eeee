"""Scheduler job: purge pages of sitemaps that were re-imported, once a night."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select

from app.db import get_background_session
from app.models import Page, SitemapJob

logger = logging.getLogger(__name__)

KEEP_DAYS = 30


async def purge_stale_pages() -> int:
    """Delete the pages of finished jobs older than KEEP_DAYS, one domain at a time."""
    cutoff = datetime.now(UTC) - timedelta(days=KEEP_DAYS)
    async with get_background_session() as session:
        # txaudit: ignore[TX006] -- the purge used to commit here before it went per domain
        domains = list(
            await session.scalars(
                select(SitemapJob.domain)
                .where(SitemapJob.status == "done", SitemapJob.finished_at < cutoff)
                .distinct()
            )
        )

    purged = 0
    for domain in domains:
        # txaudit: ignore[TX004] -- isolated session pattern: a lock timeout on one domain must not undo the others
        async with get_background_session() as domain_session:
            stale_jobs = select(SitemapJob.id).where(
                SitemapJob.domain == domain,
                SitemapJob.status == "done",
                SitemapJob.finished_at < cutoff,
            )
            result = await domain_session.execute(
                delete(Page).where(Page.job_id.in_(stale_jobs)).execution_options(
                    synchronize_session=False
                )
            )
            purged += result.rowcount
            logger.info("purged %d pages", result.rowcount, extra={"domain": domain})
    return purged
