"""Scheduler job: import the pending sitemaps, a batch every five minutes."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import httpx
from sqlalchemy import select

from app.db import get_background_session
from app.models import SitemapJob
from app.services.sitemap_adapter import SitemapAdapter, SitemapError

logger = logging.getLogger(__name__)

BATCH_SIZE = 50
MAX_ATTEMPTS = 3


async def process_pending_sitemaps() -> int:
    """Claim a batch of pending jobs and import each sitemap, all in one transaction.

    A failing sitemap is rolled back to its own savepoint and marked failed in memory;
    the context manager commits the whole batch on exit.
    """
    imported = 0
    async with httpx.AsyncClient(timeout=30) as http:
        async with get_background_session() as session:
            jobs = list(
                await session.scalars(
                    select(SitemapJob)
                    .where(SitemapJob.status == "pending", SitemapJob.attempts < MAX_ATTEMPTS)
                    .order_by(SitemapJob.created_at)
                    .limit(BATCH_SIZE)
                    .with_for_update(skip_locked=True)
                )
            )
            if not jobs:
                logger.debug("no pending sitemaps")
                return 0

            adapter = SitemapAdapter(http)
            for job in jobs:
                job.status = "running"
                job.attempts += 1
                job.started_at = datetime.now(UTC)
                try:
                    async with session.begin_nested():
                        imported += await adapter.import_sitemap(session, job)
                except (httpx.HTTPError, SitemapError) as exc:
                    logger.warning("sitemap import failed", extra={"job_id": job.id})
                    job.status = "failed"
                    job.error = str(exc)[:500]
                    job.finished_at = datetime.now(UTC)

    logger.info("imported %d pages from %d sitemaps", imported, len(jobs))
    return imported
