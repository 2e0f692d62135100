"""Which languages this deployment can transcribe, and refusing a `start` that asks for another.

Every transcriber says in its heartbeat which model it loaded and which languages that model knows
(`heartbeat:transcriber:*`, field `languages`; null for a backend that does not say). A segment may
go to any transcriber, so the deployment supports what all of them support. Before any
transcriber is up, the gateway's own `WHISPER_MODEL` tells it for the bundled models.

`GET /api/languages` -> `{"model": "base", "languages": ["af", ...] | null, "auto": bool,
"translate": bool, "source": "transcribers" | "configuration" | "unknown"}`; `languages` null means
not known (anything is tried). The page builds its language list and translate option from it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import redis.asyncio as aioredis
from aiohttp import web

from services.gateway import state
from services.transcriber.models import configured_languages, resolve
from shared import keys
from shared.settings import TranscriberSettings

CACHE_S = 5.0
AUTO = "auto"


@dataclass(frozen=True)
class Support:
    model: str | None
    languages: list[str] | None  # None: not known
    source: str

    @property
    def multilingual(self) -> bool:
        return self.languages is None or len(self.languages) > 1

    def problem(self, language: str) -> str | None:
        """Why `language` cannot be transcribed here, or None when it can (or nobody can tell)."""
        if language == AUTO or self.languages is None or language in self.languages:
            return None
        hint = "English only" if self.languages == ["en"] else f"{len(self.languages)} languages"
        return (
            f"language {language!r} is not supported by the server's model {self.model} ({hint}); "
            "choose one of GET /api/languages"
        )

    def as_json(self) -> dict:
        return {
            "model": self.model,
            "languages": self.languages,
            "auto": self.multilingual,
            "translate": self.multilingual,
            "source": self.source,
        }


_cache: dict[str, tuple[float, Support]] = {}


async def support(r: aioredis.Redis) -> Support:
    """What the live transcribers (else the configuration) can transcribe; cached for CACHE_S."""
    hit = _cache.get("support")
    if hit and time.monotonic() - hit[0] < CACHE_S:
        return hit[1]
    found = await _from_heartbeats(r)
    if found is None:
        value = TranscriberSettings().whisper_model
        langs = configured_languages(value) if _is_local() else None
        langs = sorted(langs, key=lambda c: (c != "en", c)) if langs else langs
        found = Support(
            resolve(value).name if _is_local() else None, langs, "configuration" if langs else "unknown"
        )
    _cache["support"] = (time.monotonic(), found)
    return found


def _is_local() -> bool:
    return TranscriberSettings().transcribe_backend == "local"


async def _from_heartbeats(r: aioredis.Redis) -> Support | None:
    models: set[str] = set()
    common: set[str] | None = None
    seen = False
    async for key in r.scan_iter(match=keys.heartbeat("transcriber", "*"), count=100):
        raw = await r.get(key)
        if not raw:
            continue
        info = json.loads(raw)
        seen = True
        if info.get("model"):
            models.add(str(info["model"]))
        langs = info.get("languages")
        if langs is None:
            continue
        common = set(langs) if common is None else common & set(langs)
    if not seen:
        return None
    model = ", ".join(sorted(models)) or None
    if common is None:  # no transcriber says (an API backend): anything is tried
        return Support(model, None, "transcribers")
    return Support(model, sorted(common, key=lambda c: (c != "en", c)), "transcribers")


async def languages_route(request: web.Request) -> web.Response:
    return web.json_response((await support(request.app[state.REDIS])).as_json())


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/languages", languages_route)
