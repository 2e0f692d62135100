// A past lecture's owner actions, shown in the "Past lectures" view: Share (POST
// /api/sessions/<sid>/share: a read-only link /s/<token>, copied to the clipboard and shown),
// Stop sharing (DELETE of the same route: every link of the lecture revoked) and Delete
// (DELETE /api/sessions/<sid>: the lecture, its audio and links, everywhere, after a confirm()).

import { sessionUrl } from "./history.js";
import { accessHeaders, shareToken } from "./owner.js";
import { h } from "./util.js";

async function call(method, url) {
  const resp = await fetch(url, { method, headers: accessHeaders({ Accept: "application/json" }) });
  const body = await resp.json().catch(() => null);
  if (!resp.ok) throw new Error((body && body.error) || `HTTP ${resp.status}`);
  return body;
}

/** The action buttons of lecture `sid` (none on a share view: a follower owns nothing). */
export function lectureActions(sid, { onDeleted = () => {}, loc = window.location } = {}) {
  if (shareToken(loc)) return null;
  const out = h("output", { class: "share-link", "aria-live": "polite" });
  const share = h("button", { type: "button", class: "btn btn-small", "data-action": "share" }, "Share");
  const unshare = h("button", { type: "button", class: "btn btn-small", "data-action": "unshare" }, "Stop sharing");
  const remove = h("button", { type: "button", class: "btn btn-small btn-danger", "data-action": "delete" }, "Delete");
  share.addEventListener("click", async () => {
    try {
      const body = await call("POST", sessionUrl(sid, "/share", loc));
      const link = new URL(body.url, loc.href).href;
      out.replaceChildren(h("a", { href: link, target: "_blank", rel: "noopener" }, link));
      navigator.clipboard?.writeText(link).catch(() => {});
    } catch (err) {
      out.textContent = `Could not share: ${err.message}`;
    }
  });
  unshare.addEventListener("click", async () => {
    try {
      const body = await call("DELETE", sessionUrl(sid, "/share", loc));
      out.textContent = body.revoked ? "The links no longer work." : "It was not shared.";
    } catch (err) {
      out.textContent = `Could not stop sharing: ${err.message}`;
    }
  });
  remove.addEventListener("click", async () => {
    if (!window.confirm("Delete this lecture, its transcript and its audio, everywhere? This cannot be undone.")) return;
    try {
      await call("DELETE", sessionUrl(sid, "", loc));
      onDeleted(sid);
    } catch (err) {
      out.textContent = `Could not delete it: ${err.message}`;
    }
  });
  return h("div", { class: "lecture-actions" }, share, unshare, remove, out);
}
