// Microphone capture: getUserMedia -> AudioWorklet (pcm-worklet.js) -> 100 ms PCM16 frames.
//
//   const mic = new MicCapture({ echoCancellation, noiseSuppression });
//   const ready = mic.begin();          // call synchronously inside the click handler
//   mic.addEventListener("frame", (e) => e.detail.pcm /* ArrayBuffer, 16 kHz mono PCM16 LE */);
//   mic.addEventListener("level", (e) => e.detail.level /* 0..1 */);
//   mic.addEventListener("ended", ...)  // the track ended (device unplugged, permission revoked)
//   await ready;                         // rejects with a user-readable Error
//   await mic.stop();                    // flushes the last partial frame first

const WORKLET_URL = new URL("./pcm-worklet.js", import.meta.url);

export class MicCapture extends EventTarget {
  constructor({ echoCancellation = true, noiseSuppression = true, autoGainControl = true } = {}) {
    super();
    this.constraints = { echoCancellation, noiseSuppression, autoGainControl };
    this.ctx = null;
    this.stream = null;
    this.source = null;
    this.node = null;
    this.inputRate = null;
    this.stopped = false;
    this._flushWaiters = [];
  }

  /**
   * Starts capture. getUserMedia and the AudioContext are created synchronously here, before
   * any await, so this must be called directly from a user gesture (mobile browsers require it).
   * Returns a promise that resolves once audio flows.
   */
  begin() {
    const md = navigator.mediaDevices;
    if (!md || typeof md.getUserMedia !== "function") {
      return Promise.reject(
        new Error("This browser cannot use the microphone here (a secure https:// page or localhost is required)."),
      );
    }
    const streamPromise = md.getUserMedia({ audio: { ...this.constraints }, video: false });
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) {
      streamPromise.then((s) => s.getTracks().forEach((t) => t.stop()), () => {});
      return Promise.reject(new Error("This browser does not support Web Audio."));
    }
    // Native rate on purpose: some browsers refuse to connect a microphone to a context whose
    // rate differs from the device's; the worklet resamples to 16 kHz itself.
    this.ctx = new Ctx({ latencyHint: "interactive" });
    this.ctx.resume().catch(() => {});
    const modulePromise = this.ctx.audioWorklet
      ? this.ctx.audioWorklet.addModule(WORKLET_URL.href)
      : Promise.reject(new Error("This browser does not support AudioWorklet (update it, or use https://)."));
    modulePromise.catch(() => {}); // handled below; avoid an unhandled rejection if gUM fails first
    return this._wire(streamPromise, modulePromise);
  }

  async _wire(streamPromise, modulePromise) {
    let stream;
    try {
      stream = await streamPromise;
    } catch (err) {
      this._closeContext();
      throw new Error(describeMediaError(err));
    }
    this.stream = stream;
    if (this.stopped) {
      this._release();
      throw new Error("stopped");
    }
    try {
      await modulePromise;
    } catch (err) {
      this._release();
      throw new Error(`Could not load the audio processor: ${err && err.message ? err.message : err}`);
    }
    const ctx = this.ctx;
    this.source = ctx.createMediaStreamSource(stream);
    this.node = new AudioWorkletNode(ctx, "pcm-capture", {
      numberOfInputs: 1,
      numberOfOutputs: 1,
      outputChannelCount: [1],
      channelCountMode: "max",
    });
    this.node.port.onmessage = (event) => this._onWorkletMessage(event.data);
    this.source.connect(this.node);
    // Connected to the destination so every browser keeps pulling it; it only outputs silence.
    this.node.connect(ctx.destination);
    for (const track of stream.getAudioTracks()) {
      track.addEventListener("ended", () => {
        if (!this.stopped) this.dispatchEvent(new CustomEvent("ended"));
      });
    }
    if (ctx.state !== "running") await ctx.resume().catch(() => {});
  }

  _onWorkletMessage(msg) {
    if (!msg) return;
    if (msg.type === "frame") {
      this.dispatchEvent(new CustomEvent("frame", { detail: { pcm: msg.pcm, samples: msg.samples } }));
      this.dispatchEvent(new CustomEvent("level", { detail: { level: levelFromRms(msg.rms), rms: msg.rms, peak: msg.peak } }));
    } else if (msg.type === "flushed") {
      const waiters = this._flushWaiters;
      this._flushWaiters = [];
      waiters.forEach((resolve) => resolve());
    } else if (msg.type === "info") {
      this.inputRate = msg.inputRate;
    }
  }

  /** The device label, for display ("Default - MacBook Microphone"). */
  get label() {
    const track = this.stream && this.stream.getAudioTracks()[0];
    return track ? track.label : "";
  }

  /** Emits the buffered tail as a last (short) frame, then releases the microphone. */
  async stop() {
    if (this.stopped) return;
    this.stopped = true;
    if (this.node) {
      await new Promise((resolve) => {
        this._flushWaiters.push(resolve);
        this.node.port.postMessage({ type: "flush" });
        setTimeout(resolve, 500); // never hang on a suspended context
      });
    }
    this._release();
  }

  _release() {
    try {
      if (this.source) this.source.disconnect();
      if (this.node) {
        this.node.port.onmessage = null;
        this.node.disconnect();
      }
    } catch {
      /* already disconnected */
    }
    if (this.stream) this.stream.getTracks().forEach((t) => t.stop());
    this.source = null;
    this.node = null;
    this._closeContext();
  }

  _closeContext() {
    if (this.ctx && this.ctx.state !== "closed") this.ctx.close().catch(() => {});
  }
}

/** RMS (0..1) -> a 0..1 meter value on a dB scale (-60 dBFS .. 0 dBFS). */
export function levelFromRms(rms) {
  if (!(rms > 0)) return 0;
  const db = 20 * Math.log10(rms);
  return Math.max(0, Math.min(1, (db + 60) / 60));
}

function describeMediaError(err) {
  const name = err && err.name;
  if (name === "NotAllowedError" || name === "SecurityError" || name === "PermissionDeniedError") {
    return "Microphone access was denied. Allow the microphone for this site and press Start again.";
  }
  if (name === "NotFoundError" || name === "DevicesNotFoundError") return "No microphone was found.";
  if (name === "NotReadableError" || name === "TrackStartError") {
    return "The microphone is in use by another application or could not be opened.";
  }
  if (name === "OverconstrainedError") return "The microphone does not support the requested settings.";
  return `Could not open the microphone: ${err && err.message ? err.message : err}`;
}
