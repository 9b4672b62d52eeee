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


class SitemapError(ValueError):
    """The sitemap could not be fetched or parsed."""


@dataclass(frozen=True)
class SitemapEntry:
    loc: str
    lastmod: datetime | None
    priority: float | None


def parse_sitemap(xml: bytes) -> list[SitemapEntry]:
    """The <url> entries of a sitemap document."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise SitemapError(f"not a sitemap: {exc}") from exc
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
    """Fetches a job's sitemap and stores its pages in the session it is handed.

    The caller owns the transaction: this class adds and flushes, never commits.
    """

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def import_sitemap(self, session: AsyncSession, job: SitemapJob) -> int:
        response = await self.http.get(job.url, follow_redirects=True)
        response.raise_for_status()
        entries = parse_sitemap(response.content)
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
        await session.flush()
        return len(entries)

    async def requeue_failed(self, session: AsyncSession, domain: str) -> int:
        """Put the failed jobs of a domain back in the queue."""
        jobs = await session.scalars(
            select(SitemapJob).where(SitemapJob.domain == domain, SitemapJob.status == "failed")
        )
        count = 0
        for job in jobs:
            job.status = "pending"
            job.error = None
            count += 1
        return count
