// Microphone capture: getUserMedia -> 16 kHz mono -> 100 ms PCM16 frames.
//
// Two paths, the same DSP (pcm-worklet.js: Resampler, Pcm16Framer):
//  - "track" (Chromium: MediaStreamTrackProcessor): the track's own 10 ms buffers are read from a
//    queue of up to 10 s. Nothing runs on a clock of its own, so a page or machine that stalls for
//    a while only delays the audio; none is lost.
//  - "worklet" (every other browser): an AudioWorklet in an AudioContext. Chromium feeds a
//    microphone into an AudioContext through a small FIFO that the context's render thread drains
//    in real time; when that thread misses its deadlines (a loaded machine), the context's clock
//    falls behind and the FIFO drops the capture's 10 ms buffers (measured: 13 s lost in 10 min of
//    lecture with a transcriber busy on the same 2 cores; bench/page_vs_stream.py).
// `?capture=worklet` (or `track`) in the page's URL forces a path, for measurements.
//
//   const mic = new MicCapture({ echoCancellation, noiseSuppression });
//   const ready = mic.begin();          // call synchronously inside the click handler
//   mic.addEventListener("frame", (e) => e.detail.pcm /* ArrayBuffer, 16 kHz mono PCM16 LE */);
//   mic.addEventListener("level", (e) => e.detail.level /* 0..1 */);
//   mic.addEventListener("ended", ...)  // the track ended (device unplugged, permission revoked)
//   await ready;                         // rejects with a user-readable Error
//   await mic.stop();                    // flushes the last partial frame first

import { FRAME_SAMPLES, Pcm16Framer, Resampler, TARGET_RATE } from "./pcm-worklet.js";

const WORKLET_URL = new URL("./pcm-worklet.js", import.meta.url);
const TRACK_QUEUE_BUFFERS = 1000; // the track path's queue: 10 s of the usual 10 ms buffers

function choosePath() {
  let forced = null;
  try {
    forced = new URLSearchParams(window.location.search).get("capture");
  } catch {
    /* no location: use the default */
  }
  const trackOk = typeof window.MediaStreamTrackProcessor === "function" && typeof window.AudioData === "function";
  if (forced === "worklet" || (forced !== "track" && !trackOk)) return "worklet";
  return trackOk ? "track" : "worklet";
}

export class MicCapture extends EventTarget {
  // Automatic gain control is off unless asked for (the page has no setting for it): Whisper needs
  // no level normalisation, and the gain it applies moves from sentence to sentence, which only
  // changes what the recogniser hears. Echo cancellation and noise suppression follow the page's
  // settings; with them on, Chromium sends processed audio (bench/page_vs_stream.py --voice-processing).
  constructor({ echoCancellation = false, noiseSuppression = false, autoGainControl = false } = {}) {
    super();
    this.constraints = { echoCancellation, noiseSuppression, autoGainControl };
    this.ctx = null;
    this.stream = null;
    this.source = null;
    this.node = null;
    this.inputRate = null;
    this.stopped = false;
    this._flushWaiters = [];
    this.path = null; // "track" | "worklet", once begun
    // Track path: what was read, and gaps in the track's timestamps (audio lost before the page).
    this.stats = { buffers: 0, inputFrames: 0, gaps: 0, gapSeconds: 0 };
    this._reader = null;
    this._pump = null;
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
    this.path = choosePath();
    if (this.path === "track") return this._wireTrack(streamPromise);
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

  async _wireTrack(streamPromise) {
    let stream;
    try {
      stream = await streamPromise;
    } catch (err) {
      throw new Error(describeMediaError(err));
    }
    this.stream = stream;
    if (this.stopped) {
      this._release();
      throw new Error("stopped");
    }
    const track = stream.getAudioTracks()[0];
    const processor = new window.MediaStreamTrackProcessor({ track, maxBufferSize: TRACK_QUEUE_BUFFERS });
    this._reader = processor.readable.getReader();
    this._framer = new Pcm16Framer(FRAME_SAMPLES, (pcm, samples, rms, peak) =>
      this._onWorkletMessage({ type: "frame", pcm, samples, rms, peak }),
    );
    track.addEventListener("ended", () => {
      if (!this.stopped) this.dispatchEvent(new CustomEvent("ended"));
    });
    this._pump = this._readTrack(this._reader);
  }

  async _readTrack(reader) {
    let planes = [];
    let mono = new Float32Array(0);
    let nextTimestamp = null;
    for (;;) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch {
        break; // cancelled by stop(), or the track went away
      }
      if (chunk.done) break;
      const data = chunk.value;
      try {
        const frames = data.numberOfFrames;
        const channels = data.numberOfChannels;
        if (!this._resampler) {
          this.inputRate = data.sampleRate;
          this._resampler = new Resampler(data.sampleRate, TARGET_RATE);
        }
        const duration = (frames / data.sampleRate) * 1e6; // microseconds, as the timestamps
        if (nextTimestamp !== null && data.timestamp - nextTimestamp > duration / 2) {
          this.stats.gaps += 1; // buffers missing before this one (lost upstream, or dropped from the queue)
          this.stats.gapSeconds += (data.timestamp - nextTimestamp) / 1e6;
        }
        nextTimestamp = data.timestamp + duration;
        if (planes.length !== channels || planes[0].length !== frames) {
          planes = Array.from({ length: channels }, () => new Float32Array(frames));
          mono = new Float32Array(frames);
        }
        // Chromium's microphone buffers are f32-planar; any other format is converted by copyTo.
        const convert = data.format === "f32-planar" ? {} : { format: "f32-planar" };
        for (let c = 0; c < channels; c++) data.copyTo(planes[c], { planeIndex: c, ...convert });
        this.stats.buffers += 1;
        this.stats.inputFrames += frames;
        this._framer.push(this._resampler.process(downmixPlanes(planes, mono)));
      } catch (err) {
        this.stats.error = String(err && err.message ? err.message : err);
        if (!this.stopped) this.dispatchEvent(new CustomEvent("ended"));
        break;
      } finally {
        data.close();
      }
    }
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
    if (this.path === "track") {
      // The stopped track closes the processor's stream after what it has queued: all of it is
      // still read and sent, then the resampler's tail, as a short last frame.
      if (this.stream) this.stream.getTracks().forEach((t) => t.stop());
      if (this._pump) await Promise.race([this._pump, new Promise((resolve) => setTimeout(resolve, 2000))]);
      if (this._reader) this._reader.cancel().catch(() => {});
      if (this._framer) {
        if (this._resampler) this._framer.push(this._resampler.flush());
        this._framer.flush();
      }
      this._release();
      return;
    }
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

/** The average of the channels' planes into `out`. */
function downmixPlanes(planes, out) {
  if (planes.length === 1) return planes[0];
  out.fill(0);
  for (const plane of planes) for (let i = 0; i < out.length; i++) out[i] += plane[i];
  for (let i = 0; i < out.length; i++) out[i] /= planes.length;
  return out;
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
