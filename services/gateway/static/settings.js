// The setup form <-> a settings object, remembered in localStorage between lectures.

import { ownerKey } from "./owner.js";
import { parseKeywords } from "./util.js";

const STORAGE_KEY = "classrec.settings.v1";

/** Reads the form. `language` is "en" etc., or null for automatic detection. */
export function readSettings(form) {
  const f = form.elements;
  const language = f.language.value;
  return {
    course: f.course.value.trim().slice(0, 200),
    keywordsText: f.keywords.value,
    keywords: parseKeywords(f.keywords.value),
    namesText: f.names ? f.names.value : "",
    names: f.names ? parseKeywords(f.names.value).slice(0, 10) : [],
    language: language === "auto" ? null : language || "en",
    languageChoice: language || "en",
    translate: Boolean(f.translate && f.translate.checked && !f.translate.disabled),
    prompt: f.prompt.value.trim().slice(0, 2000),
    echoCancellation: f.echoCancellation.checked,
    noiseSuppression: f.noiseSuppression.checked,
  };
}

export function writeSettings(form, s) {
  const f = form.elements;
  if (typeof s.course === "string") f.course.value = s.course;
  if (typeof s.keywordsText === "string") f.keywords.value = s.keywordsText;
  if (typeof s.namesText === "string" && f.names) f.names.value = s.namesText;
  if (typeof s.languageChoice === "string" && [...f.language.options].some((o) => o.value === s.languageChoice)) {
    f.language.value = s.languageChoice;
  }
  if (typeof s.translate === "boolean" && f.translate) f.translate.checked = s.translate;
  if (typeof s.prompt === "string") f.prompt.value = s.prompt;
  if (typeof s.echoCancellation === "boolean") f.echoCancellation.checked = s.echoCancellation;
  if (typeof s.noiseSuppression === "boolean") f.noiseSuppression.checked = s.noiseSuppression;
}

export function loadSettings() {
  try {
    return JSON.parse(localStorage.getItem(STORAGE_KEY) || "{}") || {};
  } catch {
    return {};
  }
}

export function saveSettings(s) {
  try {
    const { keywords, names, language, ...stored } = s;
    localStorage.setItem(STORAGE_KEY, JSON.stringify(stored));
  } catch {
    /* private mode / storage full: not important */
  }
}

/** The `start` message fields (README, "The WebSocket protocol") for these settings. */
export function startMessage(s) {
  let timezone = null;
  try {
    timezone = Intl.DateTimeFormat().resolvedOptions().timeZone || null;
  } catch {
    /* very old browser */
  }
  return {
    owner: ownerKey(),
    language: s.language,
    task: s.translate ? "translate" : "transcribe",
    prompt: s.prompt,
    keywords: s.keywords,
    timezone,
    course: s.course || null,
    ...(s.names && s.names.length ? { names: s.names } : {}),
  };
}
