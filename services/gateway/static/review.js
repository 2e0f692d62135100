// Review a lecture: its audio played back with the word being said highlighted.
//
//   const player = new ReviewPlayer(sectionEl);
//   player.load(session, { url, source });   // session: GET /api/sessions/<sid>; url: audio or null
//   player.seek(seconds)                      // and play
//
// The transcript is laid out in the server's paragraphs (`session.paragraphs`), each opening with
// its time; every word with timings (`transcript[].words`) is a span, indexed ONCE into two
// Float64Arrays of starts and ends and an array of elements. While the audio plays, a
// requestAnimationFrame loop binary-searches the current time in that index and moves one class from
// the previous word to the new one: no DOM query per frame, so an 8,000-word lecture plays as
// smoothly as a short one. A click on a word seeks there; alerts and flags jump to their moment;
// speeds 1x-2x. A segment without word timings is one unit, highlighted as a whole.
//
// Audio: the recorded audio route (GET /api/sessions/<sid>/audio, when the server keeps audio);
// else the page's own recording of the lecture it recorded (`LocalRecording`, the exact PCM it sent,
// so its clock is the session's); else the transcript alone.

import { alertTitle, categoryLabel } from "./alerts.js";
import { formatClock, h } from "./util.js";

export const SPEEDS = [1, 1.25, 1.5, 1.75, 2];
export const GAP_TOLERANCE_S = 0.3; // a word stays lit this long into the pause after it
const RATE = 16000;

/** The PCM this page sent for its current lecture, playable as a WAV. */
export class LocalRecording {
  constructor() {
    this.reset(null);
  }
  reset(sid) {
    this.sid = sid;
    this.chunks = [];
    this.bytes = 0;
    if (this.url) URL.revokeObjectURL(this.url);
    this.url = null;
  }
  push(buffer) {
    this.chunks.push(buffer.slice(0));
    this.bytes += buffer.byteLength;
    if (this.url) URL.revokeObjectURL(this.url);
    this.url = null;
  }
  get seconds() {
    return this.bytes / 2 / RATE;
  }
  /** An object URL of the recording as a 16 kHz mono WAV (rebuilt only when audio was added). */
  wavUrl() {
    if (!this.bytes) return null;
    if (!this.url) this.url = URL.createObjectURL(new Blob([wavHeader(this.bytes), ...this.chunks], { type: "audio/wav" }));
    return this.url;
  }
}

function wavHeader(bytes) {
  const v = new DataView(new ArrayBuffer(44));
  const text = (at, s) => [...s].forEach((c, i) => v.setUint8(at + i, c.charCodeAt(0)));
  text(0, "RIFF");
  v.setUint32(4, 36 + bytes, true);
  text(8, "WAVEfmt ");
  v.setUint32(16, 16, true);
  v.setUint16(20, 1, true); // PCM
  v.setUint16(22, 1, true); // mono
  v.setUint32(24, RATE, true);
  v.setUint32(28, RATE * 2, true);
  v.setUint16(32, 2, true);
  v.setUint16(34, 16, true);
  text(36, "data");
  v.setUint32(40, bytes, true);
  return v.buffer;
}

/** The lecture's audio: the server's recorded audio when it has it, else the page's own recording. */
export async function audioFor(sid, local, apiUrl) {
  const url = apiUrl(`/api/sessions/${encodeURIComponent(sid)}/audio`);
  try {
    const resp = await fetch(url, { headers: { Range: "bytes=0-0" }, cache: "no-store" });
    if (resp.ok) return { url, source: "recorded audio" };
  } catch {
    /* no server audio */
  }
  if (local && local.sid === sid && local.bytes) return { url: local.wavUrl(), source: "this page's recording" };
  return { url: null, source: "no audio for this lecture" };
}

/** Index of the last start <= t (-1 when t is before the first). */
export function lastStartAtOrBefore(starts, t) {
  let lo = 0, hi = starts.length - 1, found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (starts[mid] <= t) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

export class ReviewPlayer extends EventTarget {
  constructor(root) {
    super();
    this.root = root;
    this.current = -1;
    this.raf = 0;
    this.follow = true;
    this.starts = new Float64Array(0);
    this.ends = new Float64Array(0);
    this.els = [];
    this.syncs = 0;
  }

  load(session, { url = null, source = "" } = {}) {
    this.stop();
    this.session = session;
    const audio = h("audio", { class: "rv-audio", controls: true, preload: "auto" });
    if (url) audio.src = url;
    this.audio = audio;
    const speed = h("select", { class: "rv-speed", "aria-label": "Playback speed" }, SPEEDS.map((s) => h("option", { value: s }, `${s}×`)));
    speed.addEventListener("change", () => (audio.playbackRate = Number(speed.value)));
    audio.addEventListener("play", () => this._loop());
    audio.addEventListener("seeked", () => this.sync(audio.currentTime));
    audio.addEventListener("timeupdate", () => this.sync(audio.currentTime));
    audio.addEventListener("ratechange", () => (speed.value = String(audio.playbackRate)));
    const course = session.config && session.config.course;
    const head = h(
      "div",
      { class: "panel-head" },
      h("h2", { id: "review-title" }, `Review: ${course || "Lecture"}`),
      h("button", { type: "button", class: "btn btn-small", dataset: { action: "close-review" }, onclick: () => this.close() }, "Close"),
    );
    const player = h(
      "div",
      { class: "rv-player" },
      audio,
      h("label", { class: "rv-speed-label" }, "Speed ", speed),
      h("span", { class: "rv-source", dataset: { source: url ? "audio" : "none" } }, source),
    );
    const text = this._text(session);
    text.addEventListener("click", (e) => {
      const w = e.target.closest("[data-i]");
      if (w) this.seek(this.starts[Number(w.dataset.i)]);
    });
    text.addEventListener("wheel", () => (this.follow = false), { passive: true });
    text.addEventListener("touchmove", () => (this.follow = false), { passive: true });
    this.text = text;
    this.root.replaceChildren(head, player, this._jumps(session), text);
    this.root.hidden = false;
    this.current = -1;
    return this;
  }

  /** Seeks to `seconds` and plays (when there is audio). */
  seek(seconds, play = true) {
    const t = Math.max(0, Number(seconds) || 0);
    this.follow = true;
    if (this.audio && this.audio.src) {
      this.audio.currentTime = t;
      if (play) this.audio.play().catch(() => {});
    }
    this.sync(t);
  }

  /** Highlights the word said at `t` (seconds of the lecture). O(log n), at most two elements touched. */
  sync(t) {
    this.syncs += 1;
    this.syncedT = t; // the time what is lit was chosen for (a frame behind the playing clock)
    const k = lastStartAtOrBefore(this.starts, t);
    const now = k >= 0 && t <= this.ends[k] + GAP_TOLERANCE_S ? k : -1;
    if (now === this.current) return now;
    if (this.current >= 0) this.els[this.current].classList.remove("rv-now");
    this.current = now;
    if (now >= 0) {
      const el = this.els[now];
      el.classList.add("rv-now");
      if (this.follow && !this.audio?.paused) el.scrollIntoView({ block: "nearest" });
    }
    return now;
  }

  close() {
    this.stop();
    if (this.audio) this.audio.pause();
    this.root.hidden = true;
    this.root.replaceChildren();
    this.dispatchEvent(new CustomEvent("close"));
  }

  stop() {
    cancelAnimationFrame(this.raf);
    this.raf = 0;
  }

  _loop() {
    this.stop();
    const tick = () => {
      this.sync(this.audio.currentTime);
      this.raf = this.audio.paused ? 0 : requestAnimationFrame(tick);
    };
    this.raf = requestAnimationFrame(tick);
  }

  _jumps(session) {
    const chips = [
      ...(session.alerts || []).map((a) =>
        h("button", { type: "button", class: `rv-jump cat-${a.category}`, dataset: { kind: "alert", start: a.start }, title: a.text, onclick: () => this.seek(a.start) },
          h("span", { class: "badge" }, categoryLabel(a.category)), ` ${alertTitle(a)} · ${formatClock(a.start)}`),
      ),
      ...(session.flags || []).map((f) =>
        h("button", { type: "button", class: "rv-jump rv-flag", dataset: { kind: "flag", start: f.start }, title: f.text || "", onclick: () => this.seek(f.start) },
          `⚑ ${formatClock(f.start)}${f.note ? ` · ${f.note}` : ""}`),
      ),
    ].sort((a, b) => Number(a.dataset.start) - Number(b.dataset.start));
    return h("div", { class: "rv-jumps", "aria-label": "Alerts and flags" }, chips.length ? chips : h("span", { class: "empty-hint" }, "No alerts or flags."));
  }

  /** The paragraphs, words as indexed spans. Builds the index (starts, ends, els) once. */
  _text(session) {
    const bySeg = new Map(session.transcript.map((t) => [t.segment, t]));
    const alertOf = new Map((session.alerts || []).map((a) => [a.segment, a.category]));
    const flags = [...(session.flags || [])].sort((a, b) => a.start - b.start);
    const paras = session.paragraphs && session.paragraphs.length ? session.paragraphs : session.transcript.map((t) => [t.segment]);
    const starts = [], ends = [], els = [];
    let fi = 0;
    const unit = (start, end, text, cls) => {
      const el = h("span", { class: cls, dataset: { i: els.length, ws: start, we: end } }, text);
      starts.push(start);
      ends.push(end);
      els.push(el);
      return el;
    };
    const nodes = paras.map((para) => {
      const first = bySeg.get(para[0]);
      const p = h("p", { class: "rv-para", dataset: { start: first ? first.start : 0 } },
        h("button", { type: "button", class: "rv-ts", onclick: () => this.seek(first.start) }, formatClock(first ? first.start : 0)));
      for (const seg of para) {
        const t = bySeg.get(seg);
        if (!t) continue;
        const span = h("span", { class: "rv-seg", dataset: { segment: seg, ...(alertOf.has(seg) ? { alert: alertOf.get(seg) } : {}) } });
        if (t.words && t.words.length) {
          t.words.forEach(([s, e, w], i) => {
            if (i) span.append(" ");
            span.append(unit(s, e, w, "rv-w"));
          });
        } else span.append(unit(t.start, t.end, t.text, "rv-w rv-whole"));
        p.append(span, " ");
        while (fi < flags.length && flags[fi].start <= t.end) {
          const f = flags[fi++];
          p.append(h("button", { type: "button", class: "rv-flag-mark", title: f.note || "flag", dataset: { start: f.start }, onclick: () => this.seek(f.start) }, f.note ? `⚑ ${f.note}` : "⚑"), " ");
        }
      }
      return p;
    });
    this.starts = Float64Array.from(starts);
    this.ends = Float64Array.from(ends);
    this.els = els;
    return h("div", { class: "rv-text", tabindex: 0, "aria-label": "Transcript, click a word to play from there" }, nodes.length ? nodes : h("p", { class: "empty-hint" }, "Nothing was transcribed."));
  }
}
