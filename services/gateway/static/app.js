// ClassRec student page: wires the setup form, the microphone, the WebSocket and the views.
//
// Modules: capture.js (mic -> 16 kHz PCM16 frames, via pcm-worklet.js), connection.js (the
// /ws/transcribe protocol, reconnect + resume, offline buffering), transcript.js, alerts.js
// (panel, notifications, beep), notices.js, settings.js, util.js.
//
// A "recording" (the `rec` object) lives from a Start click to its `end`; phases:
//   starting (waiting for the microphone) -> live (maybe paused) -> finishing (stop sent,
//   waiting for "end") -> ended.

import { AlertsView, Beeper, Notifier, alertTitle, categoryLabel } from "./alerts.js";
import { MicCapture } from "./capture.js";
import { TranscribeConnection, transcribeUrl } from "./connection.js";
import { FlagsController } from "./flags.js";
import { FollowConnection } from "./follow.js";
import { HistoryPanel, apiUrl, sessionUrl } from "./history.js";
import { loadLanguages } from "./languages.js";
import { SearchBox } from "./search.js";
import { Notices } from "./notices.js";
import { shareToken } from "./owner.js";
import { loadSettings, readSettings, saveSettings, startMessage, writeSettings } from "./settings.js";
import { LocalRecording, ReviewPlayer, audioFor } from "./review.js";
import { VoiceLock } from "./voice.js";
import { TranscriptView } from "./transcript.js";
import { UploadPanel } from "./upload.js";
import { downloadText, formatClock } from "./util.js";

const $ = (id) => document.getElementById(id);

const ui = {
  form: $("setup"),
  fields: $("setup-fields"),
  start: $("start"),
  pause: $("pause"),
  stop: $("stop"),
  status: $("status"),
  sessionId: $("session-id"),
  elapsed: $("elapsed"),
  level: $("level"),
  levelFill: $("level-fill"),
  micLabel: $("mic-label"),
  transcript: $("transcript"),
  jump: $("jump-live"),
  alerts: $("alerts"),
  alertCount: $("alert-count"),
  notices: $("notices"),
  download: $("download"),
  summary: $("setup-summary"),
};

const transcript = new TranscriptView(ui.transcript, { jumpButton: ui.jump });
const alerts = new AlertsView(ui.alerts, { countEl: ui.alertCount });
const notices = new Notices(ui.notices);
const notifier = new Notifier();
const beeper = new Beeper();
const pastLectures = new HistoryPanel($("history"));
const voiceLock = new VoiceLock($("voice-lock"), { course: () => readSettings(ui.form).course });
ui.form.elements.course.addEventListener("change", () => voiceLock.refresh()); // a saved voice per course
const lectureSearch = new SearchBox($("search-form"), $("search-results"), pastLectures);
const uploads = new UploadPanel($("upload"), {
  options: () => ({ ...startMessage(readSettings(ui.form)), ...voiceLock.startFields() }),
  onDone: () => pastLectures.refreshIfOpen(), // the uploaded recording joins the past lectures
});

/** The current recording, or null before the first Start. */
let rec = null;

// Bookmarks and doubts on the live transcript (flags.js): sent on the recording's connection.
const finalWords = new Map(); // "part:segment" -> the final's word timings, for a tap on one word
const flags = new FlagsController({
  wordsOf: (seg) => finalWords.get(`${seg.dataset.part}:${seg.dataset.segment}`) || null,
  transcriptRoot: ui.transcript,
  listRoot: $("flags"),
  countEl: $("flag-count"),
  send: (msg) => Boolean(rec && rec.conn && rec.conn.sendJson(msg)),
  now: () => (rec && rec.phase !== "ended" ? rec.sentSeconds : 0),
  quote: (start, end) =>
    transcript
      .toJSON()
      .filter((t) => t.final && t.part === transcript.part && t.end >= start && t.start <= end)
      .map((t) => t.text)
      .join(" "),
});
// Review: playback synced to words (review.js), of this page's lecture or a past one.
const localRecording = new LocalRecording();
const review = new ReviewPlayer($("review"));
const reviewButton = $("review-open");

async function openReview(sid, at = null) {
  const resp = await fetch(sessionUrl(sid), { headers: { Accept: "application/json" }, cache: "no-store" });
  if (!resp.ok) {
    notices.show(`Cannot open that lecture for review (HTTP ${resp.status}).`, { kind: "warning", code: "review" });
    return null;
  }
  const session = await resp.json();
  review.load(session, await audioFor(sid, localRecording, apiUrl));
  review.root.scrollIntoView({ block: "start" });
  if (at !== null) review.seek(at, false);
  return review;
}

reviewButton.addEventListener("click", () => {
  if (rec && rec.conn && rec.conn.sessionId) openReview(rec.conn.sessionId);
});
$("history-list").addEventListener("click", (e) => {
  const button = e.target.closest("button[data-action=review]");
  if (button) openReview(button.closest(".history-item").dataset.session);
});

flags.addEventListener("select", (e) => {
  const at = transcript.toJSON().find((t) => t.part === transcript.part && t.end >= e.detail.start);
  if (at) transcript.reveal(at.segment, at.part);
});

// --- elapsed time (recorded time: pauses excluded) ------------------------------------------------

class Stopwatch {
  constructor() {
    this.total = 0;
    this.since = null;
  }
  run() {
    if (this.since === null) this.since = performance.now();
  }
  hold() {
    if (this.since !== null) this.total += performance.now() - this.since;
    this.since = null;
  }
  get seconds() {
    return (this.total + (this.since === null ? 0 : performance.now() - this.since)) / 1000;
  }
}

setInterval(() => {
  if (!rec) return;
  ui.elapsed.textContent = formatClock(rec.clock.seconds);
  ui.status.textContent = statusText(statusKey()); // the audio waiting for the server changes
}, 250);

// --- Start / Pause / Stop ---------------------------------------------------------------------

ui.start.addEventListener("click", onStart);
ui.pause.addEventListener("click", onPause);
ui.stop.addEventListener("click", onStop);

function onStart() {
  if (rec && rec.phase !== "ended") return;
  const settings = readSettings(ui.form);
  const capture = new MicCapture({
    echoCancellation: settings.echoCancellation,
    noiseSuppression: settings.noiseSuppression,
  });
  // getUserMedia runs synchronously inside begin(): nothing may be awaited before this line.
  const ready = capture.begin();
  notifier.requestPermission(); // not awaited
  beeper.unlock(); // so the alert beep may play later, even in a background tab

  saveSettings(settings);
  transcript.clear();
  alerts.clear();
  flags.clear();
  finalWords.clear();
  localRecording.reset(null);
  notices.clear();
  ui.sessionId.textContent = "";
  ui.micLabel.textContent = "";
  showSummary(settings);

  const r = {
    phase: "starting",
    paused: false,
    settings,
    capture,
    conn: null,
    clock: new Stopwatch(),
    sentSeconds: 0,
  };
  rec = r;
  render();
  ready.then(
    () => onMicReady(r),
    (err) => onMicFailed(r, err),
  );
}

function onMicReady(r) {
  if (rec !== r || r.phase !== "starting") return;
  ui.micLabel.textContent = r.capture.label;
  r.capture.addEventListener("frame", (e) => {
    if (r.paused || !r.conn || r.phase === "ended") return;
    localRecording.push(e.detail.pcm); // before sending: the socket may take the buffer
    r.conn.sendAudio(e.detail.pcm);
    r.sentSeconds += e.detail.samples / 16000;
  });
  r.capture.addEventListener("level", (e) => showLevel(r.paused ? 0 : e.detail.level));
  r.capture.addEventListener("ended", () => {
    notices.show("The microphone stopped (unplugged or permission revoked). Finishing the transcript.", {
      kind: "warning",
      code: "mic_ended",
    });
    onStop();
  });

  const start = { ...startMessage(r.settings), ...voiceLock.startFields() };
  const conn = new TranscribeConnection({ url: transcribeUrl(), start });
  r.conn = conn;
  conn.addEventListener("state", () => onConnectionState(r));
  conn.addEventListener("session", (e) => onSession(r, e.detail));
  conn.addEventListener("transcript", (e) => onTranscript(e.detail));
  conn.addEventListener("alert", (e) => onAlert(r, e.detail));
  conn.addEventListener("flag", (e) => flags.confirm(e.detail));
  conn.addEventListener("error", (e) => notices.show(e.detail.message || "Server error", { code: e.detail.code || "error" }));
  conn.addEventListener("end", () => onEnd(r));
  conn.addEventListener("notice", (e) => notices.show(e.detail.message, { kind: "warning", code: e.detail.code }));
  conn.open();

  r.phase = "live";
  r.clock.run();
  wakeLock.acquire();
  render();
}

function onMicFailed(r, err) {
  if (rec !== r) return;
  if (r.phase === "starting" || r.phase === "live") {
    notices.show(err && err.message ? err.message : String(err), { code: "microphone" });
  }
  r.phase = "ended";
  render();
}

function onPause() {
  const r = rec;
  if (!r || r.phase !== "live") return;
  r.paused = !r.paused;
  if (r.paused) {
    r.clock.hold();
    showLevel(0);
  } else {
    r.clock.run();
  }
  render();
}

async function onStop() {
  const r = rec;
  if (!r) return;
  if (r.phase === "starting") {
    r.phase = "ended";
    r.capture.stop();
    render();
    return;
  }
  if (r.phase !== "live") return;
  r.phase = "finishing";
  r.paused = false;
  r.clock.hold();
  render();
  await r.capture.stop(); // the worklet's last partial frame is sent before "stop"
  showLevel(0);
  wakeLock.release();
  if (r.conn) r.conn.stop();
  render();
}

function onEnd(r) {
  if (rec !== r) return;
  finish(r);
}

/** Ends a recording for good (after "end", or when the connection gave up). */
function finish(r) {
  if (r.phase === "ended") return;
  r.phase = "ended";
  r.clock.hold();
  r.capture.stop();
  showLevel(0);
  wakeLock.release();
  render();
  pastLectures.refreshIfOpen(); // the lecture just recorded joins the past ones
}

// --- server messages --------------------------------------------------------------------------

function onConnectionState(r) {
  if (rec !== r) return;
  if (r.conn.state === "failed") {
    notices.show(
      r.phase === "finishing"
        ? "The connection ended before the server confirmed the end; the last sentences may be missing."
        : "Lost the connection to the server. Press Start to begin a new recording.",
      { code: "disconnected" },
    );
    r.failed = true;
    finish(r);
  }
  render();
}

function onSession(r, msg) {
  ui.sessionId.textContent = msg.session;
  // The page's recording is this session's audio from its first byte; a new session after a failed
  // resume restarts the session clock, so the recording restarts with it.
  if (msg.previous && !msg.resumed) localRecording.reset(msg.session);
  else localRecording.sid = msg.session;
  if (msg.resumed) flags.resendPending(); // a flag sent just before the drop may not have arrived
  if (msg.language && r.settings.language === null && !r.detectedLanguage) {
    r.detectedLanguage = msg.language; // "auto": the server says what it detected
    const option = [...ui.form.elements.language.options].find((o) => o.value === msg.language);
    notices.show(`Language detected: ${option ? option.textContent : msg.language}`, { kind: "info", timeout: 5000 });
  }
  if (msg.previous && !msg.resumed) {
    transcript.beginPart(`New session ${msg.session}`);
    notices.show("The server could not resume the previous session; a new one was started.", {
      kind: "warning",
      code: "resume_failed",
    });
  }
}

function onTranscript(msg) {
  const el = transcript.update(msg);
  if (el && msg.final && Array.isArray(msg.words) && msg.words.length) finalWords.set(`${transcript.part}:${msg.segment}`, msg.words);
  if (el && msg.final) flags.render();
  if (el) {
    const alert = alerts.alerts.find((a) => a.part === transcript.part && Number(a.segment) === Number(msg.segment));
    if (alert) transcript.markAlert(alert.segment, alert.part, alert.category);
  }
  ui.download.disabled = transcript.size === 0;
}

function onAlert(r, msg) {
  const part = transcript.part;
  const el = alerts.add(msg, part);
  if (!el) return; // duplicate (replayed after a resume)
  transcript.markAlert(msg.segment, part, msg.category);
  beeper.beep();
  notifier.notify(msg, {
    course: r.settings.course,
    tag: `classrec-${r.conn && r.conn.sessionId}-${msg.segment}-${msg.category}`,
    onClick: () => transcript.reveal(Number(msg.segment), part),
  });
  if (document.hidden) {
    unseenAlerts += 1;
    lastAlertTitle = `${categoryLabel(msg.category)}: ${alertTitle(msg)}`;
  }
  render();
}

alerts.addEventListener("select", (e) => {
  if (!transcript.reveal(e.detail.segment, e.detail.part)) {
    notices.show("That sentence is not in the transcript yet.", { kind: "info", timeout: 3000 });
  }
});

/** The one-line reminder of the setup shown while the form is hidden. */
function showSummary(s) {
  const language = ui.form.elements.language.selectedOptions[0];
  const parts = [];
  ui.summary.replaceChildren();
  const strong = document.createElement("strong");
  strong.textContent = s.course || "Untitled lecture";
  parts.push(language ? language.textContent : s.languageChoice);
  parts.push(s.keywords.length ? `watching for: ${s.keywords.join(", ")}` : "watching for exams, quizzes and deadlines");
  const lock = voiceLock.describe();
  if (lock) parts.push(lock);
  ui.summary.append(strong, ` · ${parts.join(" · ")}`);
}

// --- rendering --------------------------------------------------------------------------------

const STATUS_TEXT = {
  idle: "idle",
  starting: "waiting for microphone…",
  connecting: "connecting…",
  reconnecting: "reconnecting…",
  live: "live",
  paused: "paused",
  finishing: "finishing…",
  ended: "ended",
  disconnected: "disconnected",
};

function statusKey() {
  const r = rec;
  if (!r) return "idle";
  if (r.phase === "starting") return "starting";
  if (r.phase === "ended") return r.failed ? "disconnected" : "ended";
  const cs = r.conn ? r.conn.state : "connecting";
  if (cs === "connecting" || cs === "idle") return "connecting";
  if (cs === "reconnecting") return "reconnecting";
  if (cs === "failed") return "disconnected";
  if (r.phase === "finishing") return "finishing";
  return r.paused ? "paused" : "live";
}

/** The banner: the state, and how much audio waits for the server's acknowledgement (a second or more:
 * offline, or catching up after a reconnect; it is sent again if the connection drops). */
function statusText(key) {
  const r = rec;
  const waiting = r && r.conn && r.phase !== "ended" ? r.conn.bufferedSeconds : 0;
  const text = STATUS_TEXT[key];
  return waiting >= 1 ? `${text} (${formatWaiting(waiting)} of audio waiting)` : text;
}

function formatWaiting(seconds) {
  return seconds < 90 ? `${Math.round(seconds)} s` : `${Math.round(seconds / 60)} min`;
}

let unseenAlerts = 0;
let lastAlertTitle = "";

function render() {
  const r = rec;
  const phase = r ? r.phase : "idle";
  const key = statusKey();
  ui.status.textContent = statusText(key);
  ui.status.dataset.state = key;
  document.body.dataset.phase = phase;

  const busy = phase === "starting" || phase === "live" || phase === "finishing";
  ui.start.disabled = busy;
  ui.start.textContent = r && phase === "ended" ? "Start new" : "Start";
  ui.pause.disabled = phase !== "live";
  ui.pause.textContent = r && r.paused ? "Resume" : "Pause";
  ui.pause.setAttribute("aria-pressed", r && r.paused ? "true" : "false");
  ui.stop.disabled = !(phase === "starting" || phase === "live");
  ui.fields.disabled = busy;
  ui.level.classList.toggle("muted", !r || r.paused || phase !== "live");
  ui.download.disabled = transcript.size === 0;
  reviewButton.disabled = !(r && r.conn && r.conn.sessionId && transcript.size > 0);

  const live = key === "live" ? "● " : "";
  const badge = unseenAlerts > 0 ? `(${unseenAlerts}) ${lastAlertTitle} — ` : "";
  document.title = `${badge}${live}ClassRec`;
}

let lastLevel = -1;
function showLevel(level) {
  const pct = Math.round(level * 100);
  if (pct === lastLevel) return;
  lastLevel = pct;
  ui.levelFill.style.transform = `scaleX(${level})`;
  ui.level.setAttribute("aria-valuenow", String(pct));
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden) {
    unseenAlerts = 0;
    render();
    if (rec && rec.phase === "live") wakeLock.acquire();
  }
});

window.addEventListener("beforeunload", (event) => {
  if (rec && (rec.phase === "live" || rec.phase === "finishing")) {
    event.preventDefault();
    event.returnValue = "";
  }
});

// --- keep the phone's screen on while recording (where supported) ------------------------------

const wakeLock = {
  sentinel: null,
  async acquire() {
    if (!("wakeLock" in navigator) || this.sentinel || document.hidden) return;
    try {
      this.sentinel = await navigator.wakeLock.request("screen");
      this.sentinel.addEventListener("release", () => {
        this.sentinel = null;
      });
    } catch {
      this.sentinel = null;
    }
  },
  release() {
    if (this.sentinel) this.sentinel.release().catch(() => {});
    this.sentinel = null;
  },
};

// --- download ---------------------------------------------------------------------------------

ui.download.addEventListener("click", () => {
  const course = rec ? rec.settings.course : "";
  const now = new Date();
  const stamp = `${now.getFullYear()}-${String(now.getMonth() + 1).padStart(2, "0")}-${String(now.getDate()).padStart(2, "0")}`;
  const slug = (course || "lecture").toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "") || "lecture";
  const header = [course || "Lecture", stamp, rec && rec.conn && rec.conn.sessionId ? `session ${rec.conn.sessionId}` : ""]
    .filter(Boolean)
    .join(" — ");
  const alertLines = alerts.alerts.map(
    (a) => `* ${categoryLabel(a.category)}: ${alertTitle(a)}${a.date ? ` (${a.date}${a.time ? ` ${a.time}` : ""})` : ""} [${formatClock(a.start)}] “${a.text}”`,
  );
  const body = [header, "", ...(alertLines.length ? ["Alerts:", ...alertLines, ""] : []), "Transcript:", transcript.toText()];
  downloadText(`classrec-${slug}-${stamp}.txt`, body.join("\n"));
});

// --- init -------------------------------------------------------------------------------------

writeSettings(ui.form, loadSettings());
// ?review=<sid>#t=<seconds>: the Markdown export's timestamps open the lecture's playback there.
{
  const params = new URLSearchParams(window.location.search);
  const sid = params.get("review");
  const t = /(?:^#|&)t=([\d.]+)/.exec(window.location.hash);
  if (sid) openReview(sid, t ? Number(t[1]) : null);
}
loadLanguages(ui.form, loadSettings().languageChoice).then(() => writeSettings(ui.form, loadSettings()));
ui.form.addEventListener("submit", (e) => e.preventDefault());
render();

// For debugging in the console and for end-to-end tests.
window.classrec = {
  transcript,
  alerts,
  notices,
  history: pastLectures,
  search: lectureSearch,
  flags,
  review,
  localRecording,
  openReview,
  uploads,
  get recording() {
    return rec;
  },
};

// --- share view (/s/<token>): follow a shared lecture, read-only ---------------------------------

function follow() {
  document.body.dataset.mode = "follow";
  notices.show("You are following a shared lecture (read-only).", { kind: "info", code: "follow" });
  const f = new FollowConnection();
  const labels = { connecting: "connecting…", open: "live", reconnecting: "reconnecting…", ended: "ended", failed: "disconnected" };
  f.addEventListener("state", (e) => {
    ui.status.textContent = labels[e.detail.state] || e.detail.state;
    ui.status.dataset.state = e.detail.state === "open" ? "live" : e.detail.state;
  });
  f.addEventListener("session", (e) => {
    ui.sessionId.textContent = e.detail.session;
    alerts.setSession(e.detail.session);
  });
  f.addEventListener("transcript", (e) => onTranscript(e.detail));
  f.addEventListener("alert", (e) => {
    if (alerts.add(e.detail, transcript.part)) transcript.markAlert(e.detail.segment, transcript.part, e.detail.category);
  });
  f.addEventListener("error", (e) => notices.show(e.detail.message || "Server error", { code: e.detail.code || "error" }));
  f.open();
  window.classrec.follow = f;
}

if (shareToken()) follow();
