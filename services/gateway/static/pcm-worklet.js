// AudioWorklet: microphone -> mono -> 16 kHz -> PCM16 little-endian frames of 100 ms.
//
// Loaded with `audioContext.audioWorklet.addModule(...)`. Self-contained (no imports) so it works
// in every browser's worklet scope. The DSP classes are exported so they can be tested in node;
// the processor is only registered when `registerProcessor` exists (i.e. inside a worklet).
//
// Messages posted to the main thread (node.port):
//   {type: "frame", pcm: ArrayBuffer, samples: int, rms: float, peak: float}   (pcm is transferred)
//   {type: "flushed"}                          after a {type: "flush"} request
//   {type: "info", inputRate: int, outputRate: int}   once, at construction
// Messages accepted from the main thread:
//   {type: "flush"}   emit whatever is buffered (the tail of the resampler and a short last frame)

export const TARGET_RATE = 16000;
export const FRAME_SAMPLES = 1600; // 100 ms at 16 kHz

/**
 * Band-limited fractional resampler (windowed-sinc, Blackman-Harris window, table lookup).
 * Works for any ratio; 48000 -> 16000 and 44100 -> 16000 are the usual cases.
 *
 * Whisper hears 0-8 kHz (its mel filters reach 8 kHz, and its training audio was resampled with
 * a cut-off near 0.97 x 8 kHz), so the low-pass keeps as much of that band as it can without
 * letting anything above 8 kHz fold back: cut-off (-6 dB) at 0.95 x the lower Nyquist frequency,
 * 48 zero crossings a side. Measured to 16 kHz (tests/test_capture_rate.py): flat (< 0.1 dB) to
 * 7 kHz, -3 dB at 7.5 kHz; 8.1 kHz and up at -60 dB or less. (The earlier 0.9 x and 16 crossings
 * lost 0.7 dB at 6.5 kHz, 3.7 dB at 7 kHz, 11 dB at 7.5 kHz and let 8.1 kHz alias at -30 dB.)
 * Cost: about 2 % of one core for 48 kHz input.
 */
export class Resampler {
  constructor(inRate, outRate = TARGET_RATE, { zeroCrossings = 48, phases = 128, cutoff = 0.95 } = {}) {
    this.inRate = inRate;
    this.outRate = outRate;
    this.passthrough = inRate === outRate;
    this.step = inRate / outRate; // input samples per output sample
    // Cut-off (cycles per input sample): `cutoff` x the lower Nyquist frequency.
    const fc = ((cutoff / 2) * Math.min(inRate, outRate)) / inRate;
    this.half = zeroCrossings / (2 * fc); // kernel half-width, in input samples
    this.phases = phases;
    const n = Math.ceil(this.half * phases) * 2 + 2;
    this.table = new Float32Array(n);
    const mid = Math.ceil(this.half * phases);
    this.mid = mid;
    for (let i = 0; i < n; i++) {
      const d = (i - mid) / phases; // distance in input samples
      this.table[i] = Math.abs(d) >= this.half ? 0 : 2 * fc * sinc(2 * fc * d) * blackmanHarris(d / this.half);
    }
    // Pending input; `pos` is the position of the next output sample within it.
    const pad = Math.ceil(this.half) + 1;
    this.buf = new Float32Array(4096);
    this.len = pad; // leading zeros so the first output sample is centred on input 0
    this.pos = pad;
  }

  /** Resample `input` (Float32Array); returns a Float32Array of output samples (may be empty). */
  process(input) {
    if (this.passthrough) return Float32Array.from(input);
    this._append(input);
    return this._drain();
  }

  /** Push the tail through (zero padding) and return the remaining output. */
  flush() {
    if (this.passthrough) return new Float32Array(0);
    this._append(new Float32Array(Math.ceil(this.half) + 2));
    const out = this._drain();
    this.reset();
    return out;
  }

  reset() {
    const pad = Math.ceil(this.half) + 1;
    this.buf.fill(0);
    this.len = pad;
    this.pos = pad;
  }

  _append(input) {
    if (this.len + input.length > this.buf.length) {
      const next = new Float32Array(Math.max(this.buf.length * 2, this.len + input.length));
      next.set(this.buf.subarray(0, this.len));
      this.buf = next;
    }
    this.buf.set(input, this.len);
    this.len += input.length;
  }

  _drain() {
    const { buf, table, phases, mid, half, step } = this;
    const count = Math.max(0, Math.floor((this.len - 1 - half - this.pos) / step) + 1);
    const out = new Float32Array(count);
    let pos = this.pos;
    for (let o = 0; o < count; o++) {
      const first = Math.max(0, Math.ceil(pos - half));
      const last = Math.min(this.len - 1, Math.floor(pos + half));
      let acc = 0;
      for (let k = first; k <= last; k++) {
        const x = (pos - k) * phases + mid;
        const i = x | 0;
        const f = x - i;
        acc += buf[k] * (table[i] + f * (table[i + 1] - table[i]));
      }
      out[o] = acc;
      pos += step;
    }
    // Drop input that no future output sample needs.
    const keepFrom = Math.max(0, Math.floor(pos - half) - 1);
    if (keepFrom > 0) {
      buf.copyWithin(0, keepFrom, this.len);
      this.len -= keepFrom;
      pos -= keepFrom;
    }
    this.pos = pos;
    return out;
  }
}

function sinc(x) {
  if (x === 0) return 1;
  const px = Math.PI * x;
  return Math.sin(px) / px;
}

function blackmanHarris(u) {
  // u in [-1, 1] -> window value
  const t = (u + 1) / 2;
  const a = 2 * Math.PI * t;
  return 0.35875 - 0.48829 * Math.cos(a) + 0.14128 * Math.cos(2 * a) - 0.01168 * Math.cos(3 * a);
}

/** Collects float samples into fixed-size PCM16 little-endian frames. */
export class Pcm16Framer {
  constructor(frameSamples = FRAME_SAMPLES, onFrame = () => {}) {
    this.frameSamples = frameSamples;
    this.onFrame = onFrame;
    this._newFrame();
  }

  _newFrame() {
    this.buffer = new ArrayBuffer(this.frameSamples * 2);
    this.view = new DataView(this.buffer);
    this.count = 0;
    this.sumSq = 0;
    this.peak = 0;
  }

  push(samples) {
    for (let i = 0; i < samples.length; i++) {
      let s = samples[i];
      if (!(s === s)) s = 0; // NaN guard
      if (s > 1) s = 1;
      else if (s < -1) s = -1;
      this.view.setInt16(this.count * 2, s < 0 ? Math.round(s * 0x8000) : Math.round(s * 0x7fff), true);
      this.sumSq += s * s;
      const a = s < 0 ? -s : s;
      if (a > this.peak) this.peak = a;
      if (++this.count === this.frameSamples) this._emit();
    }
  }

  /** Emit a short last frame if anything is pending. */
  flush() {
    if (this.count > 0) this._emit();
  }

  _emit() {
    const samples = this.count;
    const pcm = samples === this.frameSamples ? this.buffer : this.buffer.slice(0, samples * 2);
    const rms = Math.sqrt(this.sumSq / samples);
    const peak = this.peak;
    this._newFrame();
    this.onFrame(pcm, samples, rms, peak);
  }
}

/** Average all channels of one render quantum into `out` (Float32Array of the same length). */
export function downmix(channels, out) {
  const n = channels.length;
  if (n === 1) {
    out.set(channels[0]);
    return out;
  }
  out.fill(0);
  for (let c = 0; c < n; c++) {
    const ch = channels[c];
    for (let i = 0; i < ch.length; i++) out[i] += ch[i];
  }
  for (let i = 0; i < out.length; i++) out[i] /= n;
  return out;
}

if (typeof registerProcessor === "function") {
  class PcmCaptureProcessor extends AudioWorkletProcessor {
    constructor() {
      super();
      // `sampleRate` is the AudioWorkletGlobalScope's context rate (often 44100 or 48000).
      this.resampler = new Resampler(sampleRate, TARGET_RATE);
      this.framer = new Pcm16Framer(FRAME_SAMPLES, (pcm, samples, rms, peak) => {
        this.port.postMessage({ type: "frame", pcm, samples, rms, peak }, [pcm]);
      });
      this.mono = new Float32Array(128);
      this.port.onmessage = (event) => {
        if (event.data && event.data.type === "flush") {
          this.framer.push(this.resampler.flush());
          this.framer.flush();
          this.port.postMessage({ type: "flushed" });
        }
      };
      this.port.postMessage({ type: "info", inputRate: sampleRate, outputRate: TARGET_RATE });
    }

    process(inputs) {
      const input = inputs[0];
      if (input && input.length > 0 && input[0].length > 0) {
        if (this.mono.length !== input[0].length) this.mono = new Float32Array(input[0].length);
        this.framer.push(this.resampler.process(downmix(input, this.mono)));
      }
      return true; // keep running; outputs stay silent
    }
  }
  registerProcessor("pcm-capture", PcmCaptureProcessor);
}
