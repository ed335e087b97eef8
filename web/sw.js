// The web client's service worker: it shows the stack's Web Push notifications (the payload the
// notifier sends: title, body, url) and, when one is clicked, brings the client to that room, in a
// window already open if there is one.

self.addEventListener("push", (event) => {
  let push = {};
  try {
    push = event.data?.json() ?? {};
  } catch {
    // A push that is not ours still shows something: the browser requires it.
  }
  const shown = self.registration.showNotification(push.title ?? "New message", {
    body: push.body ?? "",
    // One notification a message, and a room's newest replaces the one before it.
    tag: push.room_id ?? push.message_id,
    renotify: Boolean(push.room_id),
    data: { url: push.url ?? self.registration.scope },
  });
  event.waitUntil(shown);
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  let url = self.registration.scope;
  try {
    url = new URL(event.notification.data?.url, self.registration.scope).href;
  } catch {
    // A link that does not parse opens the client itself.
  }
  const open = async () => {
    const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    const client = windows.find((window) => new URL(window.url).pathname === new URL(url).pathname);
    if (!client) return self.clients.openWindow(url);
    await client.focus();
    client.postMessage({ open: url });
  };
  event.waitUntil(open());
});
