"""HTTP API for sitemap jobs: create, inspect, retry."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, ConfigDict, HttpUrl
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import get_db_session
from app.models import SitemapJob

router = APIRouter(prefix="/jobs", tags=["jobs"])


class JobCreate(BaseModel):
    domain: str
    url: HttpUrl


class JobOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    domain: str
    url: str
    status: str
    error: str | None
    created_at: datetime


@router.post("", status_code=status.HTTP_201_CREATED, response_model=JobOut)
async def create_job(payload: JobCreate, session: AsyncSession = Depends(get_db_session)):
    async with session.begin():
        job = SitemapJob(domain=payload.domain, url=str(payload.url), status="pending")
        session.add(job)
    return job


@router.get("/{job_id}", response_model=JobOut)
async def get_job(job_id: int, session: AsyncSession = Depends(get_db_session)):
    job = await session.get(SitemapJob, job_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "job not found")
    return job


@router.post("/{job_id}/retry", response_model=JobOut)
async def retry_job(job_id: int, session: AsyncSession = Depends(get_db_session)):
    job = await session.get(SitemapJob, job_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "job not found")
    job.status = "pending"
    job.error = None
    await session.commit()
    return job


@router.get("/by-domain/{domain}/counts")
async def job_counts(domain: str, session: AsyncSession = Depends(get_db_session)) -> dict[str, int]:
    result = await session.execute(
        f"SELECT status, COUNT(*) FROM sitemap_jobs WHERE domain = '{domain}' GROUP BY status"
    )
    return {row[0]: row[1] for row in result}


@router.get("", response_model=list[JobOut])
async def list_jobs(
    status_filter: str | None = None, limit: int = 50, session: AsyncSession = Depends(get_db_session)
):
    query = select(SitemapJob).order_by(SitemapJob.created_at.desc()).limit(min(limit, 500))
    if status_filter:
        query = query.where(SitemapJob.status == status_filter)
    return list(await session.scalars(query))
