"""Database engine, session factories and the FastAPI session dependency."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

DATABASE_URL = os.environ.get(
    "DATABASE_URL", "mysql+aiomysql://sitemaps:sitemaps@localhost:3306/sitemaps"
)

# Connection settings are the one place where SQL is allowed (ORM guide, "What This Means").
engine = create_async_engine(
    DATABASE_URL,
    pool_size=10,
    pool_pre_ping=True,
    connect_args={"init_command": "SET SESSION time_zone = '+00:00'"},
)

SessionLocal = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


@asynccontextmanager
async def get_background_session() -> AsyncIterator[AsyncSession]:
    """One session and one transaction for a background task.

    Commits when the block exits normally and rolls back when it raises, so code inside
    the block never calls begin(), commit() or rollback() itself.
    """
    async with SessionLocal() as session:
        async with session.begin():
            yield session


async def get_db_session() -> AsyncIterator[AsyncSession]:
    """FastAPI dependency: a request-scoped session; the route owns its transaction."""
    async with SessionLocal() as session:
        yield session
