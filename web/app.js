// A small DM client of the API: sign in, pick an org, the inbox, a room, threads, search. Every call
// goes through the public API (api.js) and every live change comes from the WebSocket (live.js).

import { Api, ApiError, devToken, subjectOf } from "./api.js";
import { Live } from "./live.js";

const $ = (selector) => document.querySelector(selector);
const QUICK_REACTIONS = ["👍", "❤️", "😂"];
const PAGE = 30;
const TYPING_EVERY_MS = 2000; // the API relays one `start` per 2 s
const TYPING_SHOWN_MS = 6000; // and a `start` lapses after 6 s without another
const PRESENCE_ROOM_MEMBERS = 9; // as the inbox: presence for rooms of at most 9 members
const IMAGE = /\.(png|jpe?g|gif|webp|avif|bmp)$/i;

const saved = {
  get: (key, fallback) => JSON.parse(localStorage.getItem(`dm.${key}`) ?? "null") ?? fallback,
  set: (key, value) => localStorage.setItem(`dm.${key}`, JSON.stringify(value)),
};

const state = {
  api: null,
  live: null,
  me: null,
  org: null,
  orgs: [], // the caller's: { org_id, name, role }
  names: new Map(), // user id -> display name
  members: new Map(), // user id -> the member as the member list shows it (role, profile)
  presence: new Map(), // user id -> "online" | "offline"
  rooms: new Map(), // room id -> inbox row
  roomsNext: null,
  room: null, // the open room: { id, next, markers: Map(user -> message id), typing: Map(user -> timer) }
  panel: null, // { kind: "thread" | "pins" | "search", messageId }
  invite: null, // the token of the invite being answered
  attachment: null,
  typingSentAt: 0,
};

// ---------- small helpers ----------

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

function toast(text) {
  $("#toast").textContent = text;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => ($("#toast").textContent = ""), 4000);
}

function failed(err) {
  console.warn(err);
  toast(err instanceof ApiError ? `${err.status}: ${err.message}` : String(err.message ?? err));
}

/// Web addresses in a message's text; a trailing `.`, `,`, `)` and the like end the sentence, not the address.
const WEB_ADDRESS = /\bhttps?:\/\/[^\s<>"']+/gi;
const TRAILING = /[.,;:!?)\]}'"]+$/;

/// A message's text as text nodes, its web addresses as links that open apart and tell the linked
/// page nothing of this one. Nothing in a message is ever read as HTML.
function richText(text) {
  const parts = [];
  let from = 0;
  for (const match of text.matchAll(WEB_ADDRESS)) {
    const address = match[0].replace(TRAILING, "");
    parts.push(text.slice(from, match.index), el("a", { href: address, target: "_blank", rel: "noopener noreferrer" }, address));
    from = match.index + address.length;
  }
  parts.push(text.slice(from));
  return parts;
}

const setText = (node, text) => node.replaceChildren(...richText(text));

const displayName = (member) => member.display_name || member.user_name || member._id;
const nameOf = (user) => state.names.get(user) ?? user;
const others = (room) => (room?.room_user_ids ?? []).filter((user) => user !== state.me);
const roomName = (room) => others(room).map(nameOf).join(", ") || "Just you";
const time = (iso) => (iso ? new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : "");
const orgPath = (rest) => `/api/v1/org/${state.org}${rest}`;
const roomPath = (rest = "", room = state.room?.id) => orgPath(`/rooms/${room}${rest}`);
const show = (view) => (document.body.dataset.view = view);

// ---------- signing in and choosing an org ----------

/// An invite link opens the client at `#invite={token}`. The token is kept for this tab until the
/// invite is answered (signing in first does not lose it) and taken out of the address bar at once.
function takeInvite() {
  const match = /^#invite=([A-Za-z0-9_-]+)$/.exec(location.hash);
  if (!match) return null;
  sessionStorage.setItem("dm.invite", match[1]);
  history.replaceState(null, "", location.pathname + location.search);
  return match[1];
}

/// A notification opens the client at `#room={org}/{room}`: that room is opened once signed in.
function takeRoomLink() {
  const match = /^#room=([A-Za-z0-9_-]+)\/([A-Za-z0-9_-]+)$/.exec(location.hash);
  if (!match) return null;
  const link = { org: match[1], room: match[2] };
  sessionStorage.setItem("dm.room", JSON.stringify(link));
  history.replaceState(null, "", location.pathname + location.search);
  return link;
}

/// Opens the room a link named, if the caller is in its org (and then forgets the link).
async function openLinkedRoom() {
  const link = JSON.parse(sessionStorage.getItem("dm.room") ?? "null");
  sessionStorage.removeItem("dm.room");
  if (!link || !state.orgs.some((org) => org.org_id === link.org)) return false;
  // The org's client may have been left (switching org, answering an invite): open it again.
  if (state.org !== link.org || !state.live || state.live.closed) await openOrg(link.org);
  // A room the caller has left since says so; they stay signed in.
  await openRoom(link.room).catch(failed);
  return true;
}

const pendingInvite = () => sessionStorage.getItem("dm.invite");
const forgetInvite = () => sessionStorage.removeItem("dm.invite");

// A link opened while the client is open in this tab.
window.addEventListener("hashchange", () => {
  const token = takeInvite();
  if (token && state.api) showJoin(token);
  if (takeRoomLink() && state.api) openLinkedRoom().catch(failed);
});

// A notification clicked while this client is open: the service worker hands over its link.
navigator.serviceWorker?.addEventListener("message", (event) => {
  if (typeof event.data?.open === "string") location.hash = new URL(event.data.open).hash;
});

function startSignIn() {
  takeRoomLink();
  if (takeInvite() || pendingInvite()) $("#signin-title").textContent = "Sign in to accept your invitation";
  const params = new URLSearchParams(location.search);
  $("#api-base").value = params.get("api") ?? saved.get("api", location.origin);
  $("#socket-url").value = params.get("ws") ?? "";
  const session = saved.get("session", null);
  show("signin");
  if (session && session.api === $("#api-base").value) {
    // A token that expired (or a stack that moved) asks to sign in again.
    signedIn(session.api, session.token, session.ws).catch((err) => {
      if (err instanceof ApiError && err.status === 401) return localStorage.removeItem("dm.session");
      // Signed in, but the org (or its live connection) did not open: they choose again.
      failed(err);
      if (state.orgs.length) showOrgs();
    });
  }
}

$("#signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const base = $("#api-base").value.trim();
  $("#signin-error").textContent = "";
  try {
    let token = $("#token").value.trim();
    if (!token) {
      const user = $("#user-id").value.trim();
      if (!user) throw new Error("Type a user id, or paste a token");
      token = await devToken(base, user);
    }
    const ws = $("#socket-url").value.trim() || null;
    saved.set("api", base);
    saved.set("session", { api: base, token, ws });
    await signedIn(base, token, ws);
  } catch (err) {
    $("#signin-error").textContent = err.message;
  }
});

async function signedIn(base, token, socketBase) {
  state.api = new Api(base, token);
  state.socketBase = socketBase;
  state.me = subjectOf(token);
  state.api.user = state.me;
  await loadOrgs();
  if (pendingInvite()) return showJoin(pendingInvite());
  if (await openLinkedRoom()) return;
  const last = saved.get(`org.${state.me}`, null);
  if (state.orgs.some((org) => org.org_id === last)) return openOrg(last);
  showOrgs();
}

/// The caller's orgs (an org picker shows a person's few; 100 is plenty).
async function loadOrgs() {
  state.orgs = (await state.api.get("/api/v1/orgs?limit=100")).results;
}

function showOrgs() {
  const list = $("#org-list");
  list.replaceChildren(
    ...state.orgs.map((org) =>
      el(
        "li",
        {},
        el("button", { type: "button", dataset: { org: org.org_id }, onclick: () => openOrg(org.org_id).catch(orgError) }, `${org.name} (${org.role})`),
      ),
    ),
  );
  if (!state.orgs.length) list.append(el("li", { class: "muted" }, "You belong to no organisation yet: create one, or ask an owner to add you"));
  show("orgs");
  (list.querySelector("button") ?? $("#org-id")).focus();
}

function orgError(err) {
  $("#orgs-error").textContent = err instanceof ApiError && err.status === 403 ? "You are not a member of that org" : err.message;
}

$("#open-org-form").addEventListener("submit", (event) => {
  event.preventDefault();
  openOrg($("#org-id").value.trim()).catch(orgError);
});

$("#create-org-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const created = await state.api.post("/api/v1/orgs", { name: $("#org-name").value.trim() });
    await loadOrgs();
    await openOrg(created.org_id);
  } catch (err) {
    orgError(err);
  }
});

for (const button of document.querySelectorAll('[data-action="sign-out"]')) {
  button.addEventListener("click", async () => {
    // The next person on this browser must not get this member's notifications.
    await forgetPush().catch(() => {});
    localStorage.removeItem("dm.session");
    location.reload();
  });
}

$("#switch-org").addEventListener("click", async () => {
  state.live?.stop();
  state.room = null;
  localStorage.removeItem(`dm.org.${state.me}`);
  await loadOrgs().catch(failed);
  showOrgs();
});

async function openOrg(org) {
  state.live?.stop();
  state.org = org;
  await loadMembers();
  saved.set(`org.${state.me}`, org);
  $("#switch-org").textContent = state.orgs.find((known) => known.org_id === org)?.name ?? org;
  $("#switch-org").title = `Org id ${org}: switch organisation`;
  $("#me").textContent = nameOf(state.me);
  state.live = new Live(state.api, org, state.socketBase);
  state.live.addEventListener("event", (event) => onEvent(event.detail));
  state.live.addEventListener("status", (event) => {
    $("#connection").classList.toggle("online", event.detail);
    $("#connection").setAttribute("aria-label", event.detail ? "connected" : "reconnecting");
  });
  state.live.addEventListener("reload", () => loadInbox().then(() => state.room && openRoom(state.room.id)));
  try {
    await state.live.start();
  } catch (err) {
    // Refused at connect (the token or the org): no reconnecting in the background.
    state.live.stop();
    throw err;
  }
  const [profile] = await Promise.all([state.api.get(orgPath(`/members/${encodeURIComponent(state.me)}/profile`)), loadInbox()]);
  $("#appear-offline").checked = profile.presence === "hidden";
  show("inbox");
}

/// Every member, for names, roles and the new-DM dialog (the member list pages by 100).
async function loadMembers() {
  const members = [];
  let path = orgPath("/members?limit=100");
  while (path) {
    const page = await state.api.get(path);
    members.push(...page.data.filter((member) => !member.deleted));
    path = page.next && state.api.pathOf(page.next);
  }
  state.members.clear();
  state.names.clear();
  for (const member of members) memberIs(member);
}

function memberIs(member) {
  state.members.set(member._id, member);
  state.names.set(member._id, displayName(member));
}

/// The org's rule for roles, as the API keeps it: a role is given and taken only by a role above
/// it, and owners by owners.
const governs = (role, other) => role === "owner" || (role === "admin" && other === "member");
const myRole = () => state.members.get(state.me)?.role ?? "member";
const manager = () => myRole() !== "member";

// ---------- joining through an invite ----------

/// What an invite link's failure means to the person holding it.
function inviteError(err) {
  if (!(err instanceof ApiError)) return String(err.message ?? err);
  if (err.status === 404) return "This invite link does not work: it was revoked, or it is mistyped. Ask for a new one.";
  if (err.status === 429) return "Too many tries: wait a minute, then open the link again.";
  return err.message; // 410: expired or used up, in the API's words
}

/// "Join {org} as {role}?", from the invite the link names.
async function showJoin(token) {
  state.live?.stop();
  state.invite = token;
  $("#join-title").textContent = "An invitation";
  $("#join-from").textContent = "";
  $("#join-error").textContent = "";
  $("#join-form").hidden = true;
  show("join");
  try {
    const invite = await state.api.get(`/api/v1/invites/${encodeURIComponent(token)}`);
    if (invite.member) {
      forgetInvite();
      toast(`You are in ${invite.org_name} already`);
      return openOrg(invite.org_id);
    }
    $("#join-title").textContent = `Join ${invite.org_name} as ${invite.role}?`;
    const expires = new Date(invite.expires_at).toLocaleDateString();
    $("#join-from").textContent = `${invite.invited_by_name} invited you. The link works until ${expires}.`;
    $("#join-form").hidden = false;
    $("#join-name").focus();
  } catch (err) {
    // A link that no longer works is forgotten; one that could not be read now is kept for a retry.
    if (err instanceof ApiError && [404, 410].includes(err.status)) forgetInvite();
    $("#join-error").textContent = inviteError(err);
  }
}

$("#join-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = $("#join-name").value.trim();
  try {
    const joined = await state.api.post(`/api/v1/invites/${encodeURIComponent(state.invite)}/accept`, name ? { display_name: name } : undefined);
    forgetInvite();
    await loadOrgs();
    await openOrg(joined.data.org_id);
    toast(`Welcome to ${joined.org_name}`);
  } catch (err) {
    $("#join-error").textContent = inviteError(err);
  }
});

$("#join-cancel").addEventListener("click", async () => {
  forgetInvite();
  await loadOrgs().catch(failed);
  showOrgs();
});

// ---------- the inbox ----------

/// The inbox's first page, or the page a `next` link names.
async function loadInbox(next) {
  const unread = $("#unread-only").checked ? "&unread=true" : "";
  const page = await state.api.get(next ? state.api.pathOf(next) : orgPath(`/users/${encodeURIComponent(state.me)}/rooms?limit=30${unread}`));
  if (!next) state.rooms.clear();
  for (const room of page.results) {
    state.rooms.set(room.room_id, room);
    for (const [user, presence] of Object.entries(room.presence ?? {})) state.presence.set(user, presence.status);
  }
  state.roomsNext = page.next;
  renderInbox();
}

$("#more-rooms").addEventListener("click", () => loadInbox(state.roomsNext).catch(failed));
$("#unread-only").addEventListener("change", () => loadInbox().catch(failed));

// Hidden presence shows everyone else "offline" (the API's profile setting).
$("#appear-offline").addEventListener("change", async (event) => {
  const presence = event.target.checked ? "hidden" : "visible";
  await state.api.call("PATCH", orgPath(`/members/${encodeURIComponent(state.me)}/profile`), { presence }).catch(failed);
});

function renderInbox() {
  const rooms = [...state.rooms.values()].sort((a, b) =>
    (b.last_activity_at ?? "").localeCompare(a.last_activity_at ?? ""),
  );
  $("#inbox").replaceChildren(
    ...rooms.map((room) => {
      const online = others(room).some((user) => state.presence.get(user) === "online");
      // A muted room shows no unread badge, only its mentions.
      const unread = room.room_id === state.room?.id || room.muted ? 0 : room.unread_count;
      const mentions = room.room_id === state.room?.id ? 0 : room.mention_count ?? 0;
      const preview = room.last_message
        ? `${room.last_message.sender_id === state.me ? "You: " : ""}${room.last_message.preview || "📎 attachment"}`
        : "No messages yet";
      return el(
        "li",
        {},
        el(
          "button",
          {
            type: "button",
            class: `room-item${unread ? " unread" : ""}${room.muted ? " muted" : ""}`,
            dataset: { room: room.room_id },
            "aria-current": room.room_id === state.room?.id ? "true" : "false",
            "aria-label": `${roomName(room)}${unread ? `, ${unread} unread` : ""}${mentions ? `, ${mentions} for you` : ""}${room.muted ? ", muted" : ""}${online ? ", online" : ""}`,
            onclick: () => openRoom(room.room_id).catch(failed),
          },
          el("span", { class: `dot${online ? " online" : ""}` }),
          el("span", { class: "name" }, roomName(room)),
          el("span", { class: "mention-badge", "aria-hidden": "true" }, mentions ? `@${mentions}` : ""),
          el("span", { class: "badge", "aria-hidden": "true" }, unread ? String(unread) : ""),
          el("span", { class: "preview" }, preview),
        ),
      );
    }),
  );
  if (!rooms.length) $("#inbox").append(el("li", { class: "muted empty" }, "No conversations yet: start one with New message"));
  $("#more-rooms").hidden = !state.roomsNext;
  const total = rooms.reduce((sum, room) => sum + (room.room_id === state.room?.id || room.muted ? 0 : room.unread_count), 0);
  document.title = total ? `(${total}) DM` : "DM";
}

/// The inbox again once the projector has caught up with a change the client cannot apply itself
/// (a deleted last message: which one is last now is the projector's to say).
function refreshInboxSoon() {
  clearTimeout(refreshInboxSoon.timer);
  refreshInboxSoon.timer = setTimeout(() => loadInbox().catch(failed), 1500);
}

/// A room the inbox does not list yet (a new DM, or one an event names first).
async function ensureRoom(roomId) {
  if (state.rooms.has(roomId)) return state.rooms.get(roomId);
  const info = await state.api.get(roomPath("/info", roomId));
  const room = {
    room_id: roomId,
    room_user_ids: info.room_user_ids,
    last_message: null,
    last_activity_at: info.created_at,
    unread_count: 0,
    mention_count: 0,
    muted: false,
    last_read_message_id: null,
  };
  state.rooms.set(roomId, room);
  // The inbox carries presence for the rooms it lists; a room found since asks for its members'.
  if (room.room_user_ids.length <= PRESENCE_ROOM_MEMBERS) {
    await Promise.all(
      others(room).map((user) =>
        state.api.get(orgPath(`/members/${encodeURIComponent(user)}/presence`)).then(
          (presence) => state.presence.set(user, presence.status),
          () => {},
        ),
      ),
    );
  }
  return room;
}

// ---------- a room ----------

async function openRoom(roomId, highlight) {
  const room = await ensureRoom(roomId);
  state.room = { id: roomId, next: null, markers: new Map(), typing: new Map() };
  closePanel();
  $("#room-title").textContent = roomName(room);
  for (const control of ["#message-input", "#file-input", "#send", "#show-pins"]) $(control).disabled = false;
  // The room's own menus wait for its settings: a change meanwhile would be the last room's.
  for (const control of ["#room-notify", "#room-mute"]) $(control).disabled = true;
  showRoomNotifications(roomId);
  renderPresence();
  $("#typing").textContent = "";
  $("#messages").replaceChildren();
  show("room");
  const [page, readState] = await Promise.all([
    state.api.get(roomPath(`/messages?limit=${PAGE}`)),
    state.api.get(roomPath("/read-state")),
  ]);
  for (const marker of readState.results) state.room.markers.set(marker.user_id, marker.last_read_message_id);
  state.room.next = page.next;
  for (const message of page.results.reverse()) $("#messages").append(messageItem(message));
  renderSeen();
  scrollToEnd();
  markRead();
  if (highlight) highlightMessage(highlight);
  $("#message-input").focus();
}

$("#back").addEventListener("click", () => {
  state.room = null;
  show("inbox");
  renderInbox();
});

function renderPresence() {
  const room = state.rooms.get(state.room?.id);
  const online = others(room).some((user) => state.presence.get(user) === "online");
  $("#room-presence").classList.toggle("online", online);
  $("#room-presence").setAttribute("aria-label", online ? "online" : "offline");
}

function scrollToEnd() {
  const list = $("#messages");
  list.scrollTop = list.scrollHeight;
}

function highlightMessage(id) {
  const item = document.querySelector(`#messages [data-id="${CSS.escape(id)}"]`);
  if (!item) return toast("That message is further back: scroll up for it");
  item.classList.add("highlight");
  item.scrollIntoView({ block: "center" });
}

// Older pages as the list is scrolled to its top.
$("#messages").addEventListener("scroll", async () => {
  const list = $("#messages");
  if (list.scrollTop > 40 || !state.room?.next || state.room.loading) return;
  state.room.loading = true;
  const room = state.room;
  try {
    const page = await state.api.get(state.api.pathOf(room.next));
    if (room !== state.room) return;
    const height = list.scrollHeight;
    list.prepend(...page.results.reverse().filter((m) => !findMessage(m.id)).map(messageItem));
    list.scrollTop += list.scrollHeight - height;
    room.next = page.next;
  } catch (err) {
    failed(err);
  } finally {
    room.loading = false;
  }
});

const findMessage = (id, list = "#messages") => document.querySelector(`${list} [data-id="${CSS.escape(id)}"]`);

/// A message (or a thread reply) as a list item, with its actions.
function messageItem(message, { reply = false } = {}) {
  const id = reply ? message.thread_id : message.id ?? message.message_id;
  const mine = message.sender_id === state.me;
  const forMe = (message.mentions ?? []).includes(state.me);
  const item = el("li", {
    class: `message${mine ? " mine" : ""}${forMe ? " mentions-me" : ""}`,
    dataset: { id, sender: message.sender_id, parent: reply ? message.message_id : undefined },
  });
  const text = el("div", { class: "text" }, ...richText(message.message));
  const edited = el("span", { class: "edited" }, message.edited ? "(edited)" : "");
  const pin = el("span", { class: "pin-mark", title: "Pinned" }, message.pinned ? "📌" : "");
  item.append(
    el("div", { class: "meta" }, el("strong", {}, nameOf(message.sender_id)), el("time", { datetime: message.created_at }, time(message.created_at)), edited, pin),
    text,
    mediaList(message.media ?? []),
    el("div", { class: "reactions", "aria-label": "Reactions" }),
  );
  for (const reaction of message.reactions ?? []) setReaction(item, reaction.data, reaction.count, null);
  if (!reply) {
    const actions = el("div", { class: "actions" });
    for (const emoji of QUICK_REACTIONS) {
      actions.append(el("button", { type: "button", "aria-label": `React ${emoji}`, onclick: () => toggleReaction(id, emoji) }, emoji));
    }
    const count = message.thread_count ?? 0;
    actions.append(
      el("button", { type: "button", class: "replies", dataset: { count }, onclick: () => openThread(id) }, repliesLabel(count)),
      el("button", { type: "button", class: "pin", onclick: () => togglePin(id) }, message.pinned ? "Unpin" : "Pin"),
    );
    if (mine) {
      actions.append(
        el("button", { type: "button", onclick: () => editMessage(id) }, "Edit"),
        el("button", { type: "button", onclick: () => deleteMessage(id) }, "Delete"),
      );
    }
    item.append(actions, el("div", { class: "seen" }));
  }
  return item;
}

const repliesLabel = (count) => (count ? `${count} ${count === 1 ? "reply" : "replies"}` : "Reply");

function mediaList(urls) {
  const box = el("div", { class: "media" });
  for (const url of urls) {
    const name = decodeURIComponent(url.split("/").pop() ?? "file");
    if (IMAGE.test(name)) {
      const image = el("img", { alt: name });
      box.append(image);
      presigned(url).then((src) => (image.src = src), failed);
    } else {
      box.append(el("button", { type: "button", class: "link", onclick: () => presigned(url).then((src) => window.open(src), failed) }, `📎 ${name}`));
    }
  }
  return box;
}

/// A file's short-lived S3 URL: the media route answers it as JSON so a page can show it.
async function presigned(mediaUrl) {
  const path = state.api.pathOf(mediaUrl);
  const answer = await state.api.get(`${path}${path.includes("?") ? "&" : "?"}redirect=false`);
  return answer.url;
}

/// Sets `emoji`'s count on a message; `mine` says whether the caller's own reaction is among them
/// (`null`: unknown, as in a page that only counts).
function setReaction(item, emoji, count, mine) {
  const box = item.querySelector(".reactions");
  let chip = [...box.children].find((child) => child.dataset.emoji === emoji);
  if (count <= 0) return chip?.remove();
  if (!chip) {
    chip = el("button", { type: "button", class: "reaction", dataset: { emoji }, onclick: () => toggleReaction(item.dataset.id, emoji) });
    box.append(chip);
  }
  chip.dataset.count = count;
  if (mine !== null) chip.setAttribute("aria-pressed", String(mine));
  chip.textContent = `${emoji} ${count}`;
  chip.setAttribute("aria-label", `${emoji} ${count}, ${chip.getAttribute("aria-pressed") === "true" ? "remove yours" : "add yours"}`);
}

async function toggleReaction(messageId, emoji) {
  const chip = findMessage(messageId)?.querySelector(`.reaction[data-emoji="${CSS.escape(emoji)}"]`);
  const path = roomPath(`/messages/${messageId}/reactions`);
  const remove = () => state.api.delete(`${path}/${encodeURIComponent(emoji)}`);
  try {
    if (chip?.getAttribute("aria-pressed") === "true") return await remove();
    // A page only counts reactions: a 200 (not 201) says this one was already mine, so take it back.
    const answer = await state.api.post(path, { sender_id: state.me, data: emoji });
    if (answer.status === 200) await remove();
  } catch (err) {
    failed(err);
  }
}

async function togglePin(messageId) {
  const pinned = findMessage(messageId)?.querySelector(".pin-mark").textContent !== "";
  await state.api.put(orgPath(`/messages/${messageId}/pin`), { pinned: !pinned }).catch(failed);
}

/// Edits in place: Enter (or Save) saves, Escape (or Cancel) leaves the text as it was.
function editMessage(messageId) {
  const item = findMessage(messageId);
  const text = item.querySelector(".text");
  if (item.querySelector(".edit-form")) return;
  const input = el("textarea", { rows: 2, "aria-label": "Edit message" });
  input.value = text.textContent;
  const form = el(
    "form",
    { class: "edit-form" },
    input,
    el("button", { type: "submit" }, "Save"),
    el("button", { type: "button", onclick: () => done() }, "Cancel"),
  );
  const done = () => {
    form.remove();
    text.hidden = false;
    item.querySelector(".actions button")?.focus();
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!input.value.trim()) return;
    try {
      const body = { sender_id: state.me, message: input.value, mentions: mentionedIn(input.value) };
      await state.api.put(roomPath(`/messages/${messageId}`), body);
      setText(text, input.value);
      item.querySelector(".edited").textContent = "(edited)";
      done();
    } catch (err) {
      failed(err);
    }
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.stopPropagation();
      done();
    } else if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  text.hidden = true;
  text.after(form);
  input.focus();
}

async function deleteMessage(messageId) {
  if (!confirm("Delete this message?")) return;
  await state.api.delete(roomPath(`/messages/${messageId}/message`)).catch(failed);
}

/// "Seen" under the newest of my messages each other member has read up to.
function renderSeen() {
  if (!state.room) return;
  for (const seen of document.querySelectorAll("#messages .seen")) seen.textContent = "";
  const mine = [...document.querySelectorAll("#messages > .message.mine")];
  const room = state.rooms.get(state.room.id);
  const readers = new Map();
  for (const user of others(room)) {
    const marker = state.room.markers.get(user);
    if (!marker) continue;
    const last = mine.filter((item) => item.dataset.id <= marker).pop();
    if (last) readers.set(last, [...(readers.get(last) ?? []), nameOf(user)]);
  }
  for (const [item, names] of readers) {
    item.querySelector(".seen").textContent = others(room).length === 1 ? "Seen" : `Seen by ${names.join(", ")}`;
  }
}

/// Moves my marker to the newest message while the room is open and the page visible.
function markRead() {
  clearTimeout(markRead.timer);
  markRead.timer = setTimeout(async () => {
    const room = state.rooms.get(state.room?.id);
    if (!room || document.hidden) return;
    room.unread_count = room.mention_count = 0;
    renderInbox();
    await state.api.put(roomPath("/read"), {}).catch(failed);
  }, 300);
}
document.addEventListener("visibilitychange", () => !document.hidden && state.room && markRead());

// ---------- writing ----------

$("#composer").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("#message-input");
  const text = input.value;
  const file = state.attachment;
  if (!text.trim() && !file) return;
  $("#send").disabled = true;
  try {
    const body = { sender_id: state.me, message: text, mentions: mentionedIn(text) };
    if (file) body.media = [await upload(file)];
    await state.api.call("POST", roomPath("/messages"), body);
    input.value = "";
    clearAttachment();
    sendTyping("stop");
  } catch (err) {
    failed(err);
  } finally {
    $("#send").disabled = false;
    input.focus();
  }
});

$("#message-input").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    $("#composer").requestSubmit();
  }
});

$("#message-input").addEventListener("input", () => {
  offerMentions();
  if (!$("#message-input").value) return sendTyping("stop");
  if (Date.now() - state.typingSentAt > TYPING_EVERY_MS) sendTyping("start");
});

// ---------- notifications: a room's, and the member's own settings ----------

/// How far ahead "until I unmute" mutes: as good as for ever.
const FOREVER = "9999-12-31T23:59:59Z";

async function showRoomNotifications(roomId) {
  try {
    const settings = await state.api.get(roomPath("/notifications", roomId));
    if (state.room?.id !== roomId) return;
    roomNotificationsShown(roomId, settings);
    for (const control of ["#room-notify", "#room-mute"]) $(control).disabled = false;
  } catch (err) {
    failed(err);
  }
}

/// The room's settings in its menus and the inbox; a mute for a while shows until when.
function roomNotificationsShown(roomId, settings) {
  state.room.notifications = settings;
  const room = state.rooms.get(roomId);
  if (room) room.muted = settings.muted;
  $("#room-notify").value = settings.level;
  const mute = $("#room-mute");
  mute.querySelector('[value="until"]')?.remove();
  if (!settings.muted) mute.value = "";
  else if (settings.muted_until === FOREVER) mute.value = "forever";
  else {
    mute.append(el("option", { value: "until" }, `Muted until ${new Date(settings.muted_until).toLocaleString()}`));
    mute.value = "until";
  }
  renderInbox();
}

async function saveRoomNotifications() {
  const roomId = state.room?.id;
  const mute = $("#room-mute").value;
  const muted_until =
    mute === "until" ? state.room.notifications?.muted_until
    : mute === "forever" ? FOREVER
    : mute ? new Date(Date.now() + Number(mute) * 3600_000).toISOString()
    : null;
  try {
    const settings = await state.api.put(roomPath("/notifications", roomId), { level: $("#room-notify").value, muted_until });
    if (state.room?.id === roomId) roomNotificationsShown(roomId, settings);
    toast(settings.muted ? "Muted: no badge but your mentions" : "Notifications saved");
  } catch (err) {
    failed(err);
  }
}

$("#room-notify").addEventListener("change", saveRoomNotifications);
$("#room-mute").addEventListener("change", saveRoomNotifications);

$("#open-settings").addEventListener("click", async () => {
  try {
    const profile = await state.api.get(orgPath(`/members/${encodeURIComponent(state.me)}/profile`));
    const notifications = profile.settings.notifications;
    $("#notify-about").value = notifications.notify_me_about;
    $("#keywords").value = notifications.my_keywords.join(", ");
    $("#quiet-start").value = notifications.notification_schedule?.start ?? "";
    $("#quiet-end").value = notifications.notification_schedule?.end ?? "";
    $("#notify-preview").checked = notifications.message_preview_in_each_notification;
    $("#notify-replies").checked = notifications.thread_replies_notification;
    $("#settings-error").textContent = "";
    $("#push-status").textContent = "Notification" in window && Notification.permission === "granted" ? "This browser may show notifications" : "";
    $("#settings-dialog").showModal();
  } catch (err) {
    failed(err);
  }
});

$("#settings-cancel").addEventListener("click", () => $("#settings-dialog").close());

/// A VAPID key (base64url) as `pushManager.subscribe` takes it.
const keyBytes = (base64url) => Uint8Array.from(atob(base64url.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));

/// Registers the service worker, asks the browser's permission and subscribes this browser to the
/// stack's Web Push: notifications then reach it while the member is away.
async function enablePush() {
  if (!("serviceWorker" in navigator) || !("PushManager" in window)) {
    throw new Error("This browser cannot receive notifications (it needs service workers and the Push API, on https or localhost)");
  }
  await navigator.serviceWorker.register("sw.js");
  const permission = await Notification.requestPermission();
  if (permission !== "granted") throw new Error("The browser refused: allow notifications for this site in its settings, then try again");
  const { public_key } = await state.api.get("/api/v1/push/vapid-public-key");
  // Subscribing needs the worker active, which registering does not wait for.
  const registration = await navigator.serviceWorker.ready;
  const subscription = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(public_key) });
  await state.api.post(pushPath(), subscription.toJSON());
}

const pushPath = (rest = "") => orgPath(`/users/${encodeURIComponent(state.me)}/push-subscriptions${rest}`);

/// Forgets this browser's subscription, here and at its push service (which then answers 410 for
/// it in the member's other orgs, where the notifier forgets it too).
async function forgetPush() {
  const registration = await navigator.serviceWorker?.getRegistration();
  const subscription = await registration?.pushManager.getSubscription();
  if (!subscription) return;
  if (state.org) {
    const kept = await state.api.get(pushPath());
    const mine = kept.results.find((kept) => kept.endpoint === subscription.endpoint);
    if (mine) await state.api.delete(pushPath(`/${mine.subscription_id}`));
  }
  await subscription.unsubscribe();
}

$("#enable-push").addEventListener("click", async () => {
  const status = $("#push-status");
  status.textContent = "Asking the browser...";
  try {
    await enablePush();
    status.textContent = "Notifications are on for this browser";
  } catch (err) {
    status.textContent = err.message || String(err);
  }
});
$("#settings-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const [start, end] = [$("#quiet-start").value, $("#quiet-end").value];
  const notifications = {
    notify_me_about: $("#notify-about").value,
    my_keywords: $("#keywords").value.split(",").map((word) => word.trim()).filter(Boolean),
    notification_schedule: start && end ? { start, end } : null,
    message_preview_in_each_notification: $("#notify-preview").checked,
    thread_replies_notification: $("#notify-replies").checked,
  };
  try {
    await state.api.call("PATCH", orgPath(`/members/${encodeURIComponent(state.me)}/profile`), { settings: { notifications } });
    $("#settings-dialog").close();
    toast("Notification settings saved");
    await loadInbox();
  } catch (err) {
    $("#settings-error").textContent = err.message;
  }
});

// ---------- mentions ----------

/// The room's other members whose `@name` (or `@id`) the text holds as a whole word, after a space
/// or at the start (so `@Anna` is not Ann, nor `x@ann.io` a mention): whom it mentions.
function mentionedIn(text) {
  const escape = (name) => name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const tagged = (name) => new RegExp(`(^|\\s)@${escape(name)}(?![\\p{L}\\p{N}_])`, "u").test(text);
  return others(state.rooms.get(state.room?.id)).filter((id) => tagged(nameOf(id)) || tagged(id));
}

/// The `@word` being typed just before the caret: where its `@` is, and what follows it.
function mentionAtCaret(input) {
  const before = input.value.slice(0, input.selectionStart);
  const match = /(?:^|\s)@([^\s@]*)$/.exec(before);
  return match ? { at: before.length - match[1].length - 1, query: match[1] } : null;
}

/// Typing `@` offers the room's other members whose name or id holds what follows it.
function offerMentions() {
  const typed = mentionAtCaret($("#message-input"));
  const query = fold(typed?.query ?? "");
  const members = others(state.rooms.get(state.room?.id)).filter((id) => fold(nameOf(id)).includes(query) || fold(id).includes(query));
  $("#mention-list").hidden = !typed || !members.length;
  $("#mention-list").replaceChildren(
    ...members.slice(0, 6).map((id) => el("li", {}, el("button", { type: "button", dataset: { member: id }, onclick: () => pickMention(id) }, nameOf(id)))),
  );
}

function pickMention(id) {
  const input = $("#message-input");
  const typed = mentionAtCaret(input);
  if (!typed) return;
  const tag = `@${nameOf(id)} `;
  input.value = input.value.slice(0, typed.at) + tag + input.value.slice(input.selectionStart);
  input.selectionStart = input.selectionEnd = typed.at + tag.length;
  $("#mention-list").hidden = true;
  input.focus();
}

function sendTyping(typing) {
  if (!state.room) return;
  state.typingSentAt = typing === "start" ? Date.now() : 0;
  state.live.send({ action: "typing", org_id: state.org, room_id: state.room.id, state: typing });
}

$("#file-input").addEventListener("change", () => {
  state.attachment = $("#file-input").files[0] ?? null;
  $("#attachment").textContent = state.attachment ? `📎 ${state.attachment.name}` : "";
});

function clearAttachment() {
  state.attachment = null;
  $("#file-input").value = "";
  $("#attachment").textContent = "";
}

/// Straight to S3 through a presigned PUT; the message then names the file's media URL.
async function upload(file) {
  const grant = await state.api.post(roomPath("/media/upload-url"), {
    filename: file.name,
    content_type: file.type || "application/octet-stream",
    size: file.size,
  });
  const response = await fetch(grant.upload_url, { method: "PUT", headers: grant.upload_headers, body: file });
  if (!response.ok) throw new Error(`The upload failed (${response.status})`);
  return grant.media_url;
}

// ---------- the side panel: a thread, the pins, search results ----------

function openPanel(kind, title, messageId) {
  state.panel = { kind, messageId };
  $("#panel-title").textContent = title;
  $("#panel-list").replaceChildren();
  $("#reply-form").hidden = kind !== "thread";
  $("#panel").hidden = false;
}

function closePanel() {
  state.panel = null;
  $("#panel").hidden = true;
}

$("#close-panel").addEventListener("click", () => {
  closePanel();
  $("#message-input").focus();
});
document.addEventListener("keydown", (event) => event.key === "Escape" && !$("#panel").hidden && closePanel());

async function openThread(messageId) {
  openPanel("thread", "Thread", messageId);
  const parent = findMessage(messageId);
  if (parent) $("#panel-list").append(el("li", { class: "muted" }, parent.querySelector(".text").textContent));
  try {
    const page = await state.api.get(roomPath(`/messages/${messageId}/threads?limit=100`));
    const replies = [...page.results].sort((a, b) => a.thread_id.localeCompare(b.thread_id));
    for (const reply of replies) addReply(reply);
  } catch (err) {
    failed(err);
  }
  $("#reply-input").focus();
}

function addReply(reply) {
  if (findMessage(reply.thread_id, "#panel-list")) return;
  $("#panel-list").append(messageItem(reply, { reply: true }));
}

$("#reply-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = $("#reply-input").value;
  if (!text.trim() || state.panel?.kind !== "thread") return;
  try {
    const body = { sender_id: state.me, message: text, mentions: mentionedIn(text) };
    await state.api.post(roomPath(`/messages/${state.panel.messageId}/threads`), body);
    $("#reply-input").value = "";
  } catch (err) {
    failed(err);
  }
});

$("#show-pins").addEventListener("click", async () => {
  openPanel("pins", "Pinned messages");
  try {
    const info = await state.api.get(roomPath("/info"));
    const pinned = await Promise.all(info.pinned.map((id) => state.api.get(roomPath(`/messages/${id}`)).catch(() => null)));
    const items = pinned.filter(Boolean).map((message) => hitItem(message, message.id));
    $("#panel-list").replaceChildren(...(items.length ? items : [el("li", { class: "muted" }, "Nothing pinned")]));
  } catch (err) {
    failed(err);
  }
});

$("#search-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const keyword = $("#search-input").value.trim();
  openPanel("search", `Search: ${keyword}`);
  try {
    const page = await state.api.get(orgPath(`/users/${encodeURIComponent(state.me)}/messages/search?${new URLSearchParams({ keyword, limit: "20" })}`));
    const items = page.results.map((hit) => hitItem(hit, hit.message_id));
    $("#panel-list").replaceChildren(...(items.length ? items : [el("li", { class: "muted" }, "No messages match")]));
  } catch (err) {
    failed(err);
  }
});

function hitItem(message, messageId) {
  const room = state.rooms.get(message.room_id);
  return el(
    "li",
    {},
    el(
      "button",
      { type: "button", class: "hit", onclick: () => openRoom(message.room_id, messageId).catch(failed) },
      el("div", { class: "muted" }, `${nameOf(message.sender_id)} in ${room ? roomName(room) : "a room"} · ${time(message.created_at)}`),
      el("div", {}, message.message),
    ),
  );
}

// ---------- a new DM ----------

$("#new-dm").addEventListener("click", async () => {
  // The org may have grown since it was opened.
  await loadMembers().catch(failed);
  $("#new-dm-member").value = "";
  suggestMembers();
  $("#new-dm-dialog").showModal();
});

const fold = (text) => text.normalize("NFKD").replace(/\p{M}/gu, "").toLowerCase();

/// The other members whose name or id holds what is typed (case and accents aside), those whose
/// name starts with it first.
function matchingMembers(typed) {
  const query = fold(typed.trim());
  const starts = ([, name]) => (fold(name).startsWith(query) ? 0 : 1);
  return [...state.names.entries()]
    .filter(([id, name]) => id !== state.me && (fold(name).includes(query) || fold(id).includes(query)))
    .sort((a, b) => starts(a) - starts(b) || a[1].localeCompare(b[1]));
}

/// Offers the members matching what is typed; a name that is no member's says so, and offers an
/// owner or admin to invite people.
function suggestMembers() {
  const typed = $("#new-dm-member").value.trim();
  const found = matchingMembers(typed);
  $("#member-list").replaceChildren(
    ...found.slice(0, 8).map(([id, name]) =>
      el("li", {}, el("button", { type: "button", dataset: { member: id }, onclick: () => startDm(id) }, name === id ? id : `${name} (${id})`)),
    ),
  );
  const alone = state.names.size <= 1;
  const missing = alone || (typed && !found.length);
  $("#new-dm-error").textContent = alone ? "Nobody else is in this organisation yet" : missing ? `“${typed}” is not in this organisation` : "";
  $("#new-dm-invite").hidden = !(missing && manager());
}

$("#new-dm-member").addEventListener("input", suggestMembers);
$("#new-dm-invite").addEventListener("click", () => {
  $("#new-dm-dialog").close();
  openTeam().catch(failed);
});
$("#new-dm-cancel").addEventListener("click", () => $("#new-dm-dialog").close());
$("#new-dm-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const typed = $("#new-dm-member").value.trim();
  const found = matchingMembers(typed);
  const exact = found.find(([id, name]) => id === typed || fold(name) === fold(typed));
  const chosen = exact ?? (found.length === 1 ? found[0] : null);
  if (chosen) return startDm(chosen[0]);
  $("#new-dm-error").textContent = found.length ? "Pick one of the members listed" : `“${typed}” is not in this organisation`;
});

async function startDm(member) {
  try {
    const created = await state.api.post(orgPath("/room"), { room_user_ids: [member] });
    $("#new-dm-dialog").close();
    await openRoom(created.room_id);
    renderInbox();
  } catch (err) {
    $("#new-dm-error").textContent = err.message;
  }
}

// ---------- the team: invites and members ----------

$("#open-team").addEventListener("click", () => openTeam().catch(failed));
$("#team-back").addEventListener("click", () => {
  show(state.room ? "room" : "inbox");
  renderInbox();
});

/// Members with their role and presence, and for owners and admins the invite form and live invites.
async function openTeam() {
  $("#invite-list").replaceChildren();
  await loadMembers();
  $("#team-error").textContent = "";
  $("#invite-made").hidden = true;
  show("team");
  renderTeam();
  await Promise.all([manager() ? loadInvites() : null, loadTeamPresence()]);
}

/// Whether each member (the first hundred) is online, as every other member sees it.
async function loadTeamPresence() {
  const others = [...state.members.keys()].filter((user) => user !== state.me).slice(0, 100);
  await Promise.all(
    others.map((user) =>
      state.api.get(orgPath(`/members/${encodeURIComponent(user)}/presence`)).then(
        (presence) => state.presence.set(user, presence.status),
        () => {},
      ),
    ),
  );
  renderTeam();
}

function renderTeam() {
  const role = myRole();
  $("#invite-section").hidden = !manager();
  // An invite's role is one the caller may give: only owners invite admins.
  const roles = ["member", "admin"].filter((other) => governs(role, other));
  if ($("#invite-role").options.length !== roles.length) {
    $("#invite-role").replaceChildren(...roles.map((other) => el("option", { value: other }, other === "admin" ? "Admin" : "Member")));
  }
  const members = [...state.members.values()].sort((a, b) => displayName(a).localeCompare(displayName(b)));
  $("#team-members").replaceChildren(
    ...members.map((member) => {
      const id = member._id;
      const online = id === state.me || state.presence.get(id) === "online";
      const row = el(
        "li",
        { class: "team-row", dataset: { member: id } },
        el("span", { class: `dot${online ? " online" : ""}`, role: "img", "aria-label": online ? "online" : "offline" }),
        el("span", { class: "name" }, `${displayName(member)}${id === state.me ? " (you)" : ""}`),
      );
      const acts = id !== state.me && governs(role, member.role);
      const roles = ["owner", "admin", "member"].filter((other) => governs(role, other));
      if (acts && roles.length > 1) {
        const select = el(
          "select",
          { class: "role", "aria-label": `Role of ${displayName(member)}`, onchange: (event) => changeRole(id, event.target.value) },
          ...roles.map((other) => el("option", { value: other, selected: other === member.role }, other)),
        );
        row.append(select);
      } else {
        row.append(el("span", { class: "role muted" }, member.role));
      }
      if (acts) row.append(el("button", { type: "button", class: "remove", onclick: () => removeMember(id) }, "Remove"));
      return row;
    }),
  );
}

async function changeRole(user, role) {
  try {
    memberIs(await state.api.put(orgPath(`/members/${encodeURIComponent(user)}/role`), { role }));
  } catch (err) {
    $("#team-error").textContent = err.message;
  }
  renderTeam();
}

async function removeMember(user) {
  if (!confirm(`Remove ${nameOf(user)} from the organisation? They leave every conversation in it.`)) return;
  try {
    await state.api.delete(orgPath(`/members/${encodeURIComponent(user)}`));
    state.members.delete(user);
  } catch (err) {
    $("#team-error").textContent = err.message;
  }
  renderTeam();
}

/// Every live invite (a page may hold fewer than asked: expired and used-up ones are left out).
async function loadInvites() {
  const invites = [];
  let path = orgPath("/invites?limit=100");
  while (path) {
    const page = await state.api.get(path);
    invites.push(...page.results);
    path = page.next && state.api.pathOf(page.next);
  }
  $("#invite-list").replaceChildren(...invites.map(inviteItem));
  if (!invites.length) $("#invite-list").append(el("li", { class: "muted" }, "No live invites"));
}

function inviteItem(invite) {
  const uses = invite.max_uses ? `${invite.uses} of ${invite.max_uses} uses` : `${invite.uses} ${invite.uses === 1 ? "use" : "uses"}`;
  const expires = new Date(invite.expires_at).toLocaleDateString();
  return el(
    "li",
    { class: "team-row", dataset: { invite: invite.invite_id } },
    el("span", { class: "name" }, `Join as ${invite.role}`),
    el("span", { class: "muted" }, `${uses} · until ${expires} · by ${nameOf(invite.invited_by)}`),
    el("button", { type: "button", class: "revoke", onclick: () => revokeInvite(invite.invite_id) }, "Revoke"),
  );
}

async function revokeInvite(id) {
  try {
    await state.api.delete(orgPath(`/invites/${encodeURIComponent(id)}`));
    await loadInvites();
    toast("Invite revoked: its link no longer works");
  } catch (err) {
    $("#team-error").textContent = err.message;
  }
}

$("#invite-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = { role: $("#invite-role").value, expires_in: Number($("#invite-expiry").value) };
  if ($("#invite-uses").value) body.max_uses = Number($("#invite-uses").value);
  try {
    const invite = await state.api.post(orgPath("/invites"), body);
    $("#invite-link").value = invite.url;
    $("#invite-made").hidden = false;
    $("#invite-link").select();
    await copyInvite();
    await loadInvites();
  } catch (err) {
    $("#team-error").textContent = err.message;
  }
});

$("#invite-copy").addEventListener("click", copyInvite);

/// Copies the link (the clipboard needs a secure page: https, or this machine); else it stays selected.
async function copyInvite() {
  try {
    await navigator.clipboard.writeText($("#invite-link").value);
    toast("Link copied: send it to whoever you invite");
  } catch {
    $("#invite-link").select();
    toast("Copy the selected link and send it to whoever you invite");
  }
}

// ---------- live events ----------

function onEvent(event) {
  const data = event.data ?? {};
  const here = state.room && event.room_id === state.room.id;
  switch (event.event) {
    case "message_create":
      return messageCreated(event, data, here);
    case "message_update": {
      const item = here && findMessage(data.message_id);
      if (item) {
        setText(item.querySelector(".text"), data.message);
        item.querySelector(".edited").textContent = "(edited)";
        item.classList.toggle("mentions-me", (data.mentions ?? []).includes(state.me));
      }
      const room = state.rooms.get(event.room_id);
      if (room?.last_message?.message_id === data.message_id) room.last_message.preview = data.message.slice(0, 200);
      return renderInbox();
    }
    case "message_delete":
      if (here) findMessage(data.message_id)?.remove();
      if (state.rooms.get(event.room_id)?.last_message?.message_id === data.message_id) refreshInboxSoon();
      return;
    case "thread_message_create": {
      const parent = here && findMessage(data.message_id);
      if (parent) {
        const button = parent.querySelector(".replies");
        button.dataset.count = Number(button.dataset.count) + 1;
        button.textContent = repliesLabel(Number(button.dataset.count));
      }
      if (state.panel?.kind === "thread" && state.panel.messageId === data.message_id) {
        addReply({ ...data, room_id: event.room_id });
      }
      return;
    }
    case "thread_message_update":
    case "thread_message_delete": {
      const item = findMessage(data.thread_id, "#panel-list");
      if (item && event.event === "thread_message_delete") item.remove();
      else if (item) setText(item.querySelector(".text"), data.message);
      return;
    }
    case "add_message_reaction":
    case "remove_message_reaction": {
      const item = here && findMessage(data.message_id);
      if (!item) return;
      const chip = item.querySelector(`.reaction[data-emoji="${CSS.escape(data.reaction)}"]`);
      const count = Number(chip?.dataset.count ?? 0) + (event.event === "add_message_reaction" ? 1 : -1);
      const mine = data.sender_id === state.me ? event.event === "add_message_reaction" : null;
      return setReaction(item, data.reaction, count, mine);
    }
    case "pin_message":
    case "unpin_message": {
      const item = here && findMessage(data.message_id);
      if (item) {
        item.querySelector(".pin-mark").textContent = event.event === "pin_message" ? "📌" : "";
        item.querySelector(".pin").textContent = event.event === "pin_message" ? "Unpin" : "Pin";
      }
      return;
    }
    case "room_created":
      return ensureRoom(event.room_id).then(renderInbox, failed);
    case "member_added":
    case "member_removed":
      return membersChanged(event, data);
    case "member_joined":
    case "member_updated":
      memberIs(data);
      return membersShown();
    case "member_left":
      return memberLeft(data.member_id);
    case "read_marker":
      return markerMoved(event, data, here);
    case "presence":
      state.presence.set(data.user_id, data.status);
      renderInbox();
      return renderPresence();
    case "typing":
      return typing(event, here);
    default:
      return;
  }
}

async function messageCreated(event, data, here) {
  const room = await ensureRoom(event.room_id).catch(() => null);
  if (!room) return;
  const mine = data.sender_id === state.me;
  room.last_message = { message_id: data.message_id, sender_id: data.sender_id, preview: data.message.slice(0, 200), created_at: data.created_at };
  room.last_activity_at = data.created_at;
  if (mine) room.unread_count = room.mention_count = 0;
  else if (!here) {
    room.unread_count += 1;
    if ((data.mentions ?? []).includes(state.me)) room.mention_count = (room.mention_count ?? 0) + 1;
  }
  if (here && !findMessage(data.message_id)) {
    const list = $("#messages");
    const atEnd = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    list.append(messageItem({ ...data, id: data.message_id }));
    stopTyping(data.sender_id);
    renderSeen();
    if (atEnd || mine) scrollToEnd();
    if (!mine) markRead();
  }
  renderInbox();
}

function membersChanged(event, data) {
  const room = state.rooms.get(event.room_id);
  if (data.member_id === state.me && event.event === "member_removed") {
    state.rooms.delete(event.room_id);
    if (state.room?.id === event.room_id) {
      state.room = null;
      show("inbox");
      toast("You were removed from that conversation");
    }
  } else if (room) {
    room.room_user_ids = data.room_user_ids;
    if (state.room?.id === event.room_id) $("#room-title").textContent = roomName(room);
  } else {
    ensureRoom(event.room_id).then(renderInbox, failed);
  }
  renderInbox();
}

/// Names and roles changed: what shows them follows.
function membersShown() {
  if (document.body.dataset.view === "team") renderTeam();
  renderInbox();
}

async function memberLeft(user) {
  state.members.delete(user);
  if (user !== state.me) return membersShown();
  state.live?.stop();
  localStorage.removeItem(`dm.org.${state.me}`);
  await loadOrgs().catch(failed);
  showOrgs();
  $("#orgs-error").textContent = "You are no longer a member of that organisation";
}

function markerMoved(event, data, here) {
  const room = state.rooms.get(event.room_id);
  if (data.user_id === state.me) {
    // Read on another device.
    if (room && data.message_id && room.last_message?.message_id <= data.message_id) room.unread_count = room.mention_count = 0;
    return renderInbox();
  }
  if (here) {
    state.room.markers.set(data.user_id, data.message_id);
    renderSeen();
  }
}

function typing(event, here) {
  if (!here || event.user_id === state.me) return;
  if (event.state === "stop") return stopTyping(event.user_id);
  clearTimeout(state.room.typing.get(event.user_id));
  state.room.typing.set(event.user_id, setTimeout(() => stopTyping(event.user_id), TYPING_SHOWN_MS));
  renderTyping();
}

function stopTyping(user) {
  if (!state.room) return;
  clearTimeout(state.room.typing.get(user));
  state.room.typing.delete(user);
  renderTyping();
}

function renderTyping() {
  const names = [...state.room.typing.keys()].map(nameOf);
  $("#typing").textContent = names.length ? `${names.join(", ")} ${names.length === 1 ? "is" : "are"} typing…` : "";
}

// The client's state, for the browser console (and the end-to-end test, which drops the socket).
window.dmClient = state;
startSignIn();
