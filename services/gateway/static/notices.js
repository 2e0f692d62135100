// Dismissible notices (server `error` messages, client warnings). Never stops the session.

import { h } from "./util.js";

export class Notices {
  constructor(root) {
    this.root = root;
  }

  /**
   * Shows a notice; an identical one already on screen gets a repeat counter instead.
   * kind: "error" | "warning" | "info". timeout (ms) hides it automatically (0 = stays).
   */
  show(message, { kind = "error", code = "", timeout = 0 } = {}) {
    const key = `${kind}|${code}|${message}`;
    const existing = [...this.root.children].find((el) => el.dataset.key === key);
    if (existing) {
      const n = Number(existing.dataset.count || 1) + 1;
      existing.dataset.count = String(n);
      existing.querySelector(".notice-count").textContent = `×${n}`;
      return existing;
    }
    const el = h(
      "div",
      { class: `notice notice-${kind}`, role: kind === "error" ? "alert" : "status", dataset: { key, code } },
      h("span", { class: "notice-text" }, code ? h("strong", {}, `${code}: `) : null, message),
      h("span", { class: "notice-count" }),
      h("button", { type: "button", class: "notice-close", "aria-label": "Dismiss", title: "Dismiss" }, "×"),
    );
    el.querySelector(".notice-close").addEventListener("click", () => el.remove());
    this.root.append(el);
    if (timeout > 0) setTimeout(() => el.remove(), timeout);
    return el;
  }

  clear() {
    this.root.replaceChildren();
  }
}
