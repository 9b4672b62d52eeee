"""Scheduler job: import the pending sitemaps, a batch every five minutes."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import httpx
from sqlalchemy import select

from app.db import get_background_session
from app.models import SitemapJob
from app.services.sitemap_adapter import SitemapAdapter

logger = logging.getLogger(__name__)

BATCH_SIZE = 50
MAX_ATTEMPTS = 3


async def process_pending_sitemaps() -> int:
    """Claim a batch of pending jobs, mark them running and import each sitemap."""
    async with get_background_session() as fetch_session:
        async with fetch_session.begin():
            result = await fetch_session.execute(
                select(SitemapJob.id)
                .where(SitemapJob.status == "pending", SitemapJob.attempts < MAX_ATTEMPTS)
                .order_by(SitemapJob.created_at)
                .limit(BATCH_SIZE)
            )
            job_ids = list(result.scalars())

    if not job_ids:
        logger.debug("no pending sitemaps")
        return 0

    async with get_background_session() as status_session:
        jobs = await status_session.scalars(select(SitemapJob).where(SitemapJob.id.in_(job_ids)))
        for job in jobs:
            job.status = "running"
            job.attempts += 1
            job.started_at = datetime.now(UTC)
        await status_session.commit()

    imported = 0
    async with httpx.AsyncClient(timeout=30) as http:
        async with get_background_session() as session:
            for job_id in job_ids:
                job = await session.get(SitemapJob, job_id)
                if job is None:
                    continue
                try:
                    imported += await SitemapAdapter(http).import_sitemap(session, job)
                except (httpx.HTTPError, ValueError) as exc:
                    logger.warning("sitemap import failed", extra={"job_id": job_id})
                    async with get_background_session() as failure_session:
                        failed = await failure_session.get(SitemapJob, job_id)
                        failed.status = "failed"
                        failed.error = str(exc)[:500]
                        failed.finished_at = datetime.now(UTC)

    logger.info("imported %d pages from %d sitemaps", imported, len(job_ids))
    return imported
