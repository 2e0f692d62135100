// The share view (/s/<token>): the page follows a shared lecture, read-only, through
// GET /ws/follow?share=<token> (README, "Share links and followers"): the lecture's events from its start, live, then "end".
// A dropped socket reconnects (with backoff) and gets everything again from the start; the views
// keep one of each final and alert, so nothing shows twice.
//
//   const f = new FollowConnection({ url: followUrl() });
//   f.addEventListener("session" | "transcript" | "alert" | "flag" | "error" | "end", (e) => e.detail);
//   f.addEventListener("state", (e) => e.detail.state);   // connecting, open, reconnecting, ended, failed
//   f.open();

import { shareToken } from "./owner.js";

const BACKOFF_MS = [500, 1000, 2000, 4000, 8000];
const MAX_ATTEMPTS = 20;

/** ws(s)://<page host>/ws/follow?share=<token>, with the page's ?token= if there is one. */
export function followUrl(loc = window.location) {
  const scheme = loc.protocol === "https:" ? "wss:" : "ws:";
  const url = new URL(`${scheme}//${loc.host}/ws/follow`);
  url.searchParams.set("share", shareToken(loc) || "");
  const token = new URLSearchParams(loc.search).get("token");
  if (token) url.searchParams.set("token", token);
  return url.href;
}

export class FollowConnection extends EventTarget {
  constructor({ url = followUrl() } = {}) {
    super();
    this.url = url;
    this.state = "idle";
    this.attempts = 0;
    this.ended = false;
    this.refused = false;
  }

  open() {
    this.setState(this.attempts ? "reconnecting" : "connecting");
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onopen = () => {
      this.attempts = 0;
      this.setState("open");
    };
    ws.onmessage = (event) => {
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return;
      }
      if (msg.type === "end") this.ended = true;
      if (msg.type === "error" && msg.code === "unknown_share") this.refused = true;
      this.dispatchEvent(new CustomEvent(msg.type, { detail: msg }));
    };
    ws.onclose = (event) => {
      if (this.ended) return this.setState("ended");
      if (this.refused || event.code === 1008 || ++this.attempts > MAX_ATTEMPTS) return this.setState("failed");
      this.setState("reconnecting");
      setTimeout(() => this.open(), BACKOFF_MS[Math.min(this.attempts - 1, BACKOFF_MS.length - 1)]);
    };
  }

  setState(state) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state } }));
  }
}
