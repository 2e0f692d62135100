// Upload a recording: POST /api/uploads with the setup form's options (course, language, keywords,
// prompt, time zone), a progress bar fed by polling GET /api/uploads/<sid>, and the transcript
// (GET /api/sessions/<sid>) with its downloads once the upload is done. Every request keeps ?token=.
//
// Markup (index.html): <details id="upload"> holding <form id="upload-form"> (#upload-file,
// #upload-start), <progress id="upload-progress">, #upload-status and <section id="upload-result">.

import { alertTitle, categoryLabel } from "./alerts.js";
import { DOWNLOADS, apiUrl, sessionUrl } from "./history.js";
import { accessHeaders } from "./owner.js";
import { formatClock, h } from "./util.js";

export const MAX_UPLOAD_BYTES = 200 * 1024 * 1024;
const POLL_MS = 1000;

/** The multipart body of POST /api/uploads: the file and the options of a `start` message. */
export function uploadBody(file, start) {
  const body = new FormData();
  body.append("file", file, file.name);
  body.append("language", start.language || "auto");
  if (start.prompt) body.append("prompt", start.prompt);
  if (start.keywords && start.keywords.length) body.append("keywords", start.keywords.join(", "));
  if (start.timezone) body.append("timezone", start.timezone);
  if (start.course) body.append("course", start.course);
  if (start.voice) {
    body.append("voice", start.voice); // voice lock (voice.js)
    body.append("others", start.others || "drop");
    body.append("owner", start.owner || "");
  }
  return body;
}

/** Progress as [fraction 0..1 or null when unknown, text]. Feeding runs ahead of transcription,
 * so the bar follows what is transcribed. */
export function describe(p) {
  const total = p.duration_s;
  if (p.status === "done") return [1, `Done: ${formatClock(total || p.fed_s)} transcribed.`];
  if (p.status === "failed") return [null, `Failed: ${p.error || "unknown error"}`];
  const of = total ? ` of ${formatClock(total)}` : "";
  const fraction = total ? Math.min(1, p.transcribed_s / total) : null;
  return [fraction, `Transcribing… ${formatClock(p.transcribed_s)}${of} (${formatClock(p.fed_s)} read)`];
}

export class UploadPanel {
  /** `options()` returns the current `start` message fields; `onDone()` runs after a finished upload. */
  constructor(root, { options, onDone = () => {}, loc = window.location } = {}) {
    this.root = root;
    this.loc = loc;
    this.options = options;
    this.onDone = onDone;
    this.form = root.querySelector("#upload-form");
    this.file = root.querySelector("#upload-file");
    this.button = root.querySelector("#upload-start");
    this.bar = root.querySelector("#upload-progress");
    this.status = root.querySelector("#upload-status");
    this.result = root.querySelector("#upload-result");
    this.busy = false;
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.start();
    });
  }

  async start() {
    const file = this.file.files && this.file.files[0];
    if (this.busy || !file) return this.setStatus(file ? "" : "Choose an audio file first.", !file);
    if (file.size > MAX_UPLOAD_BYTES) return this.setStatus("That file is larger than 200 MB.", true);
    this.setBusy(true);
    this.result.hidden = true;
    this.result.replaceChildren();
    this.setProgress(0, `Uploading ${file.name}…`);
    try {
      const created = await this.fetchJson(apiUrl("/api/uploads", this.loc), {
        method: "POST",
        body: uploadBody(file, this.options()),
      });
      await this.follow(created.session);
    } catch (err) {
      this.setProgress(null, `Upload failed: ${err.message}`, true);
    } finally {
      this.setBusy(false);
    }
  }

  /** Polls the progress until done or failed, then shows the transcript. */
  async follow(sid) {
    this.root.dataset.session = sid;
    for (;;) {
      const p = await this.fetchJson(apiUrl(`/api/uploads/${encodeURIComponent(sid)}`, this.loc));
      const [fraction, text] = describe(p);
      this.setProgress(fraction, text, p.status === "failed");
      if (p.status === "done" || p.status === "failed") break;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    this.render(await this.fetchJson(sessionUrl(sid, "", this.loc)));
    this.onDone(sid);
  }

  async fetchJson(url, init = {}) {
    let resp;
    try {
      resp = await fetch(url, { headers: accessHeaders({ Accept: "application/json" }), cache: "no-store", ...init });
    } catch {
      throw new Error("the server cannot be reached");
    }
    const body = await resp.json().catch(() => null);
    if (!resp.ok) throw new Error((body && body.error) || `HTTP ${resp.status}`);
    return body;
  }

  setBusy(busy) {
    this.busy = busy;
    this.button.disabled = busy;
    this.file.disabled = busy;
  }

  setProgress(fraction, text, isError = false) {
    this.bar.hidden = false;
    if (fraction === null) this.bar.removeAttribute("value");
    else this.bar.value = fraction;
    this.setStatus(text, isError);
  }

  setStatus(text, isError = false) {
    this.status.textContent = text;
    this.status.classList.toggle("history-error", isError);
  }

  render(session) {
    const links = DOWNLOADS.map(([ext, suffix, title]) =>
      h("a", { class: "btn btn-small", href: sessionUrl(session.id, suffix, this.loc), download: `classrec-${session.id}.${ext}`, title }, `.${ext}`),
    );
    const alerts = session.alerts.map((a) =>
      h(
        "li",
        { class: `history-alert cat-${a.category}` },
        h("span", { class: "badge" }, categoryLabel(a.category)),
        h("strong", {}, alertTitle(a)),
        h("span", { class: "upload-at" }, formatClock(a.start)),
      ),
    );
    const lines = session.transcript.map((t) =>
      h("p", { class: "history-seg" }, h("span", { class: "ts" }, formatClock(t.start)), h("span", { class: "text" }, t.text.trim())),
    );
    this.result.replaceChildren(
      h("div", { class: "history-links" }, links),
      alerts.length ? h("ul", { class: "history-alerts" }, alerts) : null,
      h("div", { class: "history-transcript", tabindex: 0, "aria-label": "Transcript of the upload" }, lines.length ? lines : h("p", { class: "empty-hint" }, "Nothing was transcribed.")),
    );
    this.result.hidden = false;
  }
}
