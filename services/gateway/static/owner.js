// The owner key (README, "Owners"): a secret this browser makes once and keeps in localStorage.
// Sessions started with it belong to it: the page sends it in `start` ("owner"), in the
// X-ClassRec-Owner header of its fetches, and as ?owner= on links a browser opens by itself
// (downloads, calendar files, the audio player), which cannot carry a header. On a share view
// (/s/<token>) the page has no key of its own to show: its requests carry ?share=<token> instead.

const STORAGE_KEY = "classrec.owner";
export const OWNER_HEADER = "X-ClassRec-Owner";
let memoryKey = null; // private mode: a key for this page's life

function newKey() {
  const bytes = new Uint8Array(24);
  crypto.getRandomValues(bytes);
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** This browser's owner key (made on first use). */
export function ownerKey() {
  try {
    let key = localStorage.getItem(STORAGE_KEY);
    if (!key || !/^[A-Za-z0-9_-]{16,128}$/.test(key)) {
      key = newKey();
      localStorage.setItem(STORAGE_KEY, key);
    }
    return key;
  } catch {
    memoryKey = memoryKey || newKey();
    return memoryKey;
  }
}

/** The share token when this page is a share view (/s/<token>), else null. */
export function shareToken(loc = window.location) {
  const m = /^\/s\/([A-Za-z0-9_-]{16,128})\/?$/.exec(loc.pathname);
  return m ? m[1] : null;
}

/** Adds ?share= (share view) or ?owner= (own page) to an API URL object. */
export function addAccess(url, loc = window.location) {
  const share = shareToken(loc);
  if (share) url.searchParams.set("share", share);
  else url.searchParams.set("owner", ownerKey());
  return url;
}

/** Headers of an API fetch: the owner key (not on a share view). */
export function accessHeaders(headers = {}, loc = window.location) {
  return shareToken(loc) ? { ...headers } : { ...headers, [OWNER_HEADER]: ownerKey() };
}
