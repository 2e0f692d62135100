"""What the gateway says the deployment can transcribe, and its refusal of other languages (real Redis,
the real gateway app in-process; transcribers stand for themselves by their heartbeats)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from services.gateway import languages
from services.gateway.languages import Support
from services.transcriber.models import WHISPER_LANGUAGES
from shared import keys
from tests.util import own_redis


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis of this module's own: the session's stack beats on the shared one with its own
    transcribers (tiny.en), which would take part in every answer here."""
    with own_redis(tmp_path_factory.mktemp("languages-redis")) as url:
        yield url


@pytest.fixture(autouse=True)
async def fresh(monkeypatch, r) -> None:
    """No heartbeat of an earlier test (one that failed before its cleanup) and no cached answer."""
    async for key in r.scan_iter(match=keys.heartbeat("transcriber", "*")):
        await r.delete(key)
    languages._cache.clear()
    monkeypatch.setenv("WHISPER_MODEL", "tiny.en")
    monkeypatch.delenv("TRANSCRIBE_BACKEND", raising=False)


async def beat(r, consumer: str, model: str, langs: list[str] | None) -> None:
    info = {"backend": "local", "model": model, "languages": langs}
    await r.set(keys.heartbeat("transcriber", consumer), json.dumps(info), ex=10)


def test_problem_names_the_model() -> None:
    tiny = Support("tiny.en", ["en"], "transcribers")
    assert tiny.problem("en") is None and tiny.problem("auto") is None
    assert "tiny.en" in tiny.problem("es") and "English only" in tiny.problem("es")
    assert Support(None, None, "unknown").problem("xx") is None  # nobody can tell: tried


async def test_before_any_transcriber_the_configuration_says(client) -> None:
    body = await (await client.get("/api/languages")).json()
    assert body == {
        "model": "tiny.en",
        "languages": ["en"],
        "auto": False,
        "translate": False,
        "source": "configuration",
    }


async def test_every_transcriber_must_support_a_language(client, r) -> None:
    await beat(r, "t-base", "base", WHISPER_LANGUAGES[:99])
    body = await (await client.get("/api/languages")).json()
    assert body["source"] == "transcribers" and body["languages"][0] == "en" and "es" in body["languages"]
    assert body["auto"] and body["translate"]
    await beat(r, "t-tiny", "tiny.en", ["en"])
    languages._cache.clear()
    body = await (await client.get("/api/languages")).json()
    assert body["languages"] == ["en"] and body["model"] == "base, tiny.en"


async def test_an_unsupported_language_is_refused_at_start(client, r) -> None:
    await beat(r, "t-tiny2", "tiny.en", ["en"])
    ws = await client.ws_connect("/ws/transcribe")
    await ws.send_str(json.dumps({"type": "start", "language": "es"}))
    error = await ws.receive_json(timeout=10)
    assert error["type"] == "error" and error["code"] == "language_unsupported"
    assert "tiny.en" in error["message"] and "'es'" in error["message"]
    await ws.send_bytes(b"\x00\x00" * 1600)  # not transcribed as English: dropped, no session opened
    await ws.send_str(json.dumps({"type": "stop"}))
    assert await ws.receive_json(timeout=10) == {"type": "end"}
    await ws.close()
