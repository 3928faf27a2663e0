/**
 * roomapi.js: the browser SDK of the conference server (room protocol v1,
 * docs/protocol.md). A dependency-free ES module.
 *
 *   const connection = RoomApi.connect({urlServer, username})
 *     .on(SESSION_STATUS.ESTABLISHED, (connection, info) => ...)
 *   const room = connection.join({name, record})
 *     .on(ROOM_EVENT.STATE, (room) => ...)
 *   const camera = room.publish({display: videoElement, kind: "camera"})
 *     .on(STREAM_STATUS.PUBLISHING, (stream) => ...)
 *   participant.getStreams()[0].play(videoElement)
 *     .on(STREAM_STATUS.PLAYING, (stream) => ...)
 *
 * Every handler runs asynchronously, after the call that registered it has
 * returned, so chaining `.on()` after `connect()`, `join()`, `publish()` or
 * `play()` never misses an event.
 *
 * With an access token (`token`, see docs/protocol.md, Access tokens) the
 * login is the token's identity, `connection.grants()` says what the session
 * may do, and a moderator (grant `roomAdmin`) may `room.kick(name)`,
 * `room.lock(locked)`, `room.end()` and `remoteStream.mute({audio, video})`.
 * `connection.refresh(token)` hands the server a fresh token before the
 * current one expires.
 *
 * After a network blip the connection reconnects with backoff, resumes its
 * previous session (so its login is not "taken" by its own ghost), joins its
 * rooms again, republishes its local streams and replays the remote streams
 * it was playing into the same elements. Differences that arose meanwhile
 * arrive as ordinary JOINED / LEFT / PUBLISHED / UNPUBLISHED / MESSAGE events.
 */

export const SESSION_STATUS = Object.freeze({
  PENDING: "PENDING",
  ESTABLISHED: "ESTABLISHED",
  FAILED: "FAILED",
  DISCONNECTED: "DISCONNECTED",
});

export const ROOM_EVENT = Object.freeze({
  STATE: "STATE",
  JOINED: "JOINED",
  LEFT: "LEFT",
  PUBLISHED: "PUBLISHED",
  UNPUBLISHED: "UNPUBLISHED",
  MUTED: "MUTED",
  MESSAGE: "MESSAGE",
  FAILED: "FAILED",
  FINALIZED: "FINALIZED",
  /** A moderator locked or unlocked the room: (room, locked, by). */
  LOCKED: "LOCKED",
  /** A moderator removed this client from the room: (room, by). The room is left. */
  KICKED: "KICKED",
  /**
   * Who speaks changed: (room, speakers), loudest first, each
   * `{name, isOwn, participant, stream, streamId, level}` (`participant` and
   * `stream` null for this client's own streams or ones not known yet;
   * `level` 0..1). An empty list: nobody speaks.
   */
  SPEAKERS: "SPEAKERS",
  /**
   * The room's recording: (room, recording, by), `by` the participant who
   * started it. Emitted when the room state says the room records (on join,
   * before any media flows) and on `room.recording`.
   */
  RECORDING: "RECORDING",
});

export const STREAM_STATUS = Object.freeze({
  PENDING: "PENDING",
  PUBLISHING: "PUBLISHING",
  PLAYING: "PLAYING",
  UNPUBLISHED: "UNPUBLISHED",
  STOPPED: "STOPPED",
  FAILED: "FAILED",
});

export const STREAM_EVENT = Object.freeze({
  /** The browser refused unmuted autoplay: the element now plays muted until `stream.unmuteElement()`. */
  AUTOPLAY_BLOCKED: "AUTOPLAY_BLOCKED",
  /** A moderator muted or unmuted this local stream: (stream, {audio, video}, by). */
  MODERATED: "MODERATED",
  /**
   * The server stopped sending this played stream's video: (stream, reason).
   * `reason` "bandwidth": this client's link cannot carry the room's floor
   * bitrate. Audio goes on; the element keeps its last picture.
   */
  PAUSED: "PAUSED",
  /** The video of a paused played stream comes again: (stream, reason). */
  RESUMED: "RESUMED",
});

const PROTOCOL_VERSION = 1;
const CONNECT_TIMEOUT_MS = 10_000;
// The server may hold a request for up to 15 s (a join waiting for a room's
// finalization), and it answers requests in order: a ping must wait that long.
const KEEPALIVE_INTERVAL_MS = 10_000;
const KEEPALIVE_DEAD_AFTER_MS = 35_000;
const RECONNECT_FIRST_DELAY_MS = 500;
const RECONNECT_MAX_DELAY_MS = 10_000;
// Offers are complete (no trickle in v1); a gatherer stuck on an unreachable
// STUN/TURN server must not hold the offer forever.
const ICE_GATHERING_TIMEOUT_MS = 5_000;
// Once a relay candidate is in, the offer can reach the media node whatever
// else fails; a TURN URL the network blocks (UDP to the relay dropped) would
// hold the gatherer until the timeout above, for every publish and play.
// Measured in namespaces: both people saw each other after 12.9 s without
// this, the timeout twice over.
const RELAY_SETTLE_MS = 250;
// ICE and DTLS take well under a second on a LAN and about one through a
// relay; a connection not up by then will not come up: say so (FAILED,
// `ice_failed`) instead of staying PENDING. Option `mediaTimeoutMs`.
const MEDIA_CONNECT_TIMEOUT_MS = 8_000;
// Media node failures end the stream; the server says "publish again".
const REPUBLISH_ON_FAILURE = new Set(["node_failed", "node_stopped"]);
// Session ends after which reconnecting would be wrong: another tab holds the
// session or the identity now (they would take it from each other forever),
// or the token no longer admits this client.
const FINAL_SESSION_ENDS = new Set(["resumed", "replaced", "token_expired"]);

/** An error answered by the server (`code` is the protocol's error code). */
export class RoomApiError extends Error {
  constructor(code, message) {
    super(message || code);
    this.name = "RoomApiError";
    this.code = code;
  }
}

class Emitter {
  #handlers = new Map();

  /** Register `handler` for `event`; returns this, for chaining. */
  on(event, handler) {
    if (!this.#handlers.has(event)) this.#handlers.set(event, new Set());
    this.#handlers.get(event).add(handler);
    return this;
  }

  off(event, handler) {
    this.#handlers.get(event)?.delete(handler);
    return this;
  }

  /** @protected Deliver `event` after the current task, so chained `.on()` calls come first. */
  _emit(event, ...args) {
    queueMicrotask(() => {
      for (const handler of [...(this.#handlers.get(event) ?? [])]) {
        try {
          handler(...args);
        } catch (error) {
          console.error(`roomapi: a ${event} handler failed`, error);
        }
      }
    });
  }
}

/** Resolve once the offer holds every candidate (or the gatherer gave up). */
function iceGatheringComplete(pc, timeoutMs) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      clearTimeout(settle);
      pc.removeEventListener("icegatheringstatechange", onState);
      pc.removeEventListener("icecandidate", onCandidate);
      resolve();
    };
    const onState = () => {
      if (pc.iceGatheringState === "complete") done();
    };
    let settle = null;
    const onCandidate = (event) => {
      if (!event.candidate) done();
      else if (event.candidate.type === "relay" && settle === null) settle = setTimeout(done, RELAY_SETTLE_MS);
    };
    const timer = setTimeout(done, timeoutMs);
    pc.addEventListener("icegatheringstatechange", onState);
    pc.addEventListener("icecandidate", onCandidate);
  });
}

/**
 * Call `onFailed` if `pc` fails, or is not connected `timeoutMs` after the
 * answer was applied; nothing once it connected or was closed by us.
 */
function watchMediaConnection(pc, timeoutMs, onFailed) {
  const stop = () => {
    clearTimeout(timer);
    pc.removeEventListener("connectionstatechange", onState);
  };
  const onState = () => {
    if (pc.connectionState === "connected" || pc.connectionState === "closed") stop();
    else if (pc.connectionState === "failed") {
      stop();
      onFailed();
    }
  };
  const timer = setTimeout(() => {
    stop();
    if (pc.connectionState !== "connected" && pc.connectionState !== "closed") onFailed();
  }, timeoutMs);
  pc.addEventListener("connectionstatechange", onState);
  onState();
}

function isRoomCodec(codec, roomCodec) {
  const mime = codec.mimeType.toLowerCase();
  if (roomCodec === "H264") {
    // The server takes Constrained Baseline (42e0xx) with packetization-mode 1.
    const fmtp = (codec.sdpFmtpLine || "").toLowerCase();
    return mime === "video/h264" && fmtp.includes("packetization-mode=1") && fmtp.includes("profile-level-id=42e0");
  }
  return mime === `video/${roomCodec.toLowerCase()}`;
}

/**
 * Put the room's video codec first in the offer. The server answers with
 * that codec only; leading with it keeps browsers from spending their
 * first choice on one it will refuse.
 */
function preferRoomCodec(transceiver, roomCodec) {
  if (typeof transceiver.setCodecPreferences !== "function") return;
  const capabilities = globalThis.RTCRtpReceiver?.getCapabilities?.("video");
  if (!capabilities) return;
  const preferred = capabilities.codecs.filter((codec) => isRoomCodec(codec, roomCodec));
  if (preferred.length === 0) return;
  const others = capabilities.codecs.filter((codec) => !preferred.includes(codec));
  try {
    transceiver.setCodecPreferences([...preferred, ...others]);
  } catch (error) {
    console.warn("roomapi: codec preferences not applied", error);
  }
}

/** The <video> to render into: the element itself, or one inside a container. */
function videoElementFor(display) {
  if (!display) return null;
  let video = display;
  if (!(display instanceof HTMLVideoElement)) {
    video = display.querySelector("video");
    if (!video) {
      video = document.createElement("video");
      display.append(video);
    }
  }
  video.autoplay = true;
  video.playsInline = true;
  return video;
}

function captureFailure(error) {
  switch (error?.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "camera_denied";
    case "NotFoundError":
    case "OverconstrainedError":
      return "no_device";
    case "NotReadableError":
    case "AbortError":
      return "device_busy";
    default:
      return "capture_failed";
  }
}

/** A JWT's `exp` in ms since the epoch, or null if it cannot be read (the server checks it anyway). */
function tokenExpiry(token) {
  try {
    const part = String(token).split(".")[1].replaceAll("-", "+").replaceAll("_", "/");
    const claims = JSON.parse(atob(part.padEnd(Math.ceil(part.length / 4) * 4, "=")));
    return Number.isFinite(claims.exp) ? claims.exp * 1000 : null;
  } catch {
    return null;
  }
}

/** Reject with the server's error, or resolve: a moderation request's reply. */
function moderationDone(reply) {
  if (reply.type === "error") throw new RoomApiError(reply.code, reply.message);
}

/** A chat message, as delivered by ROOM_EVENT.MESSAGE and `room.history()`. */
function chatMessage(raw, ownName) {
  return Object.freeze({
    id: raw.id,
    from: Object.freeze({ name: () => raw.from }),
    to: raw.to,
    text: raw.text,
    ts: raw.ts,
    isPrivate: raw.to !== null && raw.to !== undefined,
    isOwn: raw.from === ownName,
  });
}

class Connection extends Emitter {
  #url;
  #username;
  #token;
  #identity = null;
  #grants = null;
  #expires = null;
  #reconnect;
  #mediaTimeoutMs;
  #socket = null;
  #status = SESSION_STATUS.PENDING;
  #reason = null;
  #session = null;
  #iceServers = [];
  #nextId = 1;
  #pending = new Map();
  #rooms = new Map();
  #publishes = new Map();
  #plays = new Map();
  #everEstablished = false;
  #finished = false;
  #attempt = 0;
  #retryTimer = null;
  #keepaliveTimer = null;
  #lastHeard = 0;
  #onOnline = () => this.#retryNow();

  constructor({ urlServer, username, token, reconnect = true, mediaTimeoutMs = MEDIA_CONNECT_TIMEOUT_MS }) {
    super();
    this.#url = urlServer;
    this.#username = String(username ?? "");
    this.#token = token;
    this.#reconnect = reconnect;
    this.#mediaTimeoutMs = mediaTimeoutMs;
    globalThis.addEventListener?.("online", this.#onOnline);
    this.#open();
  }

  status() {
    return this.#status;
  }

  /**
   * Why the session failed or ended: `invalid_username`, `unreachable`, `resumed`, `closed`,
   * `token_required`, `token_invalid`, `token_expired`, `replaced`, ...
   */
  reason() {
    return this.#reason;
  }

  /** The login as the server knows it: the token's identity, or the username trimmed. */
  username() {
    return this.#identity ?? this.#username.trim();
  }

  /** The session's grants (the token's `video` claim, camelCase), or null for a session without a token. */
  grants() {
    return this.#grants;
  }

  /** When the session's token expires (ms since the epoch), or null without a token. */
  expires() {
    return this.#expires;
  }

  /**
   * Hand the server a fresh token for the same identity before the current one
   * expires; the next reconnection uses it too. Rejects with a RoomApiError
   * (`forbidden` for another identity, `token_*` for a bad token).
   */
  async refresh(token) {
    const reply = await this._request("session.refresh", { token });
    if (reply.type === "error") throw new RoomApiError(reply.code, reply.message);
    this.#token = token;
    const expires = tokenExpiry(token);
    if (expires !== null) this.#expires = expires;
  }

  sessionId() {
    return this.#session;
  }

  iceServers() {
    return this.#iceServers;
  }

  /** How long a publish or play may take to connect its media before it is FAILED `ice_failed`. */
  mediaTimeoutMs() {
    return this.#mediaTimeoutMs;
  }

  rooms() {
    return [...this.#rooms.values()];
  }

  /** Join (or create) a room; it is joined as soon as the session is established. */
  join({ name, record = false }) {
    const existing = this.#rooms.get(name);
    if (existing) return existing;
    const room = new Room(this, { name, record });
    this.#rooms.set(name, room);
    if (this.#status === SESSION_STATUS.ESTABLISHED) room._enter();
    return room;
  }

  /** Close the session for good: no reconnection. */
  disconnect() {
    if (this.#finished) return;
    this.#finish(SESSION_STATUS.DISCONNECTED, "closed");
    this.#socket?.close(1000);
  }

  /** @internal Send a request; resolves with its reply, whatever its type. */
  _request(type, fields = {}) {
    return new Promise((resolve, reject) => {
      const socket = this.#socket;
      if (!socket || socket.readyState !== WebSocket.OPEN) {
        reject(new RoomApiError("not_connected", "not connected to the server"));
        return;
      }
      const id = `c${this.#nextId++}`;
      this.#pending.set(id, { resolve, reject });
      socket.send(JSON.stringify({ type, id, ...fields }));
    });
  }

  /** @internal */
  _registerPublish(id, stream) {
    this.#publishes.set(id, stream);
  }

  /** @internal */
  _unregisterPublish(id, stream) {
    if (this.#publishes.get(id) === stream) this.#publishes.delete(id);
  }

  /** @internal */
  _registerPlay(id, stream) {
    this.#plays.set(id, stream);
  }

  /** @internal */
  _unregisterPlay(id, stream) {
    if (this.#plays.get(id) === stream) this.#plays.delete(id);
  }

  /** @internal */
  _forgetRoom(room) {
    if (this.#rooms.get(room.name()) === room) this.#rooms.delete(room.name());
  }

  #open() {
    this.#retryTimer = null;
    let socket;
    try {
      socket = new WebSocket(this.#url);
    } catch (error) {
      console.error("roomapi: cannot open", this.#url, error);
      this.#finish(SESSION_STATUS.FAILED, "bad_url");
      return;
    }
    this.#socket = socket;
    // Covers the opening and the session.connect answer: a half-open path may stall either.
    const connectTimer = setTimeout(() => this.#abandon(socket), CONNECT_TIMEOUT_MS);
    socket.onopen = () => this.#handshake(connectTimer);
    socket.onmessage = (event) => this.#receive(event.data);
    socket.onclose = () => {
      clearTimeout(connectTimer);
      if (this.#socket === socket) this.#socketGone();
    };
  }

  /** Give up on a socket that hangs (no open, or no answer): a browser may take minutes to notice. */
  #abandon(socket) {
    if (!socket || this.#socket !== socket) return;
    socket.onopen = socket.onmessage = socket.onclose = null;
    try {
      socket.close();
    } catch {
      // Already closing.
    }
    this.#socketGone();
  }

  async #handshake(connectTimer) {
    // With a token the login is the token's identity: a username would be ignored.
    const fields = this.#token ? { token: this.#token } : { username: this.#username };
    if (this.#session) fields.resume = this.#session;
    let reply;
    try {
      reply = await this._request("session.connect", fields);
    } catch {
      return; // The socket went away; its close handler decides what next.
    } finally {
      clearTimeout(connectTimer);
    }
    if (reply.type === "session.status" && reply.status === SESSION_STATUS.ESTABLISHED) {
      if (reply.protocol !== PROTOCOL_VERSION) console.warn("roomapi: server protocol", reply.protocol);
      const reconnected = this.#everEstablished;
      this.#session = reply.session;
      this.#iceServers = reply.ice_servers ?? [];
      this.#identity = reply.identity ?? null;
      this.#grants = reply.grants ?? null;
      this.#expires = reply.expires ?? null;
      this.#everEstablished = true;
      this.#attempt = 0;
      this.#reason = null;
      this.#status = SESSION_STATUS.ESTABLISHED;
      this.#startKeepalive();
      // Rooms first: a room joined from the ESTABLISHED handler below must not be joined twice.
      for (const room of this.#rooms.values()) room._enter();
      this._emit(SESSION_STATUS.ESTABLISHED, this, { reconnected });
      return;
    }
    // A refused login (invalid_username) or token will be refused again: do not retry.
    this.#finish(SESSION_STATUS.FAILED, reply.reason ?? reply.code ?? "failed", reply.message);
    this.#socket?.close(1000);
  }

  #receive(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    if (!message || typeof message !== "object") return;
    this.#lastHeard = Date.now();
    if ("re" in message) {
      const pending = this.#pending.get(message.re);
      if (pending) {
        this.#pending.delete(message.re);
        pending.resolve(message);
      }
      return;
    }
    if (message.type === "session.status") {
      if (message.status === SESSION_STATUS.DISCONNECTED) this.#serverEndedSession(message.reason);
    } else if (message.type === "session.ice_servers") {
      // Fresh TURN credentials before the current ones expire: the next
      // publish or play (a new peer connection) uses them.
      this.#iceServers = message.ice_servers ?? this.#iceServers;
    } else if (message.type === "stream.status") {
      this.#routeStreamStatus(message);
    } else if (message.type === "stream.paused" || message.type === "stream.resumed") {
      this.#plays.get(message.stream)?._serverPause(message.type === "stream.paused", message.reason ?? "");
    } else if (typeof message.type === "string" && message.type.startsWith("room.")) {
      this.#rooms.get(message.room)?._event(message);
    }
    // Unknown types are ignored (protocol compatibility rules).
  }

  #serverEndedSession(reason) {
    if (FINAL_SESSION_ENDS.has(reason)) this.#finish(SESSION_STATUS.DISCONNECTED, reason);
    // Any other reason (`state_lost`, `slow_consumer`, ...): the socket closes
    // next, the connection comes back and its rooms are joined again.
  }

  #routeStreamStatus(message) {
    const publish = this.#publishes.get(message.stream);
    const play = this.#plays.get(message.stream);
    const status = message.status;
    if (publish && status !== STREAM_STATUS.PLAYING && status !== STREAM_STATUS.STOPPED) publish._serverStatus(message);
    if (play && status !== STREAM_STATUS.PUBLISHING && status !== STREAM_STATUS.UNPUBLISHED) play._serverStatus(message);
  }

  #socketGone() {
    this.#socket = null;
    this.#stopKeepalive();
    for (const { reject } of this.#pending.values()) reject(new RoomApiError("not_connected", "connection closed"));
    this.#pending.clear();
    if (this.#finished) return;
    for (const room of this.#rooms.values()) room._suspend();
    if (!this.#reconnect) {
      this.#finish(this.#everEstablished ? SESSION_STATUS.DISCONNECTED : SESSION_STATUS.FAILED, "unreachable");
      return;
    }
    const delay = this.#backoff();
    this.#status = this.#everEstablished ? SESSION_STATUS.DISCONNECTED : SESSION_STATUS.FAILED;
    this.#reason = "unreachable";
    this.#retryTimer = setTimeout(() => this.#open(), delay);
    this._emit(this.#status, this, { reason: "unreachable", retryInMs: delay, attempt: this.#attempt });
  }

  #backoff() {
    const ceiling = Math.min(RECONNECT_MAX_DELAY_MS, RECONNECT_FIRST_DELAY_MS * 2 ** this.#attempt);
    this.#attempt += 1;
    // Jitter spreads the reconnections of a whole room after a server restart.
    return Math.round(ceiling * (0.75 + Math.random() * 0.5));
  }

  #retryNow() {
    if (this.#retryTimer === null) return;
    clearTimeout(this.#retryTimer);
    this.#open();
  }

  #startKeepalive() {
    this.#stopKeepalive();
    this.#lastHeard = Date.now();
    this.#keepaliveTimer = setInterval(() => {
      if (Date.now() - this.#lastHeard > KEEPALIVE_DEAD_AFTER_MS) {
        this.#abandon(this.#socket);
        return;
      }
      this._request("ping").catch(() => {});
    }, KEEPALIVE_INTERVAL_MS);
  }

  #stopKeepalive() {
    clearInterval(this.#keepaliveTimer);
    this.#keepaliveTimer = null;
  }

  #finish(status, reason, message = undefined) {
    this.#finished = true;
    this.#status = status;
    this.#reason = reason;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.#stopKeepalive();
    globalThis.removeEventListener?.("online", this.#onOnline);
    for (const room of [...this.#rooms.values()]) room._end();
    this.#rooms.clear();
    this._emit(status, this, message ? { reason, message } : { reason });
  }
}

class Room extends Emitter {
  #connection;
  #name;
  #record;
  #videoCodec = "VP8";
  #recordsUrl = null;
  #recordedBy = null;
  #locked = false;
  #state = "JOINING";
  #everJoined = false;
  #participants = new Map();
  #history = [];
  #seenMessages = new Set();
  #locals = new Set();

  constructor(connection, { name, record }) {
    super();
    this.#connection = connection;
    this.#name = name;
    this.#record = Boolean(record);
  }

  name() {
    return this.#name;
  }

  /** Whether the room records (room multi-recording), as the server says. */
  record() {
    return this.#record;
  }

  /** Who started the room's recording while it records, else null. */
  recordedBy() {
    return this.#recordedBy;
  }

  /** A signed link to this room's records page (valid for days), or null before the room state arrived. */
  recordsUrl() {
    return this.#recordsUrl;
  }

  /** The room's video codec: "VP8" or "H264". */
  videoCodec() {
    return this.#videoCodec;
  }

  /** Whether a moderator locked the room (nobody else can join). */
  isLocked() {
    return this.#locked;
  }

  /** JOINING, JOINED, LEFT or FAILED. */
  state() {
    return this.#state;
  }

  connection() {
    return this.#connection;
  }

  /** The other participants (not this client). */
  getParticipants() {
    return [...this.#participants.values()];
  }

  getParticipant(name) {
    return this.#participants.get(name) ?? null;
  }

  /** Public chat messages from before the join, oldest first. */
  history() {
    return [...this.#history];
  }

  localStreams() {
    return [...this.#locals];
  }

  /**
   * Publish a camera (getUserMedia) or a screen (getDisplayMedia), or a
   * MediaStream given as `stream`. Returns the LocalStream at once.
   */
  publish({ display = null, constraints = null, record = false, kind = "camera", stream = null } = {}) {
    const local = new LocalStream(this, { display, constraints, record, kind, stream });
    this.#locals.add(local);
    local._start();
    return local;
  }

  /** A public chat message; resolves with its id, rejects with a RoomApiError. */
  sendMessage(text) {
    return this._sendMessage(text, null);
  }

  /** Moderator: remove `name` from the room (everyone gets LEFT with reason `kicked`). */
  async kick(name) {
    moderationDone(await this.#connection._request("room.kick", { room: this.#name, participant: name }));
  }

  /** Moderator: lock (`true`: nobody else can join) or unlock the room. */
  async lock(locked = true) {
    moderationDone(await this.#connection._request("room.lock", { room: this.#name, locked: Boolean(locked) }));
  }

  /** Moderator: end the meeting for everyone (FINALIZED with reason `ended`). */
  async end() {
    moderationDone(await this.#connection._request("room.end", { room: this.#name }));
  }

  /** Leave the room: streams end, the server answers once the leave is applied. */
  async leave() {
    if (this.#state === "LEFT" || this.#state === "FAILED") return;
    this.#state = "LEFT";
    this.#connection._forgetRoom(this);
    for (const local of this.#locals) local._release();
    let reply = null;
    try {
      // Sent even while the join is unanswered: the server handles the two in order.
      reply = await this.#connection._request("room.leave", { room: this.#name });
    } catch {
      // Not connected: the server drops the membership with the session.
    }
    this.#closeMedia();
    if (reply?.type === "error" && reply.code !== "not_in_room") throw new RoomApiError(reply.code, reply.message);
  }

  /** @internal */
  async _sendMessage(text, to) {
    const fields = { room: this.#name, text };
    if (to) fields.to = to;
    const reply = await this.#connection._request("room.message", fields);
    if (reply.type === "error") throw new RoomApiError(reply.code, reply.message);
    return reply.message;
  }

  /** @internal Join, or join again after a reconnection. */
  async _enter() {
    if (this.#state === "LEFT" || this.#state === "FAILED") return;
    const fields = { room: this.#name };
    if (this.#record) fields.record = true;
    let reply;
    try {
      reply = await this.#connection._request("room.join", fields);
    } catch {
      return; // The socket went away: the next session joins again.
    }
    if (this.#state === "LEFT") return;
    if (reply.type === "room.state") {
      if (this.#everJoined) this.#reconcile(reply);
      else this.#applyFirstState(reply);
    } else {
      this.#fail(reply.code ?? "failed", reply.message ?? "");
    }
  }

  /** @internal The socket dropped: media stops until the next session. */
  _suspend() {
    for (const participant of this.#participants.values()) {
      for (const stream of participant.getStreams()) stream._suspend();
    }
    for (const local of this.#locals) local._suspend();
  }

  /** @internal The session ended for good. */
  _end() {
    if (this.#state === "LEFT" || this.#state === "FAILED") return;
    this.#state = "LEFT";
    for (const local of this.#locals) local._release();
    this.#closeMedia();
  }

  /** @internal A room event (a server message without `re`). */
  _event(message) {
    if (this.#state !== "JOINED") return;
    switch (message.type) {
      case "room.joined":
        this.#onJoined(message.participant);
        break;
      case "room.left":
        if (message.participant.name !== this.#connection.username()) {
          this.#onLeft(message.participant.name, message.reason, message.by ?? null);
        } else if (message.reason === "kicked") {
          this.#onRemoved(message.by ?? null);
        }
        break;
      case "room.published":
        this.#onPublished(message.stream);
        break;
      case "room.unpublished":
        this.#onUnpublished(message.stream);
        break;
      case "room.muted":
        this.#onMuted(message.stream, message.by ?? null);
        break;
      case "room.locked":
        this.#locked = Boolean(message.locked);
        this._emit(ROOM_EVENT.LOCKED, this, this.#locked, message.by ?? null);
        break;
      case "room.message":
        this.#onMessage(message.message);
        break;
      case "room.speakers":
        this._emit(ROOM_EVENT.SPEAKERS, this, this.#speakers(message.speakers ?? []));
        break;
      case "room.recording":
        this.#recordedBy = message.recording ? String(message.by) : null;
        this._emit(ROOM_EVENT.RECORDING, this, Boolean(message.recording), String(message.by));
        break;
      case "room.finalized":
        this._end();
        this.#connection._forgetRoom(this);
        this._emit(ROOM_EVENT.FINALIZED, this, message.reason, message.by ?? null);
        break;
      default:
        break;
    }
  }

  /** @internal */
  _forgetLocal(local) {
    this.#locals.delete(local);
  }

  #speakers(raw) {
    const ownName = this.#connection.username();
    return Object.freeze(
      raw.map((speaker) => {
        const participant = speaker.participant === ownName ? null : this.getParticipant(speaker.participant);
        return Object.freeze({
          name: speaker.participant,
          isOwn: speaker.participant === ownName,
          participant,
          stream: participant?._stream(speaker.stream) ?? null,
          streamId: speaker.stream,
          level: Number(speaker.level),
        });
      }),
    );
  }

  #isOwn(rawStream) {
    return rawStream.participant === this.#connection.username();
  }

  #applyFirstState(state) {
    this.#everJoined = true;
    this.#state = "JOINED";
    this.#adoptRoomFacts(state);
    for (const entry of state.participants) this.#participants.set(entry.name, new Participant(this, entry));
    this.#history = (state.history ?? []).map((raw) => this.#remember(raw));
    this._emit(ROOM_EVENT.STATE, this);
  }

  /** After a reconnection: tell the differences as ordinary events, then restart media. */
  #reconcile(state) {
    this.#state = "JOINED";
    this.#adoptRoomFacts(state);
    const present = new Map(state.participants.map((entry) => [entry.name, entry]));
    for (const name of [...this.#participants.keys()]) {
      if (!present.has(name)) this.#onLeft(name, "disconnect");
    }
    for (const entry of state.participants) {
      const participant = this.#participants.get(entry.name);
      if (!participant) {
        this.#onJoined(entry);
        continue;
      }
      const live = new Set(entry.streams.map((raw) => raw.id));
      for (const stream of participant.getStreams()) {
        if (!live.has(stream.id())) this.#onUnpublished({ id: stream.id(), participant: entry.name });
      }
      for (const raw of entry.streams) {
        const known = participant._stream(raw.id);
        if (known) {
          known._update(raw);
          known._resume();
        } else {
          this._emit(ROOM_EVENT.PUBLISHED, participant, participant._add(raw));
        }
      }
    }
    for (const raw of state.history ?? []) this.#onMessage(raw);
    for (const local of this.#locals) local._resume();
  }

  #adoptRoomFacts(state) {
    this.#record = Boolean(state.record);
    if (state.video_codec) this.#videoCodec = String(state.video_codec).toUpperCase();
    if (state.records_url) this.#recordsUrl = String(state.records_url);
    this.#locked = Boolean(state.locked);
    const recordedBy = state.recorded_by ? String(state.recorded_by) : null;
    const recordingChanged = recordedBy !== this.#recordedBy;
    this.#recordedBy = recordedBy;
    if (recordingChanged) this._emit(ROOM_EVENT.RECORDING, this, recordedBy !== null, recordedBy);
  }

  #remember(raw) {
    this.#seenMessages.add(raw.id);
    return chatMessage(raw, this.#connection.username());
  }

  #onJoined(entry) {
    const known = this.#participants.get(entry.name);
    if (known) {
      // Already listed by room.state: apply as an update.
      for (const raw of entry.streams) if (!known._stream(raw.id)) known._add(raw);
      return;
    }
    const participant = new Participant(this, entry);
    this.#participants.set(entry.name, participant);
    this._emit(ROOM_EVENT.JOINED, participant);
  }

  #onLeft(name, reason, by = null) {
    const participant = this.#participants.get(name);
    if (!participant) return;
    for (const stream of participant.getStreams()) stream._ended(STREAM_STATUS.STOPPED);
    this.#participants.delete(name);
    this._emit(ROOM_EVENT.LEFT, participant, reason, by);
  }

  /** A moderator removed this client: the server no longer counts it in the room. */
  #onRemoved(by) {
    this._end();
    this.#connection._forgetRoom(this);
    this._emit(ROOM_EVENT.KICKED, this, by);
  }

  #onPublished(raw) {
    if (this.#isOwn(raw)) return;
    let participant = this.#participants.get(raw.participant);
    if (!participant) {
      participant = new Participant(this, { name: raw.participant, streams: [] });
      this.#participants.set(raw.participant, participant);
      this._emit(ROOM_EVENT.JOINED, participant);
    }
    const stream = participant._stream(raw.id) ?? participant._add(raw);
    stream._published();
    this._emit(ROOM_EVENT.PUBLISHED, participant, stream);
  }

  #onUnpublished(raw) {
    if (this.#isOwn(raw)) return;
    const participant = this.#participants.get(raw.participant);
    const stream = participant?._stream(raw.id);
    if (!stream) return;
    participant._remove(raw.id);
    stream._ended(STREAM_STATUS.STOPPED);
    this._emit(ROOM_EVENT.UNPUBLISHED, participant, stream);
  }

  #onMuted(raw, by) {
    if (this.#isOwn(raw)) {
      // Our own mutes come back as events too; only a moderator's change news.
      if (by === null || by === this.#connection.username()) return;
      for (const local of this.#locals) if (local.id() === raw.id) local._moderated(raw.muted, by);
      return;
    }
    const participant = this.#participants.get(raw.participant);
    if (!participant) return;
    const stream = participant._stream(raw.id) ?? participant._add(raw);
    stream._update(raw);
    this._emit(ROOM_EVENT.MUTED, participant, stream, by);
  }

  #onMessage(raw) {
    if (this.#seenMessages.has(raw.id)) return;
    this._emit(ROOM_EVENT.MESSAGE, this.#remember(raw));
  }

  #fail(code, message) {
    this.#state = "FAILED";
    this.#connection._forgetRoom(this);
    for (const local of this.#locals) local._release();
    this.#closeMedia();
    this._emit(ROOM_EVENT.FAILED, this, code, message);
  }

  #closeMedia() {
    for (const participant of this.#participants.values()) {
      for (const stream of participant.getStreams()) stream._ended(null);
    }
    for (const local of [...this.#locals]) local._closePeer();
  }
}

class Participant {
  #room;
  #name;
  #streams = new Map();

  constructor(room, { name, streams }) {
    this.#room = room;
    this.#name = name;
    for (const raw of streams ?? []) this._add(raw);
  }

  name() {
    return this.#name;
  }

  room() {
    return this.#room;
  }

  getStreams() {
    return [...this.#streams.values()];
  }

  /** A private chat message to this participant; resolves with its id. */
  sendMessage(text) {
    return this.#room._sendMessage(text, [this.#name]);
  }

  /** @internal */
  _stream(id) {
    return this.#streams.get(id) ?? null;
  }

  /** @internal A participant has one stream per kind: a new one replaces a stale one that never started. */
  _add(raw) {
    for (const [id, stream] of this.#streams) {
      if (stream.kind() === raw.kind && !stream._confirmed()) {
        this.#streams.delete(id);
        stream._ended(null);
      }
    }
    const stream = new RemoteStream(this, raw);
    this.#streams.set(raw.id, stream);
    return stream;
  }

  /** @internal */
  _remove(id) {
    this.#streams.delete(id);
  }
}

class RemoteStream extends Emitter {
  #participant;
  #raw;
  #status = STREAM_STATUS.PENDING;
  #info = null;
  #element = null;
  #wanted = false;
  #confirmed = false;
  #awaitingPublish = false;
  #ended = false;
  #pausedFor = null;
  /** The RTCPeerConnection of the current play, for getStats(); null when not playing. */
  peerConnection = null;

  constructor(participant, raw) {
    super();
    this.#participant = participant;
    this.#raw = raw;
  }

  id() {
    return this.#raw.id;
  }

  kind() {
    return this.#raw.kind;
  }

  participant() {
    return this.#participant;
  }

  hasAudio() {
    return this.#raw.audio !== false;
  }

  hasVideo() {
    return this.#raw.video !== false;
  }

  /** {audio, video}: what the publisher muted. */
  muted() {
    return { ...(this.#raw.muted ?? { audio: false, video: false }) };
  }

  status() {
    return this.#status;
  }

  /** Why the stream failed (`ice_failed`, `codec_not_supported`, ...). */
  info() {
    return this.#info;
  }

  /** Why the server paused this play's video (STREAM_EVENT.PAUSED), or null while it comes. */
  pausedReason() {
    return this.#pausedFor;
  }

  /** @internal stream.paused / stream.resumed of this play. */
  _serverPause(paused, reason) {
    if (paused === (this.#pausedFor !== null)) return;
    this.#pausedFor = paused ? reason : null;
    this._emit(paused ? STREAM_EVENT.PAUSED : STREAM_EVENT.RESUMED, this, reason);
  }

  element() {
    return this.#element;
  }

  /** Play into `display` (a <video>, or a container that gets one). Returns this. */
  play(display) {
    this.#element = videoElementFor(display);
    this.#wanted = true;
    if (!this.#ended) this.#start();
    return this;
  }

  /** Stop playing; the stream stays published. */
  async stop() {
    this.#wanted = false;
    const wasPlaying = this.peerConnection !== null;
    this.#closePeer();
    this.#detach();
    this.#setStatus(STREAM_STATUS.STOPPED);
    const connection = this.#connection();
    if (wasPlaying && connection.status() === SESSION_STATUS.ESTABLISHED) {
      try {
        await connection._request("stream.stop", { stream: this.id() });
      } catch {
        // The server ends plays with the session anyway.
      }
    }
  }

  /**
   * Moderator: mute or unmute this stream for everyone (`{audio: true}` mutes
   * its microphone); the server stops forwarding the muted kinds.
   */
  async mute({ audio, video } = {}) {
    const fields = { stream: this.id() };
    if (audio !== undefined) fields.audio = Boolean(audio);
    if (video !== undefined) fields.video = Boolean(video);
    moderationDone(await this.#connection()._request("stream.mute", fields));
  }

  /** Unmute the element after an AUTOPLAY_BLOCKED (call it from a user gesture). */
  unmuteElement() {
    if (!this.#element) return Promise.resolve();
    this.#element.muted = false;
    return this.#element.play();
  }

  #connection() {
    return this.#participant.room().connection();
  }

  async #start() {
    this.#closePeer();
    this.#awaitingPublish = false;
    const connection = this.#connection();
    this.#setStatus(STREAM_STATUS.PENDING);
    if (connection.status() !== SESSION_STATUS.ESTABLISHED) return; // Replayed after the rejoin.
    const pc = new RTCPeerConnection({ iceServers: connection.iceServers() });
    this.peerConnection = pc;
    const media = new MediaStream();
    pc.ontrack = (event) => {
      media.addTrack(event.track);
      if (this.#element && this.#element.srcObject !== media) {
        this.#element.srcObject = media;
        this.#startPlayback();
      }
    };
    if (this.hasAudio()) pc.addTransceiver("audio", { direction: "recvonly" });
    if (this.hasVideo()) {
      const video = pc.addTransceiver("video", { direction: "recvonly" });
      preferRoomCodec(video, this.#participant.room().videoCodec());
    }
    let reply;
    try {
      await pc.setLocalDescription(await pc.createOffer());
      await iceGatheringComplete(pc, ICE_GATHERING_TIMEOUT_MS);
      if (this.peerConnection !== pc) return;
      connection._registerPlay(this.id(), this);
      reply = await connection._request("stream.play", { stream: this.id(), sdp: pc.localDescription.sdp });
      if (this.peerConnection !== pc) return;
      if (reply.type === "stream.answer") {
        this.#confirmed = true;
        this._update(reply.stream);
        await pc.setRemoteDescription({ type: "answer", sdp: reply.sdp });
        watchMediaConnection(pc, connection.mediaTimeoutMs(), () => {
          if (this.peerConnection !== pc) return;
          this.#failed("ice_failed");
          connection._request("stream.stop", { stream: this.id() }).catch(() => {});
        });
        return;
      }
    } catch (error) {
      if (this.peerConnection !== pc) return;
      if (error instanceof RoomApiError && error.code === "not_connected") return; // Replayed after the rejoin.
      this.#failed(error.name === "RoomApiError" ? error.code : "negotiation_failed");
      return;
    }
    const info = reply.info ?? reply.code ?? "failed";
    if (info === "unknown_stream" && !this.#confirmed) {
      // Listed by room.state before its publish was answered: wait for room.published.
      this.#closePeer();
      this.#awaitingPublish = true;
      return;
    }
    this.#failed(info);
  }

  #startPlayback() {
    const element = this.#element;
    const attempt = element.play();
    attempt?.catch((error) => {
      if (error?.name !== "NotAllowedError" || element !== this.#element) return;
      // Unmuted autoplay needs a user gesture: play muted now, let the page offer unmute.
      element.muted = true;
      element.play().catch(() => {});
      this._emit(STREAM_EVENT.AUTOPLAY_BLOCKED, this, element);
    });
  }

  #failed(info) {
    this.#closePeer();
    this.#info = info;
    this.#setStatus(STREAM_STATUS.FAILED);
  }

  #setStatus(status) {
    if (this.#status === status && status !== STREAM_STATUS.FAILED) return;
    this.#status = status;
    this._emit(status, this);
  }

  #closePeer() {
    const pc = this.peerConnection;
    if (!pc) return;
    this.peerConnection = null;
    this.#connection()._unregisterPlay(this.id(), this);
    pc.ontrack = null;
    pc.close();
    // A pause belongs to that play: the next one starts with video.
    if (this.#pausedFor !== null) this._serverPause(false, this.#pausedFor);
  }

  #detach() {
    if (this.#element) this.#element.srcObject = null;
  }

  /** @internal */
  _confirmed() {
    return this.#confirmed;
  }

  /** @internal */
  _update(raw) {
    this.#raw = { ...this.#raw, ...raw };
  }

  /** @internal room.published: the stream is live on the media node now. */
  _published() {
    this.#confirmed = true;
    if (this.#awaitingPublish && this.#wanted && !this.#ended) this.#start();
  }

  /** @internal A stream.status event of this play. */
  _serverStatus(message) {
    if (message.status === STREAM_STATUS.PLAYING) {
      this.#confirmed = true;
      this.#setStatus(STREAM_STATUS.PLAYING);
    } else if (message.status === STREAM_STATUS.STOPPED) {
      this._ended(STREAM_STATUS.STOPPED);
    } else if (message.status === STREAM_STATUS.FAILED) {
      this.#failed(message.info ?? "failed");
    }
  }

  /** @internal The socket dropped. */
  _suspend() {
    if (!this.peerConnection && !this.#awaitingPublish) return;
    this.#closePeer();
    this.#setStatus(STREAM_STATUS.PENDING);
  }

  /** @internal Rejoined: play again what was playing. */
  _resume() {
    if (this.#wanted && !this.#ended) this.#start();
  }

  /** @internal The stream ended (unpublished, publisher left, or the room was left). */
  _ended(status) {
    if (this.#ended) return;
    this.#ended = true;
    this.#wanted = false;
    this.#closePeer();
    this.#detach();
    if (status) this.#setStatus(status);
  }
}

class LocalStream extends Emitter {
  #room;
  #kind;
  #record;
  #constraints;
  #element;
  #media;
  #ownsMedia;
  #id = null;
  #status = STREAM_STATUS.PENDING;
  #info = null;
  #error = null;
  #muted = { audio: false, video: false };
  #stopped = false;
  #released = false;
  /** The RTCPeerConnection of the publish, for getStats(); null when not publishing. */
  peerConnection = null;

  constructor(room, { display, constraints, record, kind, stream }) {
    super();
    this.#room = room;
    this.#kind = kind;
    this.#record = Boolean(record);
    this.#constraints = constraints;
    this.#element = videoElementFor(display);
    this.#media = stream;
    this.#ownsMedia = !stream;
  }

  /** The server's stream id (null until the publish is answered; it changes after a reconnection). */
  id() {
    return this.#id;
  }

  kind() {
    return this.#kind;
  }

  status() {
    return this.#status;
  }

  /** Why it failed: `camera_denied`, `no_device`, `device_busy`, `ice_failed`, `codec_not_supported`, ... */
  info() {
    return this.#info;
  }

  /** The DOMException of a failed capture, if that is why it failed. */
  error() {
    return this.#error;
  }

  mediaStream() {
    return this.#media;
  }

  isAudioMuted() {
    return this.#muted.audio;
  }

  isVideoMuted() {
    return this.#muted.video;
  }

  muteAudio() {
    return this.#mute("audio", true);
  }

  unmuteAudio() {
    return this.#mute("audio", false);
  }

  muteVideo() {
    return this.#mute("video", true);
  }

  unmuteVideo() {
    return this.#mute("video", false);
  }

  /** Unpublish and release the camera or screen. */
  async stop() {
    if (this.#stopped) return;
    this.#stopped = true;
    this._release();
    this.#room._forgetLocal(this);
    const id = this.#id;
    const connection = this.#room.connection();
    if (id && connection.status() === SESSION_STATUS.ESTABLISHED) {
      try {
        // Unpublish before closing: the quickest and clearest end for the players.
        await connection._request("stream.unpublish", { stream: id });
      } catch {
        // The session ended: the server ended the stream with it.
      }
    }
    this._closePeer();
    this.#setStatus(STREAM_STATUS.UNPUBLISHED);
  }

  async #mute(kind, muted) {
    this.#muted[kind] = muted;
    // A disabled track sends black frames or silence: nothing leaves the browser.
    for (const track of this.#media?.getTracks() ?? []) if (track.kind === kind) track.enabled = !muted;
    await this.#sendMuted({ [kind]: muted });
  }

  async #sendMuted(fields) {
    const connection = this.#room.connection();
    if (!this.#id || connection.status() !== SESSION_STATUS.ESTABLISHED) return; // Sent once answered.
    const reply = await connection._request("stream.mute", { stream: this.#id, ...fields });
    if (reply.type === "error") throw new RoomApiError(reply.code, reply.message);
  }

  /** @internal Capture, then publish. */
  async _start() {
    if (!this.#media) {
      try {
        this.#media = await this.#capture();
      } catch (error) {
        this.#error = error;
        this.#fail(this.#kind === "screen" && error?.name === "NotAllowedError" ? "share_cancelled" : captureFailure(error));
        return;
      }
      if (this.#stopped || this.#released) {
        for (const track of this.#media.getTracks()) track.stop();
        return;
      }
    }
    for (const track of this.#media.getTracks()) {
      // Ended from outside: the browser's "Stop sharing" bar, an unplugged camera.
      track.addEventListener("ended", () => this.stop(), { once: true });
    }
    if (this.#element) {
      this.#element.muted = true; // Never echo one's own microphone.
      this.#element.srcObject = this.#media;
      this.#element.play?.()?.catch(() => {});
    }
    await this.#publish();
  }

  #capture() {
    const devices = navigator.mediaDevices;
    if (!devices) {
      throw new DOMException("media capture needs a secure context (https or localhost)", "SecurityError");
    }
    if (this.#kind === "screen") return devices.getDisplayMedia(this.#constraints ?? { video: true, audio: false });
    return devices.getUserMedia(this.#constraints ?? { audio: true, video: true });
  }

  async #publish() {
    const connection = this.#room.connection();
    if (this.#stopped || this.#released || connection.status() !== SESSION_STATUS.ESTABLISHED) return;
    this._closePeer();
    this.#setStatus(STREAM_STATUS.PENDING);
    const pc = new RTCPeerConnection({ iceServers: connection.iceServers() });
    this.peerConnection = pc;
    for (const track of this.#media.getTracks()) {
      const transceiver = pc.addTransceiver(track, { direction: "sendonly", streams: [this.#media] });
      if (track.kind === "video") preferRoomCodec(transceiver, this.#room.videoCodec());
    }
    let reply;
    try {
      await pc.setLocalDescription(await pc.createOffer());
      await iceGatheringComplete(pc, ICE_GATHERING_TIMEOUT_MS);
      if (this.peerConnection !== pc) return;
      const fields = { room: this.#room.name(), kind: this.#kind, sdp: pc.localDescription.sdp };
      if (this.#record) fields.record = true;
      reply = await connection._request("stream.publish", fields);
      if (this.peerConnection !== pc) {
        if (reply.type === "stream.answer") connection._request("stream.unpublish", { stream: reply.stream.id }).catch(() => {});
        return;
      }
      if (reply.type === "stream.answer") {
        const id = reply.stream.id;
        this.#id = id;
        connection._registerPublish(id, this);
        await pc.setRemoteDescription({ type: "answer", sdp: reply.sdp });
        watchMediaConnection(pc, connection.mediaTimeoutMs(), () => {
          if (this.peerConnection !== pc) return;
          this.#fail("ice_failed");
          connection._request("stream.unpublish", { stream: id }).catch(() => {});
        });
        if (this.#muted.audio || this.#muted.video) await this.#sendMuted({ ...this.#muted });
        return;
      }
    } catch (error) {
      if (this.peerConnection !== pc) return;
      if (error instanceof RoomApiError && error.code === "not_connected") return; // Republished after the rejoin.
      this.#fail(error.name === "RoomApiError" ? error.code : "negotiation_failed");
      return;
    }
    this.#fail(reply.info ?? reply.code ?? "failed");
  }

  #fail(info) {
    this._closePeer();
    this.#info = info;
    this.#setStatus(STREAM_STATUS.FAILED);
  }

  #setStatus(status) {
    if (this.#status === status && status !== STREAM_STATUS.FAILED) return;
    this.#status = status;
    this._emit(status, this);
  }

  /** @internal A moderator changed what this stream sends to others: follow it, so the page shows it. */
  _moderated(muted, by) {
    for (const kind of ["audio", "video"]) {
      if (typeof muted?.[kind] !== "boolean") continue;
      this.#muted[kind] = muted[kind];
      for (const track of this.#media?.getTracks() ?? []) if (track.kind === kind) track.enabled = !muted[kind];
    }
    this._emit(STREAM_EVENT.MODERATED, this, { ...this.#muted }, by);
  }

  /** @internal A stream.status event of this publish. */
  _serverStatus(message) {
    if (message.status === STREAM_STATUS.PUBLISHING) {
      this.#setStatus(STREAM_STATUS.PUBLISHING);
    } else if (message.status === STREAM_STATUS.FAILED) {
      const info = message.info ?? "failed";
      this.#fail(info);
      if (REPUBLISH_ON_FAILURE.has(info)) this.#publish();
    }
  }

  /** @internal The socket dropped: the server ends this stream with the session. */
  _suspend() {
    if (this.#stopped || this.#released) return;
    this._closePeer();
    if (this.#media) this.#setStatus(STREAM_STATUS.PENDING);
  }

  /** @internal Rejoined: publish again (a new stream id). */
  _resume() {
    if (this.#media && !this.#stopped && !this.#released && this.#status !== STREAM_STATUS.FAILED) this.#publish();
  }

  /** @internal The room is being left: free the devices now, the peer connection after the leave. */
  _release() {
    if (this.#released) return;
    this.#released = true;
    if (this.#ownsMedia) for (const track of this.#media?.getTracks() ?? []) track.stop();
    if (this.#element && this.#element.srcObject === this.#media) this.#element.srcObject = null;
    if (this.#status !== STREAM_STATUS.FAILED) this.#setStatus(STREAM_STATUS.UNPUBLISHED);
  }

  /** @internal */
  _closePeer() {
    const pc = this.peerConnection;
    if (!pc) return;
    this.peerConnection = null;
    if (this.#id) this.#room.connection()._unregisterPublish(this.#id, this);
    this.#id = null;
    pc.close();
  }
}

export const RoomApi = Object.freeze({
  SESSION_STATUS,
  ROOM_EVENT,
  STREAM_STATUS,
  STREAM_EVENT,
  /**
   * Open a session: `urlServer` is the ws(s):// URL of /ws/rooms/.
   * Options: `username` (the login), or `token` (an access token: its
   * identity is the login, its grants what the session may do; required by
   * a server with ROOM_AUTH=token), `reconnect` (default true), `mediaTimeoutMs`
   * (default 8000: a publish or play whose media has not connected by then
   * is FAILED with info `ice_failed`).
   */
  connect(options) {
    return new Connection(options);
  },
});

export default RoomApi;
