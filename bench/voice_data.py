"""Dev recordings for the voice lock: one lecturer throughout, interjections by other speakers.

    python -m bench.voice_data OUT_DIR [--real-dir ../shared/devdata/real] [--hall]

Voices: espeak-ng (formant synthesis, several variants), flite (CMU Arctic voices slt, rms, awb,
kal16: each built from one real person's recordings) and the real LJSpeech reader. Each recording
NAME gets NAME.wav + NAME.json (make_dev_lecture.py's format; every speech stretch also has
"speaker": "lecturer" | "other" and "voice") and NAME.enrol.wav: 10-15 s of the lecturer saying
other sentences, for enrolment. The lecturer says the ten plain sentences and five announcements
of make_dev_lecture.py; seven interjections by others come between them, two of them right after
the lecturer with no pause (one utterance, two speakers). With --hall every recording also gets a
NAME_hall version through make_dev_hall.py (reverb, ventilation floor at 15 dB SNR, -8 dB), its
enrolment too. Needs espeak-ng, flite and sox (only to build; the results are committed).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

from testkit.lecture_text import ANNOUNCEMENTS, PLAIN

SR = 16_000
HERE = Path(__file__).resolve().parent
DEVDATA = HERE.parent.parent / "shared" / "devdata"

ANNOUNCE = ANNOUNCEMENTS  # make_dev_lecture.py's sentences (testkit/lecture_text.py)
INTERJECT = [
    "Hey, could you pass me a pen please?",
    "Sorry, which page are we on right now?",
    "I think my laptop battery is about to die.",
    "Did you already finish the reading for today?",
    "Can you move your bag a little, I cannot see the board.",
    "Where did you get that coffee, it smells great.",
    "Wait, did he say chapter three or chapter four?",
]
ENROL = [
    "Good morning everyone, and welcome back to the course.",
    "Today we carry on with the chapter about cells and how they use energy.",
    "Please take out your notes, because we have a lot to cover before the break.",
]
# name -> (engine, voice, speed)
VOICES = {
    "espeak_us": ("espeak", "en-us", 150),
    "espeak_gb": ("espeak", "en-gb", 160),
    "espeak_m3": ("espeak", "en-us+m3", 140),
    "espeak_scot": ("espeak", "en-gb-scotland", 155),
    "espeak_f2": ("espeak", "en-us+f2", 165),
    "espeak_rp": ("espeak", "en-gb-x-rp", 150),
    "espeak_f4": ("espeak", "en-us+f4", 150),
    "espeak_029": ("espeak", "en-029", 155),
    "espeak_m7": ("espeak", "en-us+m7", 145),
    "espeak_m6": ("espeak", "en-us+m6", 150),
    "flite_slt": ("flite", "slt", 0),
    "flite_rms": ("flite", "rms", 0),
    "flite_awb": ("flite", "awb", 0),
    "flite_kal": ("flite", "kal16", 0),
}
# recording -> (lecturer, other voices in turn); "lj" is the real LJSpeech reader
RECORDINGS = {
    "voice_espeak": ("espeak_us", ["espeak_f4", "flite_slt", "lj", "espeak_f2", "flite_awb", "espeak_m7"]),
    "voice_rms": ("flite_rms", ["espeak_us", "flite_kal", "lj", "espeak_f4", "flite_slt", "espeak_gb"]),
    "voice_lj": ("lj", ["flite_slt", "espeak_f2", "flite_rms", "espeak_rp", "flite_awb", "espeak_m3"]),
    "voice_slt": ("flite_slt", ["lj", "espeak_f2", "flite_kal", "espeak_f4", "flite_rms", "espeak_scot"]),
    # Not a target: espeak-ng's accents and its m2-m6 variants are one synthetic voice with another
    # pronunciation or pitch; the embedder (trained on real speech) calls them the same speaker.
    "voice_espeak_pitch": ("espeak_us", ["espeak_scot", "espeak_m3", "espeak_029", "espeak_gb", "espeak_m6"]),
}
HARD = {"voice_espeak_pitch"}
# The whole-stack tests' short recording (tests/data/voice/lock): its first lines only.
RECORDINGS["voice_test"] = ("flite_rms", ["lj", "espeak_f2", "flite_slt"])
SHORT = {"voice_test": 9}
# LJSpeech clips: the lecturer "lj" enrols on the first two and lectures with the rest; as an
# other speaker, lj says clips in turn. Their text is tiny.en's offline transcript
# (tests/data/real_joined.json), LJ001-0009's is the corpus's own.
LJ_ENROL = ["LJ001-0022.wav", "LJ001-0023.wav"]


def tts(text: str, voice: str) -> np.ndarray:
    engine, name, speed = VOICES[voice]
    with tempfile.TemporaryDirectory() as d:
        raw, out = Path(d) / "a.wav", Path(d) / "b.wav"
        if engine == "espeak":
            cmd = ["espeak-ng", "-v", name, "-s", str(speed), "-w", str(raw), text]
        else:
            cmd = ["flite", "-voice", name, "-t", text, "-o", str(raw)]
        subprocess.run(cmd, check=True, capture_output=True)
        subprocess.run(
            ["sox", str(raw), "-r", str(SR), "-c", "1", "-b", "16", str(out), "norm", "-3"], check=True
        )
        return read(out)


def read(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768


def write(path: Path, y: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes((np.clip(y, -1, 1) * 32767).astype("<i2").tobytes())


class LjClips:
    def __init__(self, real_dir: Path) -> None:
        joined = json.loads((HERE.parent / "tests" / "data" / "real_joined.json").read_text())
        self.text = {s["clip"]: s["text"] for s in joined["segments"] if s.get("clip")}
        self.text["LJ001-0009.wav"] = (
            "Printing, then, for our purpose, may be considered as the art of making books by means of movable types."
        )
        self.dir = real_dir
        self.queue = [c for c in sorted(self.text) if c not in LJ_ENROL]

    def clip(self, name: str) -> tuple[np.ndarray, str]:
        x = read(self.dir / name)
        return x / max(1e-6, np.abs(x).max()) * 0.7, self.text[name]

    def next(self) -> tuple[np.ndarray, str]:
        name = self.queue.pop(0)
        self.queue.append(name)
        return self.clip(name)


def say(voice: str, text: str, lj: LjClips) -> tuple[np.ndarray, str]:
    return lj.next() if voice == "lj" else (tts(text, voice), text)


def build(name: str, out: Path, lj: LjClips, seed: int) -> None:
    lecturer, others = RECORDINGS[name]
    rng = np.random.default_rng(seed)
    lines = [("lecturer", p, None) for p in PLAIN]
    for i, (text, cat) in enumerate(ANNOUNCE):
        lines.insert(2 + 3 * i, ("lecturer", text, cat))
    for i, text in enumerate(INTERJECT):  # after lecturer lines 1, 3, 5, ...: the 2nd and 5th glued on
        lines.insert(2 + 3 * i, ("other", text, "glued" if i in (1, 4) else None))
    lines = lines[: SHORT.get(name, len(lines))]
    audio, segs, alerts, t = [], [], [], 0.0
    n_other = 0
    for who, text, tag in lines:
        glued = who == "other" and tag == "glued"
        gap = np.zeros(int(SR * (0.12 if glued else rng.uniform(0.8, 2.5))), np.float32)
        audio.append(gap)
        t += len(gap) / SR
        voice = lecturer if who == "lecturer" else others[n_other % len(others)]
        n_other += who == "other"
        x, said = say(voice, text, lj)
        start = t
        audio.append(x)
        t += len(x) / SR
        segs.append(
            {
                "kind": "speech",
                "start": round(start, 3),
                "end": round(t, 3),
                "text": said,
                "speaker": who,
                "voice": voice,
                **({"glued": True} if glued else {}),
            }
        )
        if who == "lecturer" and tag and voice != "lj":  # the real reader says her own clips
            alerts.append({"category": tag, "text": said, "start": round(start, 3)})
    audio.append(np.zeros(SR * 2, np.float32))
    y = np.concatenate(audio)
    y = y + 0.003 * rng.standard_normal(len(y)).astype(np.float32) * 0.3
    write(out / f"{name}.wav", y)
    meta = {"duration": len(y) / SR, "lecturer": lecturer, "segments": segs, "alerts": alerts}
    (out / f"{name}.json").write_text(json.dumps(meta, indent=1))
    if lecturer == "lj":
        enrol = np.concatenate(
            [np.concatenate([lj.clip(c)[0], np.zeros(SR // 2, np.float32)]) for c in LJ_ENROL]
        )
    else:
        enrol = np.concatenate(
            [np.concatenate([tts(s, lecturer), np.zeros(SR // 2, np.float32)]) for s in ENROL]
        )
    write(out / f"{name}.enrol.wav", enrol)
    (out / f"{name}.enrol.json").write_text(
        json.dumps(
            {
                "duration": len(enrol) / SR,
                "segments": [{"kind": "speech", "start": 0, "end": len(enrol) / SR, "text": ""}],
            }
        )
    )
    print(f"{name}: {len(y) / SR:.1f} s, lecturer {lecturer}, enrolment {len(enrol) / SR:.1f} s")


def hall(out: Path, name: str) -> None:
    for src in (name, f"{name}.enrol"):
        dst = src.replace(name, f"{name}_hall", 1)
        subprocess.run(
            [sys.executable, str(DEVDATA / "make_dev_hall.py"), str(out / src), str(out / dst)],
            check=True,
            capture_output=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--real-dir", default=str(DEVDATA / "real"))
    ap.add_argument("--hall", action="store_true")
    ap.add_argument("--only", nargs="*", default=list(RECORDINGS))
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in a.only:
        build(name, out, LjClips(Path(a.real_dir)), seed=list(RECORDINGS).index(name) + 1)
        if a.hall:
            hall(out, name)


if __name__ == "__main__":
    main()
