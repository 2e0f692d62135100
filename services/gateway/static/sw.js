// Minimal service worker: only used to show notifications where `new Notification()` is not
// allowed (Android Chrome). Clicking a notification focuses the ClassRec tab.

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(
    (async () => {
      const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
      const page = windows.find((c) => new URL(c.url).pathname === "/") || windows[0];
      if (page) return page.focus();
      return self.clients.openWindow("/");
    })(),
  );
});
