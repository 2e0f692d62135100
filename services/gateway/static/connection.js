// The WebSocket client of /ws/transcribe (protocol: DESIGN.md, fixed).
//
//   const conn = new TranscribeConnection({ url: transcribeUrl(), start: {language, prompt, ...} });
//   conn.addEventListener("state", (e) => e.detail.state);   // see STATES
//   conn.addEventListener("message", (e) => e.detail);        // every server message
//   conn.addEventListener("session" | "transcript" | "alert" | "error" | "end", (e) => e.detail);
//   conn.addEventListener("notice", (e) => e.detail);         // client-side warnings {code, message}
//   conn.open();
//   conn.sendAudio(arrayBuffer);   // queued while not connected (sent in order once connected)
//   conn.sendJson({type: "flag", ...}); // now, or right after the next (re)connection's start
//   conn.stop();                   // sends {"type":"stop"} after all queued audio; waits for "end"
//   conn.close();                  // gives up immediately
//
// If the socket drops before "end", it reconnects with backoff and resumes the session
// (`"session": <id>` in the start message); audio produced meanwhile is buffered (bounded).

export const STATES = ["idle", "connecting", "open", "reconnecting", "closed", "failed"];

const MAX_BUFFERED_BYTES = 16000 * 2 * 60 * 10; // 10 minutes of 16 kHz PCM16
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 10000];
const MAX_ATTEMPTS = 12;

/** ws(s)://<page host>/ws/transcribe, carrying the page's ?token= if there is one. */
export function transcribeUrl(loc = window.location) {
  const scheme = loc.protocol === "https:" ? "wss:" : "ws:";
  const url = new URL(`${scheme}//${loc.host}/ws/transcribe`);
  const token = new URLSearchParams(loc.search).get("token");
  if (token) url.searchParams.set("token", token);
  return url.href;
}

export class TranscribeConnection extends EventTarget {
  constructor({ url = transcribeUrl(), start = {}, reconnect = true } = {}) {
    super();
    this.url = url;
    this.start = { ...start };
    this.reconnect = reconnect;
    this.state = "idle";
    this.sessionId = null;
    this.ws = null;
    this.outbox = []; // ArrayBuffers not yet handed to the socket
    this.textQueue = []; // JSON messages (flags) waiting for a connection
    this.outboxBytes = 0;
    this.droppedBytes = 0;
    this.stopRequested = false;
    this.ended = false;
    this.closedByClient = false;
    this.attempts = 0;
    this.everOpened = false;
    this._retryTimer = null;
    this._onOnline = () => {
      if (this.state === "reconnecting") this._retryNow();
    };
  }

  open() {
    window.addEventListener("online", this._onOnline);
    this._connect();
  }

  /** Sends (or queues) one binary frame of PCM16 audio. */
  sendAudio(buffer) {
    if (this.stopRequested || this.ended || this.closedByClient) return;
    if (this._isOpen() && this.outbox.length === 0) {
      this.ws.send(buffer);
      return;
    }
    this.outbox.push(buffer);
    this.outboxBytes += buffer.byteLength;
    while (this.outboxBytes > MAX_BUFFERED_BYTES && this.outbox.length > 1) {
      const dropped = this.outbox.shift();
      this.outboxBytes -= dropped.byteLength;
      if (this.droppedBytes === 0) {
        this._notice("buffer_overflow", "Offline for too long: the oldest buffered audio is being dropped.");
      }
      this.droppedBytes += dropped.byteLength;
    }
  }

  /** Sends a JSON text message (a flag): now when connected, else after the next start. */
  sendJson(msg) {
    if (this.ended || this.closedByClient || this.state === "failed") return false;
    if (this._isOpen()) this.ws.send(JSON.stringify(msg));
    else this.textQueue.push(msg);
    return true;
  }

  /** End of audio: {"type":"stop"} goes after everything queued; the server answers with "end". */
  stop() {
    if (this.stopRequested || this.ended) return;
    this.stopRequested = true;
    if (this._isOpen()) this._flush();
  }

  /** Closes now, without waiting for "end". */
  close() {
    this.closedByClient = true;
    this._teardown();
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) this.ws.close(1000, "client closed");
    this._setState("closed");
  }

  get bufferedSeconds() {
    return this.outboxBytes / (16000 * 2);
  }

  _isOpen() {
    return this.ws && this.ws.readyState === WebSocket.OPEN;
  }

  _connect() {
    this._setState(this.everOpened || this.attempts > 0 ? "reconnecting" : "connecting");
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      this._notice("bad_url", `Cannot connect: ${err.message}`);
      this._fail();
      return;
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = () => {
      if (ws !== this.ws) return;
      this.everOpened = true;
      this.attempts = 0;
      const start = { type: "start", ...this.start };
      if (this.sessionId) start.session = this.sessionId;
      ws.send(JSON.stringify(start));
      for (const msg of this.textQueue.splice(0)) ws.send(JSON.stringify(msg));
      this._setState("open");
      this._flush();
    };
    ws.onmessage = (event) => {
      if (ws !== this.ws) return;
      this._onMessage(event.data);
    };
    ws.onclose = (event) => {
      if (ws !== this.ws) return;
      this._onClose(event);
    };
    ws.onerror = () => {
      /* a close event always follows */
    };
  }

  _flush() {
    const ws = this.ws;
    while (this.outbox.length && this._isOpen()) {
      const buf = this.outbox.shift();
      this.outboxBytes -= buf.byteLength;
      ws.send(buf);
    }
    if (this.outbox.length === 0) this.droppedBytes = 0;
    if (this.stopRequested && this.outbox.length === 0 && this._isOpen()) {
      ws.send(JSON.stringify({ type: "stop" }));
    }
  }

  _onMessage(data) {
    if (typeof data !== "string") return; // the server only sends JSON text
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      this._notice("bad_message", "The server sent a message that is not JSON.");
      return;
    }
    if (!msg || typeof msg.type !== "string") return;
    if (msg.type === "session" && typeof msg.session === "string") {
      const previous = this.sessionId;
      this.sessionId = msg.session;
      msg.resumed = previous === msg.session;
      msg.previous = previous;
    }
    if (msg.type === "end") this.ended = true;
    this.dispatchEvent(new CustomEvent("message", { detail: msg }));
    this.dispatchEvent(new CustomEvent(msg.type, { detail: msg }));
    if (msg.type === "end") {
      this._teardown();
      if (this.ws && this.ws.readyState <= WebSocket.OPEN) this.ws.close(1000, "end");
      this._setState("closed");
    }
  }

  _onClose(event) {
    if (this.ended || this.closedByClient) {
      this._setState("closed");
      return;
    }
    // Policy / protocol refusals (bad token, bad request): retrying would not help.
    const fatal = event.code === 1008 || event.code === 1003 || (event.code >= 4000 && event.code < 4500);
    if (!this.reconnect || fatal || this.attempts >= MAX_ATTEMPTS) {
      const reason = event.reason ? `: ${event.reason}` : "";
      this._notice("connection_closed", `The connection was closed (code ${event.code}${reason}).`);
      this._fail();
      return;
    }
    const delay = BACKOFF_MS[Math.min(this.attempts, BACKOFF_MS.length - 1)];
    this.attempts += 1;
    this._setState("reconnecting");
    this._retryTimer = setTimeout(() => this._retryNow(), delay);
  }

  _retryNow() {
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    if (this.ended || this.closedByClient) return;
    this._connect();
  }

  _fail() {
    this._teardown();
    this._setState("failed");
  }

  _teardown() {
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    window.removeEventListener("online", this._onOnline);
  }

  _setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state } }));
  }

  _notice(code, message) {
    this.dispatchEvent(new CustomEvent("notice", { detail: { code, message } }));
  }
}
