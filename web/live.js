// Room events over the WebSocket API, with nothing lost across a dropped connection and nothing
// shown twice: on every reconnect (and with each heartbeat, which keeps its token recent) the client
// syncs from the token of its last sync, and drops an event id it has already handled.

const PING_MS = 4 * 60 * 1000; // API Gateway closes a connection idle for 10 minutes.
// Without input for this long the client says it is idle: after two minutes more, pushes reach the
// member's other devices (and this one, through its service worker).
const IDLE_MS = 60 * 1000;
const MAX_BACKOFF_MS = 15000;
const SEEN_IDS = 2000;

export class Live extends EventTarget {
  constructor(api, org, socketBase) {
    super();
    this.api = api;
    this.org = org;
    this.socketBase = socketBase;
    this.token = null;
    this.seen = new Set();
    this.backoff = 1000;
    this.closed = false;
    this.lastInput = Date.now();
    this.said = "active";
    this.watchAttention();
  }

  /// Whether the user is in front of this client: the tab is hidden, or nothing was typed, clicked
  /// or scrolled for a minute. Each change is said at once in a ping.
  attention() {
    if (document.hidden) return "hidden";
    return Date.now() - this.lastInput >= IDLE_MS ? "idle" : "active";
  }

  watchAttention() {
    const changed = () => {
      if (this.attention() !== this.said) this.ping();
    };
    const input = () => {
      this.lastInput = Date.now();
      changed();
    };
    // Coming back to the tab is coming back to it, input or not.
    const visible = () => (document.hidden ? changed() : input());
    this.listeners = [
      [document, "visibilitychange", visible],
      ...["focus", "keydown", "pointerdown", "wheel", "touchstart"].map((name) => [window, name, input]),
    ];
    for (const [target, name, listener] of this.listeners) target.addEventListener(name, listener, { passive: true });
    this.idleCheck = setInterval(changed, IDLE_MS / 4);
  }

  ping() {
    this.said = this.attention();
    this.send({ action: "ping", state: this.said });
  }

  /// Resolves once connected and holding the token of "from now on", so what the caller loads
  /// next misses nothing that happens after.
  async start() {
    await this.connect();
    const { token } = await this.api.get(this.syncPath());
    this.token = token;
  }

  stop() {
    this.closed = true;
    clearInterval(this.pinger);
    clearInterval(this.idleCheck);
    for (const [target, name, listener] of this.listeners) target.removeEventListener(name, listener);
    this.socket?.close();
  }

  send(frame) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(frame));
  }

  connect() {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(this.api.socketUrl(this.org, this.socketBase));
      this.socket = socket;
      socket.onopen = () => {
        this.backoff = 1000;
        this.status(true);
        clearInterval(this.pinger);
        // A new connection starts active: say otherwise at once if it is not.
        this.said = "active";
        if (this.attention() !== "active") this.ping();
        this.pinger = setInterval(() => {
          this.ping();
          this.catchUp().catch(() => {});
        }, PING_MS);
        resolve();
      };
      socket.onmessage = (message) => {
        try {
          this.handle(JSON.parse(message.data));
        } catch (err) {
          console.warn("an event that does not parse", err);
        }
      };
      socket.onclose = () => {
        this.status(false);
        clearInterval(this.pinger);
        reject(new Error("the WebSocket API refused the connection"));
        if (!this.closed) setTimeout(() => this.reconnect(), this.backoff);
      };
    });
  }

  async reconnect() {
    if (this.closed) return;
    this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS);
    try {
      await this.connect();
      await this.catchUp();
    } catch (err) {
      if (err.status === 410) this.dispatchEvent(new Event("reload"));
      // Otherwise the close handler tries again.
    }
  }

  /// Everything after the last token seen, page by page; events that also arrive on the socket
  /// meanwhile are dropped by id.
  async catchUp() {
    const query = new URLSearchParams({ limit: "100" });
    if (this.token) query.set("since", this.token);
    let path = `${this.syncPath()}?${query}`;
    for (;;) {
      const page = await this.api.get(path);
      for (const event of page.events) this.handle(event);
      if (!page.next) {
        this.token = page.token;
        return;
      }
      path = this.api.pathOf(page.next);
    }
  }

  syncPath() {
    return `/api/v1/org/${this.org}/users/${encodeURIComponent(this.api.user)}/sync`;
  }

  handle(event) {
    if (event.event === "pong") return;
    if (event.event === "error") {
      console.warn("the WebSocket API refused a frame", event.status, event.message);
      return;
    }
    if (event.event_id) {
      if (this.seen.has(event.event_id)) return;
      this.seen.add(event.event_id);
      if (this.seen.size > SEEN_IDS) this.seen.delete(this.seen.values().next().value);
    }
    this.dispatchEvent(new CustomEvent("event", { detail: event }));
  }

  status(online) {
    this.dispatchEvent(new CustomEvent("status", { detail: online }));
  }
}
