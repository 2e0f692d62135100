// The WebSocket client of /ws/transcribe (README, "The WebSocket protocol": fixed).
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
//   conn.bufferedSeconds            // audio the server has not acknowledged yet (sent or not)
//
// Acknowledged audio (README, "The WebSocket protocol", Acknowledged audio): every frame stays in `pending` until an
// {"type":"ack","received":n} says the server stored the session's audio up to byte n. If the socket
// drops before "end", it reconnects with backoff and resumes the session with
// {"type":"start","session":<id>,"offset":<first unacknowledged byte>} and sends all of `pending`
// again, from that byte: what the dead socket swallowed is sent again, and the server drops what it
// held already, so nothing is lost and nothing doubled. `pending` is bounded (MAX_BUFFERED_BYTES):
// past it the oldest audio is dropped, with a notice (the server fills such a gap with silence).

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
    this.textQueue = []; // JSON messages (flags) waiting for a connection
    this.pending = []; // ArrayBuffers the server has not acknowledged, oldest first
    this.pendingBytes = 0;
    this.pendingStart = 0; // byte of the session's audio that pending[0] starts at
    this.sentCount = 0; // how many of pending went into the current socket
    this.connectOffset = 0; // pendingStart when the current socket opened (its first audio byte)
    this.droppedBytes = 0;
    this.stopRequested = false;
    this._stopSent = false;
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

  /** Sends (or queues) one binary frame of PCM16 audio; it is kept until acknowledged. */
  sendAudio(buffer) {
    if (this.stopRequested || this.ended || this.closedByClient) return;
    this.pending.push(buffer);
    this.pendingBytes += buffer.byteLength;
    if (this._isOpen()) this._flush();
    while (this.pendingBytes > MAX_BUFFERED_BYTES && this.pending.length > 1) {
      const dropped = this.pending.shift();
      this.pendingBytes -= dropped.byteLength;
      this.pendingStart += dropped.byteLength;
      if (this.sentCount > 0) this.sentCount -= 1;
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

  /** Seconds of audio not yet acknowledged by the server (what a reconnect would send again). */
  get bufferedSeconds() {
    return this.pendingBytes / (16000 * 2);
  }

  /** Bytes of the session's audio the server has acknowledged. */
  get acknowledgedBytes() {
    return this.pendingStart;
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
      if (this.sessionId) {
        start.session = this.sessionId;
        start.offset = this.pendingStart; // everything unacknowledged goes again, from there
      }
      this.connectOffset = this.pendingStart;
      this.sentCount = 0;
      this._stopSent = false;
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
    while (this.sentCount < this.pending.length && this._isOpen()) {
      ws.send(this.pending[this.sentCount]);
      this.sentCount += 1;
    }
    if (this.sentCount === this.pending.length) this.droppedBytes = 0;
    if (this.stopRequested && this.sentCount === this.pending.length && this._isOpen() && !this._stopSent) {
      this._stopSent = true;
      ws.send(JSON.stringify({ type: "stop" }));
    }
  }

  /** The server holds the session's audio up to byte `received`: forget it here. */
  _acknowledge(received) {
    while (this.pending.length && this.pendingStart < received) {
      const first = this.pending[0];
      const keep = this.pendingStart + first.byteLength - received;
      if (keep > 0) {
        // Acknowledged part-way (the server cut a frame it partly held): keep the rest, exactly.
        this.pending[0] = first.slice(first.byteLength - keep);
        this.pendingBytes -= first.byteLength - keep;
        this.pendingStart = received;
        break;
      }
      this.pending.shift();
      this.pendingBytes -= first.byteLength;
      this.pendingStart += first.byteLength;
      if (this.sentCount > 0) this.sentCount -= 1;
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
    if (msg.type === "ack" && Number.isInteger(msg.received)) {
      this._acknowledge(msg.received);
    }
    if (msg.type === "session" && typeof msg.session === "string") {
      const previous = this.sessionId;
      this.sessionId = msg.session;
      msg.resumed = previous === msg.session;
      msg.previous = previous;
      if (previous && !msg.resumed) {
        // A new session instead: its byte 0 is the first byte this socket sent.
        this.pendingStart -= this.connectOffset;
        this.connectOffset = 0;
      } else if (msg.resumed && Number.isInteger(msg.received)) {
        this._acknowledge(msg.received);
      }
    }
    if (msg.type === "error" && this.stopRequested && (msg.code === "already_stopped" || msg.code === "audio_after_stop")) {
      return; // after a resend past our own stop: the server had it all already
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
