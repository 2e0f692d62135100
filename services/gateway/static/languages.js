// The setup form's language list and translate option, from what the server's model can do
// (GET /api/languages): a page never offers a language its server would refuse.

import { apiUrl } from "./history.js";

/** Fetches the server's languages and applies them to `form`; `preferred` is the stored choice. */
export async function loadLanguages(form, preferred = null) {
  let info;
  try {
    const resp = await fetch(apiUrl("/api/languages"), { headers: { Accept: "application/json" }, cache: "no-store" });
    if (!resp.ok) return null;
    info = await resp.json();
  } catch {
    return null; // offline: the page's own list stays
  }
  applyLanguages(form, info, preferred);
  return info;
}

function displayNames() {
  try {
    const names = new Intl.DisplayNames([navigator.language || "en", "en"], { type: "language" });
    return (code) => {
      const name = names.of(code);
      return name && name !== code ? name.charAt(0).toUpperCase() + name.slice(1) : code;
    };
  } catch {
    return (code) => code;
  }
}

/** Rebuilds the language <select> from `info.languages` (null: not known, the list stays). */
export function applyLanguages(form, info, preferred = null) {
  const select = form.elements.language;
  const want = preferred || select.value;
  if (Array.isArray(info.languages) && info.languages.length) {
    const name = displayNames();
    const options = info.languages.map((code) => new Option(name(code), code));
    options.sort((a, b) => (a.value !== "en") - (b.value !== "en") || a.text.localeCompare(b.text));
    if (info.auto) options.splice(1, 0, new Option("Detect automatically", "auto"));
    select.replaceChildren(...options);
    select.value = options.some((o) => o.value === want) ? want : options[0].value;
  }
  select.dataset.model = info.model || "";
  const translate = form.elements.translate;
  const option = document.getElementById("translate-option");
  if (translate) {
    translate.disabled = !info.translate;
    if (!info.translate) translate.checked = false;
  }
  if (option) option.hidden = !info.translate;
}
