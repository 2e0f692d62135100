// Flags: bookmarks and doubts at moments of the live lecture ({"type":"flag",...}; README, "Bookmarks and doubts").
//
//   const flags = new FlagsController({ transcriptRoot, listRoot, countEl, send, now, quote });
//   flags.confirm(msg)   // a `flag` message from the server (confirmation, or a replay on resume)
//   flags.clear()
//
// On the live transcript: a tap on a word (its time from the final's word timings) opens a small form with an optional note
// ("didn't get this", a question for office hours) that flags that moment; a press-and-hold (half a
// second) flags it at once. The keyboard shortcut F (outside text fields) opens the form for the
// last FLAG_BACK_S seconds of the lecture. A flag shows as pending until the server confirms it;
// flags are kept by id, so a resume's replay never doubles one, and a flag sent again after a
// dropped connection is confirmed with the same id.

import { formatClock, h } from "./util.js";

const HOLD_MS = 500;
const MOVE_SLACK_PX = 10;
export const FLAG_BACK_S = 15;

/** The moment a tap points at: a word's span when the word has timings (a [data-ws] element, or the
 * word under the pointer of a final whose `words` are known), else its sentence's. */
export function momentAt(target, x = null, y = null, wordsOf = () => null) {
  const word = target.closest && target.closest("[data-ws]");
  if (word) return { start: Number(word.dataset.ws), end: Number(word.dataset.we) };
  const seg = target.closest && target.closest(".seg[data-start]");
  if (!seg) return null;
  const words = wordsOf(seg);
  const at = words && x !== null ? wordIndexAt(seg, x, y, words.length) : -1;
  if (at >= 0) return { start: Number(words[at][0]), end: Number(words[at][1]) };
  return { start: Number(seg.dataset.start) || 0, end: Number(seg.dataset.end) || Number(seg.dataset.start) || 0 };
}

/** Which of a sentence's `count` words is under the point (x, y), from the caret there; -1 if unknown. */
export function wordIndexAt(seg, x, y, count) {
  const text = seg.querySelector(".text");
  if (!text || !count) return -1;
  let node = null, offset = 0;
  if (document.caretPositionFromPoint) {
    const pos = document.caretPositionFromPoint(x, y);
    if (pos) ({ offsetNode: node, offset } = pos);
  } else if (document.caretRangeFromPoint) {
    const range = document.caretRangeFromPoint(x, y);
    if (range) ({ startContainer: node, startOffset: offset } = range);
  }
  if (!node || !text.contains(node)) return -1;
  const before = document.createRange();
  before.setStart(text, 0);
  before.setEnd(node, offset);
  const full = text.textContent || "";
  const tokens = full.split(/\s+/).filter(Boolean).length;
  const head = String(before);
  const n = head.split(/\s+/).filter(Boolean).length;
  const index = head === "" || /\s$/.test(head) ? n : n - 1; // the caret is in word n-1, or at the start of word n
  // The text and the timed words normally match one to one; if not, map proportionally.
  return tokens === count ? Math.min(index, count - 1) : Math.min(count - 1, Math.floor((index * count) / Math.max(1, tokens)));
}

const keyOf = (f) => `${Number(f.start).toFixed(2)}|${Number(f.end).toFixed(2)}|${f.note || ""}`;

export class FlagsController extends EventTarget {
  constructor({ transcriptRoot, listRoot, countEl = null, send, now, quote = () => "", wordsOf = () => null }) {
    super();
    this.transcriptRoot = transcriptRoot;
    this.listRoot = listRoot;
    this.countEl = countEl;
    this.send = send; // (message) => boolean: false when there is no session to flag
    this.now = now; // () => seconds of lecture audio so far
    this.quote = quote; // (start, end) => the transcript said then
    this.wordsOf = wordsOf; // (segment element) => that final's [start, end, word] list, or null
    this.flags = new Map(); // id -> flag (confirmed)
    this.pending = new Map(); // key -> flag (sent, not yet confirmed)
    this.form = null;
    this._bindPointer();
    document.addEventListener("keydown", (e) => this._onKey(e));
  }

  clear() {
    this.flags.clear();
    this.pending.clear();
    this.closeForm();
    this.render();
  }

  /** Flags a moment now (note optional). Returns false when there is no session yet. */
  flag(start, end, note = "") {
    const msg = { type: "flag", start: round2(Math.max(0, start)), end: round2(Math.max(start, end)), note: String(note || "").trim().slice(0, 500) };
    if (!this.send(msg)) return false;
    const key = keyOf(msg);
    if (![...this.flags.values()].some((f) => keyOf(f) === key)) this.pending.set(key, { ...msg, pending: true });
    this.render();
    return true;
  }

  /** Sends the unconfirmed flags again (after a resume; the server keeps each flag once). */
  resendPending() {
    for (const f of this.pending.values()) this.send({ type: "flag", start: f.start, end: f.end, note: f.note });
  }

  /** A `flag` from the server. */
  confirm(msg) {
    if (!msg || typeof msg.id !== "string") return;
    this.pending.delete(keyOf(msg));
    this.flags.set(msg.id, { id: msg.id, start: Number(msg.start), end: Number(msg.end), note: msg.note || "" });
    this.render();
    this.dispatchEvent(new CustomEvent("change"));
  }

  /** Every flag, confirmed and pending, by time. */
  get all() {
    return [...this.flags.values(), ...this.pending.values()].sort((a, b) => a.start - b.start || a.end - b.end);
  }

  /** The little form: an optional note for a moment; Enter flags, Escape cancels. */
  openForm(moment, anchor = null) {
    this.closeForm();
    const note = h("input", { type: "text", class: "flag-note", maxlength: 500, placeholder: "Note (optional): didn't get this…", "aria-label": "Note for this flag" });
    const form = h(
      "form",
      { class: "flag-form", role: "dialog", "aria-label": `Flag ${formatClock(moment.start)}` },
      h("span", { class: "flag-when" }, `⚑ ${formatClock(moment.start)}`),
      note,
      h("button", { type: "submit", class: "btn btn-small btn-primary" }, "Flag"),
      h("button", { type: "button", class: "btn btn-small", dataset: { action: "cancel" } }, "Cancel"),
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.flag(moment.start, moment.end, note.value);
      this.closeForm();
    });
    form.querySelector("[data-action=cancel]").addEventListener("click", () => this.closeForm());
    form.addEventListener("keydown", (e) => {
      if (e.key === "Escape") this.closeForm();
    });
    (anchor && anchor.closest(".seg") ? anchor.closest(".seg") : this.transcriptRoot).after(form);
    this.form = form;
    note.focus();
    return form;
  }

  closeForm() {
    if (this.form) this.form.remove();
    this.form = null;
  }

  render() {
    for (const el of this.transcriptRoot.querySelectorAll(".seg.flagged")) {
      el.classList.remove("flagged");
      delete el.dataset.flags;
    }
    const all = this.all;
    for (const f of all) {
      for (const el of this.transcriptRoot.querySelectorAll(".seg.final")) {
        const s = Number(el.dataset.start), e = Number(el.dataset.end);
        if (e >= f.start && s <= Math.max(f.end, f.start)) {
          el.classList.add("flagged");
          el.dataset.flags = String(Number(el.dataset.flags || 0) + 1);
        }
      }
    }
    if (this.countEl) this.countEl.textContent = String(all.length);
    if (!this.listRoot) return;
    this.listRoot.replaceChildren(
      ...all.map((f) =>
        h(
          "li",
          { class: `flag-item${f.pending ? " pending" : ""}`, dataset: { id: f.id || "", start: f.start } },
          h("button", { type: "button", class: "history-at flag-at", onclick: () => this.dispatchEvent(new CustomEvent("select", { detail: f })) }, `⚑ ${formatClock(f.start)}`),
          f.note ? h("strong", { class: "flag-note-text" }, f.note) : null,
          h("q", { class: "flag-quote" }, this.quote(f.start, f.end)),
          f.pending ? h("span", { class: "flag-pending" }, "sending…") : null,
        ),
      ),
    );
  }

  _bindPointer() {
    let hold = null;
    const root = this.transcriptRoot;
    root.addEventListener("pointerdown", (e) => {
      const moment = e.button === 0 ? momentAt(e.target, e.clientX, e.clientY, this.wordsOf) : null;
      if (!moment) return;
      hold = { x: e.clientX, y: e.clientY, target: e.target, moment, fired: false };
      hold.timer = setTimeout(() => {
        if (!hold) return;
        hold.fired = true;
        if (this.flag(moment.start, moment.end)) navigator.vibrate?.(30);
      }, HOLD_MS);
    });
    const cancel = () => {
      if (hold) clearTimeout(hold.timer);
      hold = null;
    };
    root.addEventListener("pointermove", (e) => {
      if (hold && Math.hypot(e.clientX - hold.x, e.clientY - hold.y) > MOVE_SLACK_PX) cancel();
    });
    root.addEventListener("pointercancel", cancel);
    root.addEventListener("pointerup", () => {
      if (!hold) return;
      const { fired, moment, target } = hold;
      cancel();
      const selecting = window.getSelection && String(window.getSelection()).length > 0;
      if (!fired && !selecting) this.openForm(moment, target);
    });
    root.addEventListener("contextmenu", (e) => {
      if (momentAt(e.target)) e.preventDefault(); // the long press is ours
    });
  }

  _onKey(e) {
    if (e.key !== "f" && e.key !== "F") return;
    if (e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
    const t = e.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    const end = this.now();
    if (!(end > 0)) return;
    e.preventDefault();
    this.openForm({ start: Math.max(0, end - FLAG_BACK_S), end });
  }
}

function round2(x) {
  return Math.round(Number(x) * 100) / 100;
}

/** The lecture view's list of a stored session's flags (GET /api/sessions/<sid> `flags`). */
export function flagListView(flags, onSelect) {
  if (!flags || !flags.length) return h("p", { class: "empty-hint history-flags-empty" }, "No flags in this lecture.");
  return h(
    "ul",
    { class: "history-flags", "aria-label": "Flags" },
    flags.map((f) =>
      h(
        "li",
        { class: "history-flag", dataset: { id: f.id, start: f.start } },
        h("button", { type: "button", class: "history-at flag-at", onclick: () => onSelect(f) }, `⚑ ${formatClock(f.start)}`),
        f.note ? h("strong", { class: "flag-note-text" }, f.note) : null,
        f.text ? h("q", { class: "history-quote" }, f.text) : null,
      ),
    ),
  );
}

/** Marks the lecture view's paragraphs that a flag falls in (data-flagged, for the ⚑ edge). */
export function markFlagged(root, flags) {
  const segs = [...root.querySelectorAll("[data-segment][data-start]")];
  for (const f of flags || []) {
    const el = segs.find((s) => Number(s.dataset.end) >= f.start) || segs[segs.length - 1];
    if (el) el.dataset.flagged = "true";
  }
}
