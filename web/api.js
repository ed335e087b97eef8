// The HTTP API as any client calls it: a bearer token and JSON, errors as {"status", "message"}.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export class Api {
  constructor(base, token) {
    this.base = base.replace(/\/+$/, "");
    this.token = token;
  }

  async call(method, path, body) {
    const headers = { authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers["content-type"] = "application/json";
    const response = await fetch(this.base + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    const json = text ? JSON.parse(text) : null;
    if (!response.ok) throw new ApiError(response.status, json?.message ?? response.statusText);
    return json;
  }

  get(path) { return this.call("GET", path); }
  post(path, body) { return this.call("POST", path, body); }
  put(path, body) { return this.call("PUT", path, body); }
  delete(path) { return this.call("DELETE", path); }

  /// A path of this API from a URL the API answered (`next` links, media URLs): what follows the
  /// base when it names this base, else its path (media URLs name the stack's link base, which a
  /// proxy or another port may change).
  pathOf(url) {
    if (url.startsWith(this.base + "/")) return url.slice(this.base.length);
    try {
      const { pathname, search } = new URL(url, this.base);
      return pathname + search;
    } catch {
      return url;
    }
  }

  /// The WebSocket URL of this stack for `org`: `/ws` beside the API locally, or the one given.
  socketUrl(org, socketBase) {
    const base = socketBase || this.base.replace(/^http/, "ws") + "/ws";
    return `${base}?token=${encodeURIComponent(this.token)}&org_id=${encodeURIComponent(org)}`;
  }
}

/// A token for `user` from the local stack's dev-only route (absent from a deployed stack).
export async function devToken(base, user) {
  const response = await fetch(base.replace(/\/+$/, "") + "/dev/token", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ user_id: user }),
  });
  const json = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, json.message ?? "No dev token route here: paste a token");
  return json.token;
}

/// Whom a token names (its `sub`), read without checking it: the API checks it on every call.
export function subjectOf(token) {
  const payload = token.split(".")[1] ?? "";
  const json = atob(payload.replace(/-/g, "+").replace(/_/g, "/"));
  return JSON.parse(new TextDecoder().decode(Uint8Array.from(json, (c) => c.charCodeAt(0)))).sub;
}
