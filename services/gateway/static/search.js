// Search past lectures: the form #search-form in the "Past lectures" panel asks GET /api/search
// (the owner's finals, PostgreSQL full-text search) and lists the hits in #search-results, newest
// lecture first, each with its time and the snippet (matched words in <mark>). A click opens the
// lecture in the panel's view at that moment (HistoryPanel.show, then reveal of the segment).

import { apiUrl } from "./history.js";
import { accessHeaders } from "./owner.js";
import { formatClock, h } from "./util.js";

/** The server's snippet ("a &lt; b <mark>word</mark>") as DOM nodes, without innerHTML. */
export function snippetNodes(snippet) {
  const decode = (s) => new DOMParser().parseFromString(`<p>${s}</p>`, "text/html").body.textContent;
  const out = [];
  const parts = String(snippet).split(/(<mark>.*?<\/mark>)/);
  for (const part of parts) {
    const m = /^<mark>(.*)<\/mark>$/.exec(part);
    if (m) out.push(h("mark", {}, decode(m[1])));
    else if (part) out.push(decode(part));
  }
  return out;
}

export class SearchBox {
  constructor(form, results, history, { loc = window.location } = {}) {
    this.form = form;
    this.results = results;
    this.history = history;
    this.loc = loc;
    this.input = form.querySelector("input[type=search]");
    this.n = 0;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.search(this.input.value.trim());
    });
    results.addEventListener("click", (event) => {
      const hit = event.target.closest(".search-hit");
      if (hit) this.open(hit.dataset.session, Number(hit.dataset.segment));
    });
  }

  async search(q) {
    const n = ++this.n;
    if (!q) {
      this.results.replaceChildren();
      return;
    }
    this.results.replaceChildren(h("li", { class: "empty-hint" }, "Searching…"));
    let body = null;
    try {
      const resp = await fetch(apiUrl(`/api/search?q=${encodeURIComponent(q)}`, this.loc), {
        headers: accessHeaders({ Accept: "application/json" }),
        cache: "no-store",
      });
      body = await resp.json().catch(() => null);
      if (!resp.ok) throw new Error((body && body.error) || `HTTP ${resp.status}`);
    } catch (err) {
      if (n === this.n) this.results.replaceChildren(h("li", { class: "empty-hint history-error" }, `Search failed: ${err.message}`));
      return;
    }
    if (n !== this.n) return;
    if (!body.results.length) {
      this.results.replaceChildren(h("li", { class: "empty-hint" }, `Nothing said matches “${q}”.`));
      return;
    }
    this.results.replaceChildren(
      ...body.results.map((r) =>
        h(
          "li",
          { class: "search-hit", dataset: { session: r.session, segment: r.segment, start: r.start }, tabindex: 0 },
          h("span", { class: "search-where" }, [r.course || "Lecture", r.created ? new Date(r.created).toLocaleDateString() : ""].filter(Boolean).join(" · ")),
          h("button", { type: "button", class: "history-at" }, formatClock(r.start)),
          h("span", { class: "search-snippet" }, snippetNodes(r.snippet)),
        ),
      ),
    );
  }

  /** Opens the lecture in the history view, at the matching segment. */
  async open(sid, segment) {
    if (!this.history.root.open) this.history.root.open = true;
    await this.history.show(sid);
    this.history.reveal(segment);
  }
}
