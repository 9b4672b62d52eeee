"""ORM models of the sitemap service."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Float, ForeignKey, Integer, String, Text, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class SitemapJob(Base):
    """One sitemap to import for one domain."""

    __tablename__ = "sitemap_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain: Mapped[str] = mapped_column(String(255), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)

    pages: Mapped[list[Page]] = relationship(back_populates="job", cascade="all, delete-orphan")


class Page(Base):
    """One <url> entry of an imported sitemap."""

    __tablename__ = "pages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("sitemap_jobs.id", ondelete="CASCADE"))
    domain: Mapped[str] = mapped_column(String(255), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    lastmod: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    priority: Mapped[float | None] = mapped_column(Float, default=None)

    job: Mapped[SitemapJob] = relationship(back_populates="pages")
