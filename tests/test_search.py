"""`GET /api/search` on a real PostgreSQL: English stemming, websearch syntax, newest lecture first,
ranked within it, marked and escaped snippets, and only the caller's lectures."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.gateway.app import make_app
from services.gateway.owners import OWNER_HEADER, digest
from shared.archive import Archive
from shared.db import connect_pool
from shared.messages import SessionConfig, TranscriptEvent
from shared.settings import GatewaySettings

A, B = "owner-a-" + secrets.token_urlsafe(16), "owner-b-" + secrets.token_urlsafe(16)
LECTURES = {  # (owner, started_at, course): finals
    ("a", 1_700_000_000.0, "Biology"): [
        "Welcome to the first lecture on cells.",
        "The exam covers membranes and the lab report.",
    ],
    ("a", 1_700_600_000.0, "Biology"): [
        "Today we talk about proteins.",
        "Remember: the final exams are in June, and exams are closed book.",
        "Then x < z, says the protein & its friend.",
    ],
    ("b", 1_700_900_000.0, "History"): ["The exam on the French revolution is next week."],
}


@pytest.fixture
async def c(redis_url: str, fresh_database_url: str) -> AsyncIterator[TestClient]:
    pool = await connect_pool(fresh_database_url, max_size=2)
    archive = Archive(pool)
    for (who, started, course), texts in LECTURES.items():
        sid = f"{who}-{int(started)}"
        config = SessionConfig(course=course, started_at=started)
        await archive.open_session(sid, digest(A if who == "a" else B), config)
        for i, text in enumerate(texts):
            await archive.add_final(
                sid,
                config,
                TranscriptEvent(segment=i, start=10.0 * i, end=10.0 * i + 5, text=text, final=True),
            )
    await pool.close()
    settings = GatewaySettings(redis_url=redis_url, database_url=fresh_database_url)
    async with TestClient(TestServer(make_app(settings))) as client:
        yield client


async def search(c: TestClient, q: str, owner: str | None = A) -> list[dict]:
    resp = await c.get("/api/search", params={"q": q}, headers={OWNER_HEADER: owner} if owner else {})
    assert resp.status == 200, await resp.text()
    return (await resp.json())["results"]


async def test_stemmed_newest_first_and_ranked(c: TestClient) -> None:
    hits = await search(c, "exam")
    # "exams" and "exam" both match; the newer lecture first; B's lecture never.
    assert [(h["session"], h["segment"]) for h in hits] == [("a-1700600000", 1), ("a-1700000000", 1)]
    assert hits[0]["start"] == 10.0 and hits[0]["course"] == "Biology"
    assert "<mark>exams</mark>" in hits[0]["snippet"] and "<mark>exam</mark>" in hits[1]["snippet"]
    assert hits[0]["created"].startswith("2023-11-21")
    assert [h["session"] for h in await search(c, "exam", B)] == ["b-1700900000"]


async def test_websearch_syntax(c: TestClient) -> None:
    assert [h["segment"] for h in await search(c, '"lab report"')] == [1]
    assert {h["session"] for h in await search(c, "proteins or cells")} == {"a-1700600000", "a-1700000000"}
    assert [(h["session"], h["segment"]) for h in await search(c, "exam -june")] == [("a-1700000000", 1)]
    assert await search(c, "the and of") == []  # only stop words: nothing, not an error


async def test_snippets_are_escaped(c: TestClient) -> None:
    (hit,) = await search(c, "says")
    assert "x &lt; z, <mark>says</mark>" in hit["snippet"]
    assert hit["snippet"].replace("<mark>", "").replace("</mark>", "").count("<") == 0


async def test_bad_queries(c: TestClient) -> None:
    assert (await c.get("/api/search", headers={OWNER_HEADER: A})).status == 400
    assert (await c.get("/api/search", params={"q": "x" * 201}, headers={OWNER_HEADER: A})).status == 400
    assert await search(c, "exam", owner=None) == []  # no key: the ownerless lectures, none here


async def test_no_archive_is_a_503(client: TestClient) -> None:
    resp = await client.get("/api/search", params={"q": "exam"}, headers={OWNER_HEADER: A})
    assert resp.status == 503
