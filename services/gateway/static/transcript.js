// The live transcript: one element per segment, ordered by segment number.
//
// A partial (final: false) is shown lighter and replaced in place by later messages of the same
// segment; a final replaces it and never changes afterwards. Messages may arrive out of order.
// Auto-scrolls while the reader is at the bottom; stops when they scroll up; resumes at the bottom.
//
// Each segment element: <div class="seg final|partial" data-segment="N" data-part="P">
// `part` only changes if the server starts a new session after a reconnect (segments restart).

import { formatClock, h } from "./util.js";

const BOTTOM_SLACK_PX = 48;

export class TranscriptView extends EventTarget {
  constructor(root, { jumpButton = null } = {}) {
    super();
    this.root = root;
    this.jumpButton = jumpButton;
    this.items = new Map(); // "part:segment" -> {el, final, segment, part, start, end, text}
    this.part = 0;
    this.follow = true; // auto-scroll
    root.addEventListener("scroll", () => this._onScroll(), { passive: true });
    if (jumpButton) jumpButton.addEventListener("click", () => this.resumeFollow());
  }

  clear() {
    this.items.clear();
    this.part = 0;
    this.root.replaceChildren();
    this.resumeFollow();
  }

  /** Segments restart from 0 (a new server session): later segments go after a divider. */
  beginPart(label) {
    if (this.items.size === 0) return;
    this.part += 1;
    this._insert(h("div", { class: "part-divider", role: "separator", dataset: { part: this.part } }, label));
    this._afterChange();
  }

  /** Applies one `transcript` message. Returns the segment element (or null if ignored). */
  update(msg) {
    const segment = Number(msg.segment);
    if (!Number.isInteger(segment)) return null;
    const key = `${this.part}:${segment}`;
    let item = this.items.get(key);
    if (item && item.final) return item.el; // a final never changes
    const final = Boolean(msg.final);
    const text = String(msg.text ?? "").trim();
    if (!item) {
      const el = h(
        "div",
        { class: "seg", id: `seg-${this.part}-${segment}`, dataset: { segment, part: this.part } },
        h("span", { class: "ts", "aria-hidden": "true" }),
        h("span", { class: "text" }),
      );
      item = { el, segment, part: this.part, final: false };
      this.items.set(key, item);
      this._insert(el);
    }
    item.final = final;
    item.start = Number(msg.start) || 0;
    item.end = Number(msg.end) || item.start;
    item.text = text;
    const el = item.el;
    el.classList.toggle("final", final);
    el.classList.toggle("partial", !final);
    el.classList.toggle("empty", text === "");
    el.classList.toggle("other", msg.speaker === "other"); // voice lock, others: label
    if (msg.speaker) el.dataset.speaker = msg.speaker;
    el.dataset.start = String(item.start);
    el.dataset.end = String(item.end);
    el.querySelector(".ts").textContent = formatClock(item.start);
    renderText(el.querySelector(".text"), text, final ? "" : String(msg.stable ?? "").trim());
    this._afterChange();
    return el;
  }

  /** The element of a segment (current part unless given). */
  element(segment, part = this.part) {
    const item = this.items.get(`${part}:${segment}`);
    return item ? item.el : null;
  }

  /** Marks a segment as carrying an alert (a coloured edge in the transcript). */
  markAlert(segment, part, category) {
    const el = this.element(segment, part);
    if (el) {
      el.classList.add("has-alert");
      el.dataset.alert = category || "";
    }
  }

  /** Scrolls to a segment and flashes it. Returns false if the segment is not (yet) shown. */
  reveal(segment, part = this.part) {
    const el = this.element(segment, part);
    if (!el) return false;
    this._setFollow(false);
    el.scrollIntoView({ behavior: prefersReducedMotion() ? "auto" : "smooth", block: "center" });
    el.classList.remove("highlight");
    void el.offsetWidth; // restart the animation
    el.classList.add("highlight");
    clearTimeout(el._highlightTimer);
    el._highlightTimer = setTimeout(() => el.classList.remove("highlight"), 3000);
    return true;
  }

  resumeFollow() {
    this._setFollow(true);
    this.scrollToBottom();
  }

  scrollToBottom() {
    this.root.scrollTop = this.root.scrollHeight;
  }

  /** Plain text of the finals (and current partials), one line per segment with its time. */
  toText() {
    const lines = [];
    for (const el of this.root.children) {
      if (el.classList.contains("part-divider")) lines.push("", `--- ${el.textContent} ---`, "");
      else if (el.dataset.segment !== undefined && !el.classList.contains("empty")) {
        lines.push(`[${el.querySelector(".ts").textContent}] ${el.querySelector(".text").textContent}`);
      }
    }
    return lines.join("\n") + "\n";
  }

  /** Segments as data (for future downloads / past sessions). */
  toJSON() {
    return [...this.items.values()]
      .sort((a, b) => a.part - b.part || a.segment - b.segment)
      .map(({ part, segment, start, end, text, final }) => ({ part, segment, start, end, text, final }));
  }

  get size() {
    return this.items.size;
  }

  _insert(el) {
    const key = orderKey(el);
    // Usually the newest segment: walk back from the end.
    let before = null;
    for (let node = this.root.lastElementChild; node; node = node.previousElementSibling) {
      if (compareKeys(orderKey(node), key) <= 0) break;
      before = node;
    }
    this.root.insertBefore(el, before);
  }

  _afterChange() {
    if (this.follow) this.scrollToBottom();
    this.dispatchEvent(new CustomEvent("change"));
  }

  _onScroll() {
    const r = this.root;
    const atBottom = r.scrollHeight - r.scrollTop - r.clientHeight <= BOTTOM_SLACK_PX;
    this._setFollow(atBottom);
  }

  _setFollow(follow) {
    this.follow = follow;
    if (this.jumpButton) this.jumpButton.hidden = follow;
    this.root.dataset.follow = follow ? "true" : "false";
  }
}

function orderKey(el) {
  const part = Number(el.dataset.part || 0);
  const segment = el.dataset.segment === undefined ? -Infinity : Number(el.dataset.segment);
  return [part, segment];
}

function compareKeys(a, b) {
  return a[0] - b[0] || (a[1] === b[1] ? 0 : a[1] < b[1] ? -1 : 1);
}

function prefersReducedMotion() {
  return window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
}

/** The text, with its stable prefix (partials) in a span of its own so only the tail looks tentative. */
function renderText(node, text, stable) {
  node.textContent = "";
  if (stable && text.startsWith(stable)) {
    node.append(h("span", { class: "stable" }, stable), text.slice(stable.length));
  } else {
    node.textContent = text;
  }
}
