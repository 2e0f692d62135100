// Alerts: the panel (newest lecture moment first), browser notifications and a short beep.
//
// Each alert element: <article class="alert cat-<category>" data-segment="N" data-category="...">
// A dated alert also gets <a class="add-to-calendar"> (its event, /api/sessions/<sid>/alerts.ics?segment=N)
// and, once the session id is known, the panel header gets <a id="calendar-all"> (every dated alert).
// The session id is given by `setSession(sid)`, or read from the page's #session-id element.

import { addAccess } from "./owner.js";
import { formatClock, formatDate, formatTime, h } from "./util.js";

export const CATEGORY_LABELS = {
  exam: "Exam",
  quiz: "Quiz",
  deadline: "Deadline",
  assignment: "Assignment",
  schedule: "Schedule",
  custom: "Keyword",
  important: "Important",
  attendance: "Attendance",
  name: "Your name",
};

export function categoryLabel(category) {
  return CATEGORY_LABELS[category] || (category ? String(category) : "Alert");
}

/** "Fri, Mar 14 · 2:30 PM" from an alert's date/time (either may be null). */
export function alertWhen(alert) {
  return [formatDate(alert.date), formatTime(alert.time)].filter(Boolean).join(" · ");
}

export function alertTitle(alert) {
  const title = String(alert.title || "").trim();
  return title || categoryLabel(alert.category);
}

/** The session's alerts as an .ics file (one alert's with `segment`), keeping the page's ?token=. */
export function calendarUrl(sid, segment = null, loc = window.location) {
  const url = new URL(`/api/sessions/${encodeURIComponent(sid)}/alerts.ics`, loc.href);
  if (segment !== null && segment !== undefined) url.searchParams.set("segment", String(segment));
  addAccess(url, loc);
  const token = new URLSearchParams(loc.search).get("token");
  if (token) url.searchParams.set("token", token);
  return `${url.pathname}${url.search}`;
}

export class AlertsView extends EventTarget {
  constructor(root, { countEl = null, sessionEl = document.getElementById("session-id"), headEl = null } = {}) {
    super();
    this.root = root;
    this.countEl = countEl;
    this.keys = new Set();
    this.alerts = [];
    this.sessionId = null;
    this.calendarAll = this._makeCalendarAll(headEl || root.closest(".alerts-panel")?.querySelector(".panel-head"));
    if (sessionEl) {
      // Follows the session id the page shows (a new one after a failed resume), unless setSession is used.
      const sync = () => this.setSession(sessionEl.textContent.trim() || null);
      new MutationObserver(sync).observe(sessionEl, { childList: true, characterData: true, subtree: true });
      sync();
    }
    root.addEventListener("click", (event) => this._activate(event));
    root.addEventListener("keydown", (event) => {
      if (event.target.closest("a, button")) return; // links keep their own Enter
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        this._activate(event);
      }
    });
  }

  /** The session the next alerts belong to (null: unknown); shows "All to calendar" once known. */
  setSession(sid) {
    this.sessionId = sid || null;
    if (this.calendarAll) {
      this.calendarAll.hidden = !this.sessionId;
      if (this.sessionId) this.calendarAll.href = calendarUrl(this.sessionId);
      else this.calendarAll.removeAttribute("href");
    }
    if (!this.sessionId) return;
    // Dated alerts that came before the session id was known.
    for (const el of this.root.querySelectorAll("article.alert[data-dated]:not([data-session])")) {
      el.dataset.session = this.sessionId;
      el.append(this._calendarLink(this.sessionId, Number(el.dataset.segment)));
    }
  }

  clear() {
    this.keys.clear();
    this.alerts = [];
    this.root.replaceChildren();
    this._count();
  }

  /** Adds one `alert` message; returns its element, or null for a duplicate (e.g. after resume). */
  add(alert, part = 0) {
    const segment = Number(alert.segment);
    const key = `${part}|${segment}|${alert.category}|${alert.text}`;
    if (this.keys.has(key)) return null;
    this.keys.add(key);
    this.alerts.push({ ...alert, part });
    const when = alertWhen(alert);
    const label = categoryLabel(alert.category);
    const title = alertTitle(alert);
    const el = h(
      "article",
      {
        class: `alert cat-${alert.category || "custom"}`,
        tabindex: "0",
        title: "Show in transcript",
        "aria-label": `${label}: ${title}${when ? `, ${when}` : ""}. Show in transcript.`,
        dataset: {
          segment,
          part,
          category: alert.category || "",
          ...(alert.date ? { dated: "" } : {}),
          ...(alert.date && this.sessionId ? { session: this.sessionId } : {}),
        },
      },
      h(
        "div",
        { class: "alert-head" },
        h("span", { class: "badge" }, label),
        when ? h("span", { class: "alert-when" }, when) : null,
        h("span", { class: "alert-at", title: "Time in the lecture" }, formatClock(alert.start)),
      ),
      h("h3", { class: "alert-title" }, title),
      alert.text ? h("blockquote", { class: "alert-quote" }, `“${String(alert.text).trim()}”`) : null,
      alert.date && this.sessionId ? this._calendarLink(this.sessionId, segment) : null,
    );
    // Newest lecture moment first: before the first alert of an earlier (part, segment).
    let before = null;
    for (const node of this.root.children) {
      const p = Number(node.dataset.part || 0);
      const s = Number(node.dataset.segment);
      if (p < part || (p === part && s < segment)) {
        before = node;
        break;
      }
    }
    this.root.insertBefore(el, before);
    el.classList.add("new");
    setTimeout(() => el.classList.remove("new"), 4000);
    this._count();
    return el;
  }

  _calendarLink(sid, segment) {
    return h(
      "a",
      { class: "add-to-calendar", href: calendarUrl(sid, segment), title: "Download this event (.ics) for your calendar" },
      "Add to calendar",
    );
  }

  _makeCalendarAll(head) {
    if (!head) return null;
    const a = h(
      "a",
      {
        id: "calendar-all",
        class: "btn btn-small calendar-all",
        title: "Download every dated alert of this session (.ics) for your calendar",
        hidden: true,
      },
      "All to calendar",
    );
    head.append(a);
    return a;
  }

  _activate(event) {
    if (event.target.closest("a")) return; // a calendar link, not "show in transcript"
    const el = event.target.closest(".alert");
    if (!el || !this.root.contains(el)) return;
    this.dispatchEvent(
      new CustomEvent("select", { detail: { segment: Number(el.dataset.segment), part: Number(el.dataset.part || 0) } }),
    );
  }

  _count() {
    if (this.countEl) this.countEl.textContent = String(this.root.children.length);
    this.root.dataset.count = String(this.root.children.length);
  }
}

/** Browser notifications. `requestPermission()` must be called from the click, not awaited. */
export class Notifier {
  constructor() {
    this.supported = typeof window !== "undefined" && "Notification" in window;
    this._registration = null;
  }

  /** Asks for permission (fire and forget, so it never delays getUserMedia). */
  requestPermission() {
    if (!this.supported || Notification.permission !== "default") return;
    try {
      const result = Notification.requestPermission();
      if (result && typeof result.catch === "function") result.catch(() => {});
    } catch {
      /* old callback-only API or blocked */
    }
  }

  get enabled() {
    return this.supported && Notification.permission === "granted";
  }

  /** Shows a notification; `onClick` is called when the user clicks it (page focused first). */
  notify(alert, { course = "", onClick = null, tag = "" } = {}) {
    if (!this.enabled) return;
    const when = alertWhen(alert);
    const title = `${categoryLabel(alert.category)}: ${alertTitle(alert)}`;
    const body = [when, alert.text ? `“${String(alert.text).trim()}”` : "", course].filter(Boolean).join("\n");
    const options = { body, tag: tag || `classrec-${alert.segment}-${alert.category}`, renotify: true };
    try {
      const n = new Notification(title, options);
      n.onclick = () => {
        window.focus();
        n.close();
        if (onClick) onClick();
      };
    } catch {
      // Android Chrome only allows notifications through a service worker registration.
      this._viaServiceWorker(title, options);
    }
  }

  async _viaServiceWorker(title, options) {
    try {
      if (!("serviceWorker" in navigator)) return;
      if (!this._registration) {
        this._registration = await navigator.serviceWorker.register(new URL("./sw.js", import.meta.url).href);
      }
      await this._registration.showNotification(title, options);
    } catch {
      /* notifications unavailable: the panel and the beep still work */
    }
  }
}

/** A short two-tone beep through WebAudio. `unlock()` from a click so it may play later. */
export class Beeper {
  constructor() {
    this.ctx = null;
  }

  unlock() {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    if (!this.ctx || this.ctx.state === "closed") this.ctx = new Ctx();
    if (this.ctx.state !== "running") this.ctx.resume().catch(() => {});
  }

  beep() {
    const ctx = this.ctx;
    if (!ctx) return;
    if (ctx.state !== "running") ctx.resume().catch(() => {});
    const t0 = ctx.currentTime + 0.02;
    const tone = (freq, start, dur) => {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = "sine";
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, start);
      gain.gain.exponentialRampToValueAtTime(0.25, start + 0.015);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + dur);
      osc.connect(gain).connect(ctx.destination);
      osc.start(start);
      osc.stop(start + dur + 0.02);
    };
    tone(880, t0, 0.14);
    tone(1320, t0 + 0.16, 0.2);
  }
}
