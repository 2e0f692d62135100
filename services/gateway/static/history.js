// Past lectures: the stored sessions (GET /api/sessions) in the collapsed <details id="history">,
// and one transcript at a time, read-only (GET /api/sessions/<sid>), with its downloads.
//
// Markup (index.html): <details id="history"> holding #history-status, #history-refresh,
// <ul id="history-list"> and <section id="history-view" hidden>. Each listed session is
// <li class="history-item" data-session="<sid>"> with a View button and links to
// /api/sessions/<sid>/transcript.{txt,srt,vtt,md} and /api/sessions/<sid>/alerts.ics.
// The list loads when the panel is opened (again on each opening, or with Refresh). Every API call
// and link keeps the page's ?token=.

import { alertTitle, alertWhen, categoryLabel } from "./alerts.js";
import { flagListView, markFlagged } from "./flags.js";
import { lectureActions } from "./lecture-actions.js";
import { accessHeaders, addAccess } from "./owner.js";
import { formatClock, h } from "./util.js";

export const DOWNLOADS = [
  ["txt", "/transcript.txt", "Plain text with timestamps"],
  ["srt", "/transcript.srt", "SubRip subtitles"],
  ["vtt", "/transcript.vtt", "WebVTT subtitles"],
  ["md", "/transcript.md", "Markdown, alerts in bold"],
  ["ics", "/alerts.ics", "Dated alerts for your calendar"],
];

const STATUS_LABELS = { live: "live", stopping: "finishing", ended: "ended" };

/** A same-origin API path carrying the page's ?token= (if any) and its owner key or share token. */
export function apiUrl(path, loc = window.location) {
  const url = addAccess(new URL(path, loc.href), loc);
  const token = new URLSearchParams(loc.search).get("token");
  if (token) url.searchParams.set("token", token);
  return `${url.pathname}${url.search}`;
}

export function sessionUrl(sid, suffix = "", loc = window.location) {
  return apiUrl(`/api/sessions/${encodeURIComponent(sid)}${suffix}`, loc);
}

/** "Mon, Mar 10, 2025, 10:00 AM" in the browser's locale; "" when unknown. */
export function formatCreated(iso) {
  const date = iso ? new Date(iso) : null;
  if (!date || Number.isNaN(date.getTime())) return "";
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** The text with the alert sentences as <mark> (the whole text when a sentence is not found). */
export function highlighted(text, sentences) {
  const lower = text.toLowerCase();
  const spans = [];
  for (const raw of sentences) {
    const sentence = String(raw || "").split(/\s+/).filter(Boolean).join(" ");
    if (!sentence) continue;
    const at = lower.indexOf(sentence.toLowerCase());
    spans.push(at >= 0 ? [at, at + sentence.length] : [0, text.length]);
  }
  spans.sort((a, b) => a[0] - b[0]);
  const out = [];
  let pos = 0;
  for (const [a, b] of spans) {
    if (b <= pos) continue;
    const from = Math.max(a, pos);
    if (from > pos) out.push(text.slice(pos, from));
    out.push(h("mark", {}, text.slice(from, b)));
    pos = b;
  }
  if (pos < text.length) out.push(text.slice(pos));
  return out;
}

export class HistoryPanel {
  constructor(root, { loc = window.location } = {}) {
    this.root = root;
    this.loc = loc;
    this.list = root.querySelector("#history-list");
    this.view = root.querySelector("#history-view");
    this.status = root.querySelector("#history-status");
    this.loads = 0; // newer requests win over slower older ones
    this.views = 0;
    root.addEventListener("toggle", () => {
      if (root.open) this.load();
    });
    root.querySelector("#history-refresh")?.addEventListener("click", () => this.load());
    this.list.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action=view]");
      if (button) this.show(button.closest(".history-item").dataset.session);
    });
  }

  /** Reloads the list if the panel is open (after a recording ends, say). */
  refreshIfOpen() {
    if (this.root.open) this.load();
  }

  async load() {
    const n = ++this.loads;
    this.setStatus("Loading…");
    try {
      const body = await this.fetchJson(apiUrl("/api/sessions?limit=50", this.loc));
      if (n !== this.loads) return;
      this.list.replaceChildren(...body.sessions.map((s) => this.item(s)));
      const more = body.total > body.sessions.length ? ` (the newest ${body.sessions.length} of ${body.total})` : "";
      this.setStatus(body.sessions.length ? `${plural(body.sessions.length, "lecture")}${more}` : "No past lectures yet.");
    } catch (err) {
      if (n === this.loads) this.setStatus(`Could not load past lectures: ${err.message}`, true);
    }
  }

  async fetchJson(url) {
    let resp;
    try {
      resp = await fetch(url, { headers: accessHeaders({ Accept: "application/json" }), cache: "no-store" });
    } catch {
      throw new Error("the server cannot be reached");
    }
    const body = await resp.json().catch(() => null);
    if (!resp.ok) throw new Error((body && body.error) || `HTTP ${resp.status}`);
    return body;
  }

  setStatus(text, isError = false) {
    this.status.textContent = text;
    this.status.classList.toggle("history-error", isError);
  }

  item(s) {
    const status = STATUS_LABELS[s.status] || s.status || "unknown";
    const facts = [formatClock(s.duration), plural(s.segments, "segment"), plural(s.alerts, "alert")];
    return h(
      "li",
      { class: "history-item", dataset: { session: s.id, status: s.status || "unknown" } },
      h(
        "div",
        { class: "history-main" },
        h("span", { class: "history-date" }, formatCreated(s.created) || "date unknown"),
        s.course ? h("span", { class: "history-course" }, s.course) : null,
        h("span", { class: "history-facts" }, facts.join(" · ")),
        h("span", { class: "history-status", dataset: { status: s.status || "unknown" } }, status),
      ),
      h(
        "div",
        { class: "history-links" },
        h("button", { type: "button", class: "btn btn-small", dataset: { action: "view" } }, "View"),
        h("button", { type: "button", class: "btn btn-small", dataset: { action: "review" }, title: "Play it back with the words highlighted" }, "Review"),
        ...this.downloads(s.id),
      ),
    );
  }

  downloads(sid) {
    return DOWNLOADS.map(([ext, suffix, title]) =>
      h(
        "a",
        { class: "btn btn-small history-download", href: sessionUrl(sid, suffix, this.loc), download: `classrec-${sid}.${ext}`, title, dataset: { format: ext } },
        `.${ext}`,
      ),
    );
  }

  /** Opens one session's transcript in the panel, read-only. */
  async show(sid) {
    const n = ++this.views;
    this.view.hidden = false;
    this.view.dataset.session = sid;
    this.view.replaceChildren(h("p", { class: "empty-hint" }, "Loading transcript…"));
    for (const li of this.list.querySelectorAll(".history-item")) li.classList.toggle("selected", li.dataset.session === sid);
    try {
      const session = await this.fetchJson(sessionUrl(sid, "", this.loc));
      if (n === this.views) this.render(session);
    } catch (err) {
      if (n === this.views) this.view.replaceChildren(h("p", { class: "empty-hint history-error" }, `Could not load it: ${err.message}`));
    }
    this.view.scrollIntoView({ block: "nearest", behavior: "smooth" });
  }

  close() {
    this.views++;
    this.view.hidden = true;
    this.view.replaceChildren();
    delete this.view.dataset.session;
    for (const li of this.list.querySelectorAll(".history-item.selected")) li.classList.remove("selected");
  }

  render(session) {
    const course = session.config && session.config.course;
    const title = [course || "Lecture", formatCreated(session.created)].filter(Boolean).join(" — ");
    const head = h(
      "div",
      { class: "panel-head history-view-head" },
      h("h3", { id: "history-view-title" }, title),
      h("button", { type: "button", class: "btn btn-small", onclick: () => this.close() }, "Close"),
    );
    const links = h("div", { class: "history-links" }, ...this.downloads(session.id));
    const actions = lectureActions(session.id, {
      loc: this.loc,
      onDeleted: () => {
        this.close();
        this.load();
      },
    });
    const transcript = this.transcriptView(session);
    markFlagged(transcript, session.flags);
    const flags = flagListView(session.flags, (f) => this.revealTime(f.start));
    this.view.replaceChildren(...[head, links, actions, this.alertList(session), flags, transcript].filter(Boolean));
  }

  alertList(session) {
    if (!session.alerts.length) return h("p", { class: "empty-hint" }, "No alerts in this lecture.");
    return h(
      "ul",
      { class: "history-alerts" },
      session.alerts.map((a) =>
        h(
          "li",
          { class: `history-alert cat-${a.category}`, dataset: { segment: a.segment, category: a.category } },
          h("span", { class: "badge" }, categoryLabel(a.category)),
          h("strong", {}, alertTitle(a)),
          alertWhen(a) ? h("span", { class: "alert-when" }, alertWhen(a)) : null,
          h("button", { type: "button", class: "history-at", onclick: () => this.reveal(a.segment) }, formatClock(a.start)),
          h("q", { class: "history-quote" }, a.text),
        ),
      ),
    );
  }

  transcriptView(session) {
    const bySegment = new Map();
    for (const a of session.alerts) bySegment.set(a.segment, [...(bySegment.get(a.segment) || []), a]);
    const lines = session.transcript.map((t) => {
      const alerts = bySegment.get(t.segment) || [];
      const dataset = alerts.length ? { segment: t.segment, alert: alerts[0].category } : { segment: t.segment };
      const text = String(t.text).split(/\s+/).filter(Boolean).join(" ");
      return h(
        "p",
        { class: "history-seg", dataset: { ...dataset, start: t.start, end: t.end } },
        h("span", { class: "ts" }, formatClock(t.start)),
        h("span", { class: "text" }, highlighted(text, alerts.map((a) => a.text))),
      );
    });
    if (!lines.length) lines.push(h("p", { class: "empty-hint" }, "Nothing was transcribed."));
    return h("div", { class: "history-transcript", tabindex: 0, "aria-label": "Transcript (read-only)" }, lines);
  }

  /** Scrolls to the paragraph said at `seconds`. */
  revealTime(seconds) {
    const segs = [...this.view.querySelectorAll(".history-seg[data-start]")];
    const el = segs.find((s) => Number(s.dataset.end) >= seconds) || segs[segs.length - 1];
    if (el) this.reveal(el.dataset.segment);
  }

  reveal(segment) {
    const el = this.view.querySelector(`.history-seg[data-segment="${Number(segment)}"]`);
    if (!el) return;
    el.scrollIntoView({ block: "center", behavior: "smooth" });
    el.classList.add("highlight");
    setTimeout(() => el.classList.remove("highlight"), 1500);
  }
}
