// Voice lock: enrol the lecturer's voice (hold the button: up to 10 s recorded with MediaRecorder and
// sent to POST /api/voices) or pick a saved one (GET /api/voices); the choice is remembered per course.
// A `start` (and an upload) then carries {owner, voice, others}: only the lecturer's speech is
// transcribed, others' is hidden (drop) or shown apart (label). Voices belong to this browser's owner
// key (owner.js), sent as header X-ClassRec-Owner.
//
// Markup (index.html): #voice (select), #others (select), #voice-record, #voice-delete, #voice-status.

import { apiUrl } from "./history.js";
import { ownerKey } from "./owner.js";

const BY_COURSE_KEY = "classrec.voice.byCourse";
export const ENROL_S = 10;
const MIN_S = 5;

function readJson(key) {
  try {
    return JSON.parse(localStorage.getItem(key) || "{}") || {};
  } catch {
    return {};
  }
}

export class VoiceLock {
  /** `course()` returns the setup form's course (the saved voice is remembered per course). */
  constructor(root, { course = () => "" } = {}) {
    this.select = root.querySelector("#voice");
    this.others = root.querySelector("#others");
    this.record = root.querySelector("#voice-record");
    this.remove = root.querySelector("#voice-delete");
    this.status = root.querySelector("#voice-status");
    this.course = course;
    this.label = this.record.textContent;
    this.recorder = null;
    this.select.addEventListener("change", () => this.remember());
    this.remove.addEventListener("click", () => this.deleteSelected());
    this.record.addEventListener("pointerdown", (e) => {
      e.preventDefault();
      this.startRecording();
    });
    for (const ev of ["pointerup", "pointerleave", "pointercancel"]) {
      this.record.addEventListener(ev, () => this.stopRecording());
    }
    this.refresh();
  }

  headers() {
    const owner = ownerKey();
    return owner ? { "X-ClassRec-Owner": owner } : {};
  }

  /** The `start` fields of the lock, or {} when it is off. */
  startFields() {
    const voice = this.select.value;
    if (!voice) return {};
    return { owner: ownerKey(), voice, others: this.others.value === "label" ? "label" : "drop" };
  }

  /** "voice lock: <name> (others left out | shown apart)", or "" when the lock is off. */
  describe() {
    const option = this.select.selectedOptions[0];
    if (!this.select.value || !option) return "";
    const name = option.textContent.replace(/ \(\d+ s\)$/, "");
    return `voice lock: ${name} (others ${this.others.value === "label" ? "shown apart" : "left out"})`;
  }

  say(text, isError = false) {
    this.status.textContent = text;
    this.status.classList.toggle("error", isError);
  }

  async refresh(selectId = null) {
    let voices = [];
    try {
      const resp = await fetch(apiUrl("/api/voices"), { headers: this.headers(), cache: "no-store" });
      if (resp.ok) voices = (await resp.json()).voices || [];
    } catch {
      /* offline: the lock stays off */
    }
    const keep = selectId || readJson(BY_COURSE_KEY)[this.course()] || this.select.value;
    this.select.replaceChildren(new Option("Off: transcribe everyone", ""));
    for (const v of voices) {
      this.select.append(new Option(`${v.name} (${Math.round(v.seconds)} s)`, v.voice));
    }
    this.select.value = voices.some((v) => v.voice === keep) ? keep : "";
    this.remove.disabled = !this.select.value;
  }

  remember() {
    const byCourse = readJson(BY_COURSE_KEY);
    byCourse[this.course()] = this.select.value;
    try {
      localStorage.setItem(BY_COURSE_KEY, JSON.stringify(byCourse));
    } catch {
      /* not important */
    }
    this.remove.disabled = !this.select.value;
  }

  async startRecording() {
    if (this.recorder || typeof MediaRecorder === "undefined") {
      if (!this.recorder) this.say("This browser cannot record here; upload the voice from another one.", true);
      return;
    }
    const constraints = { audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false } };
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia(constraints);
    } catch (err) {
      return this.say(`No microphone: ${err.message || err.name}`, true);
    }
    const chunks = [];
    const recorder = new MediaRecorder(stream);
    this.recorder = recorder;
    recorder.ondataavailable = (e) => e.data.size && chunks.push(e.data);
    recorder.onstop = () => {
      stream.getTracks().forEach((t) => t.stop());
      this.finishRecording(new Blob(chunks, { type: recorder.mimeType || "audio/webm" }));
    };
    this.started = performance.now();
    recorder.start(250);
    this.record.classList.add("recording");
    this.tick = setInterval(() => {
      const left = Math.ceil(ENROL_S - (performance.now() - this.started) / 1000);
      this.record.textContent = `Recording the lecturer… ${Math.max(0, left)} s`;
      if (left <= 0) this.stopRecording();
    }, 200);
  }

  stopRecording() {
    const recorder = this.recorder;
    if (!recorder || recorder.state === "inactive") return;
    this.seconds = (performance.now() - this.started) / 1000;
    clearInterval(this.tick);
    this.record.classList.remove("recording");
    this.record.textContent = this.label;
    recorder.stop();
  }

  async finishRecording(blob) {
    this.recorder = null;
    if (this.seconds < MIN_S) return this.say(`Hold the button for at least ${MIN_S} seconds while the lecturer speaks.`, true);
    this.say("Enrolling the lecturer's voice…");
    const body = new FormData();
    body.append("file", blob, "lecturer.webm");
    body.append("name", this.course() || "Lecturer");
    try {
      const resp = await fetch(apiUrl("/api/voices"), { method: "POST", body, headers: this.headers() });
      const got = await resp.json();
      if (!resp.ok) return this.say(got.error || `Enrolment failed (${resp.status})`, true);
      await this.refresh(got.voice);
      this.remember();
      this.say(`Voice lock on: “${got.name}”. Only the lecturer's speech will be transcribed.`);
    } catch (err) {
      this.say(`Enrolment failed: ${err.message || err}`, true);
    }
  }

  async deleteSelected() {
    const voice = this.select.value;
    if (!voice) return;
    await fetch(apiUrl(`/api/voices/${encodeURIComponent(voice)}`), { method: "DELETE", headers: this.headers() });
    await this.refresh();
    this.remember();
    this.say("Voice deleted; the lock is off.");
  }
}
