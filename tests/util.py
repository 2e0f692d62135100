"""Helpers the tests share (plain functions and types; the fixtures are in conftest.py): paths,
a free port, the dev lectures with their ground truth, the whole stack's handle and readiness."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
import wave
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Lecture:
    pcm: bytes
    truth: dict

    @property
    def speech(self) -> list[dict]:
        return [s for s in self.truth["segments"] if s["kind"] == "speech"]

    @property
    def noise(self) -> list[dict]:
        return [s for s in self.truth["segments"] if s["kind"] == "noise"]


def load_lecture(name: str) -> Lecture:
    with wave.open(str(DATA / f"{name}.wav")) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        pcm = w.readframes(w.getnframes())
    return Lecture(pcm, json.loads((DATA / f"{name}.json").read_text()))


@dataclass
class Stack:
    http: str
    ws: str
    redis_url: str
    log: Path


def wait_ready(http: str, proc: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"stack exited early:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{http}/healthz", timeout=2) as resp:
                if json.loads(resp.read()).get("ready"):
                    return
        except OSError:
            pass
        time.sleep(0.2)  # polling for readiness, not synchronising on an event
    raise RuntimeError(f"stack not ready in {timeout}s:\n{log.read_text()[-4000:]}")
