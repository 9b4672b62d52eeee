"""Adapter between the sitemap fetcher and the database: XML in, Page rows out."""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Page, SitemapJob

logger = logging.getLogger(__name__)

NS = {"sm": "http://www.sitemaps.org/schemas/sitemap/0.9"}


@dataclass(frozen=True)
class SitemapEntry:
    loc: str
    lastmod: datetime | None
    priority: float | None


def parse_sitemap(xml: bytes) -> list[SitemapEntry]:
    """The <url> entries of a sitemap document."""
    root = ET.fromstring(xml)
    entries = []
    for node in root.findall("sm:url", NS):
        lastmod = node.findtext("sm:lastmod", default=None, namespaces=NS)
        priority = node.findtext("sm:priority", default=None, namespaces=NS)
        entries.append(
            SitemapEntry(
                loc=node.findtext("sm:loc", default="", namespaces=NS).strip(),
                lastmod=datetime.fromisoformat(lastmod) if lastmod else None,
                priority=float(priority) if priority else None,
            )
        )
    return entries


class SitemapAdapter:
    """Fetches a job's sitemap and stores its pages in the session it is handed."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def import_sitemap(self, session: AsyncSession, job: SitemapJob) -> int:
        response = await self.http.get(job.url, follow_redirects=True)
        response.raise_for_status()
        entries = parse_sitemap(response.content)
        try:
            for entry in entries:
                session.add(
                    Page(
                        job_id=job.id,
                        domain=job.domain,
                        url=entry.loc,
                        lastmod=entry.lastmod,
                        priority=entry.priority,
                    )
                )
            job.status = "done"
            job.finished_at = datetime.now(UTC)
            await session.commit()
        except Exception:
            logger.exception("could not store sitemap", extra={"job_id": job.id})
            await session.rollback()
            raise
        return len(entries)

    async def requeue_failed(self, session: AsyncSession, domain: str) -> int:
        """Put the failed jobs of a domain back in the queue."""
        async with session.begin():
            jobs = await session.scalars(
                select(SitemapJob).where(SitemapJob.domain == domain, SitemapJob.status == "failed")
            )
            count = 0
            for job in jobs:
                job.status = "pending"
                job.error = None
                count += 1
        return count
