/**
 * The room pages (/conference/, /chat/, /screen/): one controller, three
 * layouts. `window.conference` exposes the live state (connection, room,
 * local streams, remote streams with their RTCPeerConnection) for tests
 * and diagnostics.
 */

import { ROOM_EVENT, RoomApi, SESSION_STATUS, STREAM_EVENT, STREAM_STATUS } from "../roomapi.js";
import { PageAccess } from "./access.js";
import { ChatLog } from "./chat-log.js";
import { inviteFromUrl, roomNameFromUrl, showInvite } from "./invite.js";
import {
  chatFailureText,
  finalizedText,
  kickedText,
  playFailureText,
  roomFailureText,
  sessionEndText,
  streamFailureText,
  unreachableText,
} from "./messages.js";
import { ModeratorMenu } from "./moderation.js";
import { setBadge, VideoTiles } from "./video-tiles.js";

const CAMERA_CONSTRAINTS = { audio: true, video: { width: { ideal: 640 }, height: { ideal: 480 } } };
const SCREEN_CONSTRAINTS = { video: true, audio: false };
const LOGIN_STORAGE_KEY = "conference.login";
const ACTIVE = new Set([STREAM_STATUS.PENDING, STREAM_STATUS.PUBLISHING]);
// A fresh token is fetched this long before the current one expires (or a
// quarter of its life, for short-lived ones); a failed fetch is retried.
const TOKEN_REFRESH_LEAD_MS = 60_000;
const TOKEN_REFRESH_RETRY_MS = 10_000;
// The records link is exchanged with a token that has at least this long
// left; a token closer to its expiry is renewed first.
const RECORDS_TOKEN_MARGIN_MS = 15_000;

function serverUrl() {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${window.location.host}/ws/rooms/`;
}

function byId(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`the page has no #${id}`);
  return element;
}

function pageElements(screenShare) {
  return {
    main: byId("room-page"),
    invited: byId("invited"),
    joinForm: byId("join-form"),
    login: byId("login"),
    record: byId("record"),
    join: byId("join"),
    status: byId("status"),
    error: byId("error"),
    tiles: byId("tiles"),
    localTile: byId("local-tile"),
    localVideo: byId("local-video"),
    localStatus: byId("local-status"),
    muteAudio: byId("mute-audio"),
    muteVideo: byId("mute-video"),
    stop: byId("stop"),
    share: screenShare ? byId("share") : null,
    localScreenTile: screenShare ? byId("local-screen-tile") : null,
    localScreen: screenShare ? byId("local-screen") : null,
    chatForm: byId("chat-form"),
    chatTo: byId("chat-to"),
    chatInput: byId("chat-input"),
    chatSend: byId("chat-send"),
    chatLog: byId("chat-log"),
    invite: byId("invite"),
    inviteCopy: byId("invite-copy"),
    recording: byId("recording-indicator"),
    moderation: {
      section: byId("moderation"),
      lock: byId("lock-room"),
      end: byId("end-room"),
      invite: byId("guest-invite-copy"),
      inviteLine: byId("guest-invite-line"),
      inviteLink: byId("guest-invite"),
      lockedNote: byId("room-locked"),
    },
  };
}

function rememberedLogin() {
  try {
    return window.localStorage.getItem(LOGIN_STORAGE_KEY) ?? "";
  } catch {
    return "";
  }
}

function rememberLogin(login) {
  try {
    window.localStorage.setItem(LOGIN_STORAGE_KEY, login);
  } catch {
    // Storage may be off (private windows); the login is only a convenience.
  }
}

class RoomPage {
  /** The page's live state, published as `window.conference`. */
  state;
  #ui;
  #chat;
  #tiles;
  #roomName;
  #access;
  #moderation;
  // The session's current access token (null without one), its expiry (ms) and its refresh.
  #token = null;
  #tokenExpires = null;
  #refreshTimer = null;
  // The records link the page is showing (or opening).
  #recordsUrl = null;

  constructor({ layout, screenShare }) {
    this.#ui = pageElements(screenShare);
    this.#roomName = roomNameFromUrl();
    this.#access = new PageAccess(this.#ui.main, inviteFromUrl());
    this.#chat = new ChatLog(this.#ui.chatLog);
    this.#tiles = new VideoTiles(this.#ui.tiles, {
      layout,
      onStreamFailed: (stream) => {
        const text = playFailureText(stream.info());
        if (text) this.#showError(text);
      },
    });
    this.state = {
      roomName: this.#roomName,
      connection: null,
      room: null,
      camera: null,
      screen: null,
      /** Every remote stream currently known, each with its `peerConnection` while played. */
      remoteStreams: () => this.#remoteStreams(),
      /** The remote stream of `login` of this kind ("camera" or "screen"), or null. */
      remoteStream: (login, kind = "camera") =>
        this.#remoteStreams().find((stream) => stream.participant().name() === login && stream.kind() === kind) ??
        null,
    };
    this.#moderation = new ModeratorMenu(this.#ui.moderation, {
      tiles: this.#tiles,
      access: this.#access,
      onError: (text) => this.#showError(text),
    });
    showInvite(this.#ui.invite, this.#ui.inviteCopy, this.#roomName);
    if (this.#loggedInWithToken()) {
      // A logged-in user joins as themselves.
      this.#ui.login.value = this.#access.user();
    } else if (!this.#ui.login.value) {
      this.#ui.login.value = rememberedLogin();
    }
    this.#ui.invited.hidden = !(this.#access.invite() && !this.#access.user());
    this.#wire();
    this.#showLeft();
  }

  #wire() {
    const ui = this.#ui;
    ui.joinForm.addEventListener("submit", (event) => {
      event.preventDefault();
      if (this.state.connection) this.#leave();
      else this.#join();
    });
    ui.chatForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.#sendChat();
    });
    ui.muteAudio.addEventListener("click", () => this.#toggleMute("audio"));
    ui.muteVideo.addEventListener("click", () => this.#toggleMute("video"));
    ui.stop.addEventListener("click", () => {
      if (this.state.camera && ACTIVE.has(this.state.camera.status())) this.state.camera.stop();
      else this.#publishCamera();
    });
    ui.share?.addEventListener("click", () => this.#toggleShare());
    // A leave sent while the page goes away finalizes an emptied room at
    // once, instead of after the idle timeout of a drop.
    window.addEventListener("pagehide", () => this.state.room?.leave().catch(() => {}));
  }

  /** Whether joining uses the logged-in user's own token (the login is theirs, not typed). */
  #loggedInWithToken() {
    return this.#access.user() !== null && this.#access.joinsWithToken();
  }

  async #join() {
    const ui = this.#ui;
    const login = this.#loggedInWithToken() ? this.#access.user() : ui.login.value.trim();
    if (!login) {
      this.#showError("Enter a login to join.");
      ui.login.focus();
      return;
    }
    if (!this.#loggedInWithToken()) rememberLogin(login);
    this.#clearError();
    ui.join.textContent = "Leave";
    ui.login.disabled = true;
    ui.record.disabled = true;
    setBadge(ui.status, SESSION_STATUS.PENDING);
    let granted = null;
    if (this.#access.joinsWithToken()) {
      ui.join.disabled = true; // until the token is here: one join at a time
      try {
        granted = await this.#access.token({ room: this.#roomName, login });
      } catch (error) {
        this.#showError(error.message);
        setBadge(ui.status, SESSION_STATUS.FAILED);
        this.#showLeft();
        return;
      }
      ui.join.disabled = false;
      // A join asking to record without the grant would be refused.
      if (!granted.grants?.roomRecord) ui.record.checked = false;
    }
    this.#token = granted?.token ?? null;
    this.#tokenExpires = granted?.expires ?? null;
    const connection = RoomApi.connect({ urlServer: serverUrl(), username: login, token: this.#token });
    this.state.connection = connection;
    if (granted) this.#refreshBeforeExpiry(connection, granted.expires);
    connection
      .on(SESSION_STATUS.ESTABLISHED, (session, info) => this.#onEstablished(session, info))
      .on(SESSION_STATUS.FAILED, (session, info) => this.#onSessionDown(session, info))
      .on(SESSION_STATUS.DISCONNECTED, (session, info) => this.#onSessionDown(session, info));
  }

  #onEstablished(connection, { reconnected }) {
    if (connection !== this.state.connection) return;
    setBadge(this.#ui.status, connection.status());
    this.#clearError();
    this.#ui.invited.hidden = true;
    // After a reconnection the SDK joins again by itself.
    if (reconnected) this.#chat.system("reconnected");
    else this.#joinRoom(connection);
  }

  /** Fetch a fresh token before `expires` and hand it to the session, again and again. */
  #refreshBeforeExpiry(connection, expires) {
    clearTimeout(this.#refreshTimer);
    const lifetime = expires - Date.now();
    const delay = Math.max(1000, lifetime - Math.min(TOKEN_REFRESH_LEAD_MS, lifetime / 4));
    const attempt = async () => {
      if (connection !== this.state.connection) return;
      try {
        const fresh = await this.#access.token({ room: this.#roomName, login: connection.username() });
        await connection.refresh(fresh.token);
        this.#token = fresh.token;
        this.#tokenExpires = fresh.expires;
        this.#refreshBeforeExpiry(connection, fresh.expires);
      } catch (error) {
        console.warn("roomapi page: token refresh failed", error);
        // Otherwise the session ends at expiry, and the page says so.
        if (expires - Date.now() > 2 * TOKEN_REFRESH_RETRY_MS) {
          this.#refreshTimer = setTimeout(attempt, TOKEN_REFRESH_RETRY_MS);
        }
      }
    };
    this.#refreshTimer = setTimeout(attempt, delay);
  }

  #onSessionDown(connection, info) {
    if (connection !== this.state.connection) return;
    setBadge(this.#ui.status, connection.status());
    if (info.retryInMs !== undefined) {
      this.#showError(unreachableText(info.retryInMs, connection.sessionId() !== null));
      return;
    }
    this.#showError(sessionEndText(info.reason));
    this.#showLeft();
  }

  #joinRoom(connection) {
    const room = connection.join({ name: this.#roomName, record: this.#ui.record.checked });
    this.state.room = room;
    room
      .on(ROOM_EVENT.STATE, () => this.#onRoomState(room))
      .on(ROOM_EVENT.JOINED, (participant) => {
        this.#tiles.addParticipant(participant);
        this.#moderation.participantShown(participant);
        this.#chat.system(`${participant.name()} joined`);
        this.#refreshRecipients();
      })
      .on(ROOM_EVENT.LEFT, (participant, reason, by) => {
        this.#tiles.removeParticipant(participant.name());
        this.#chat.system(
          reason === "kicked" ? `${participant.name()} was removed by ${by}` : `${participant.name()} left`,
        );
        this.#refreshRecipients();
      })
      .on(ROOM_EVENT.PUBLISHED, (participant, stream) => {
        this.#tiles.showStream(participant, stream);
        this.#moderation.participantShown(participant);
      })
      .on(ROOM_EVENT.UNPUBLISHED, (participant, stream) => {
        this.#tiles.endStream(participant, stream);
        this.#moderation.streamChanged(participant);
      })
      .on(ROOM_EVENT.MUTED, (participant, stream, by) => {
        this.#tiles.showMuted(participant, stream);
        this.#moderation.streamChanged(participant);
        if (by) {
          const muted = stream.muted();
          this.#chat.system(`${participant.name()} was ${muted.audio || muted.video ? "muted" : "unmuted"} by ${by}`);
        }
      })
      .on(ROOM_EVENT.RECORDING, (recordedRoom, recording, by) => {
        if (recordedRoom !== this.state.room) return;
        this.#showRecording(recording ? by : null);
        // A start is said with the room's state (the chat is drawn anew then).
        if (!recording) this.#chat.system("the room's recording stopped");
      })
      .on(ROOM_EVENT.LOCKED, (lockedRoom, isLocked, by) => {
        this.#moderation.lockedChanged(isLocked);
        this.#chat.system(`${by} ${isLocked ? "locked" : "unlocked"} the room`);
      })
      .on(ROOM_EVENT.SPEAKERS, (speakersRoom, speakers) => {
        if (speakersRoom === this.state.room) this.#tiles.showSpeakers(speakers, this.#ui.localTile);
      })
      .on(ROOM_EVENT.MESSAGE, (message) => this.#chat.message(message))
      .on(ROOM_EVENT.FAILED, (failed, code) => {
        this.#showError(roomFailureText(code, failed.name(), connection.username()));
        this.#leave();
      })
      .on(ROOM_EVENT.KICKED, (kicked, by) => {
        this.#showError(kickedText(by));
        this.#leave();
      })
      .on(ROOM_EVENT.FINALIZED, (finalized, reason, by) => {
        this.#showError(finalizedText(reason, by));
        this.#leave();
      });
  }

  #onRoomState(room) {
    if (room !== this.state.room) return;
    const ui = this.#ui;
    this.#chat.clear();
    for (const message of room.history()) this.#chat.message(message);
    const participants = room.getParticipants();
    const names = participants.map((participant) => participant.name());
    this.#chat.system(names.length ? `participants: ${names.join(", ")}` : "room is empty");
    for (const participant of participants) this.#tiles.addParticipant(participant);
    this.#moderation.attach(room, { token: () => this.#token });
    if (room.isLocked()) this.#chat.system("the room is locked");
    if (room.recordedBy()) this.#chat.system(`${room.recordedBy()} is recording the room`);
    this.#refreshRecipients();
    ui.record.checked = room.record();
    ui.chatInput.disabled = false;
    ui.chatSend.disabled = false;
    ui.chatTo.disabled = false;
    if (ui.share) ui.share.disabled = false;
    this.#publishCamera();
  }

  #publishCamera() {
    const room = this.state.room;
    if (!room) return;
    const ui = this.#ui;
    const camera = room.publish({ display: ui.localVideo, constraints: CAMERA_CONSTRAINTS, kind: "camera" });
    this.state.camera = camera;
    const show = () => {
      if (this.state.camera === camera) this.#showCamera(camera);
    };
    for (const status of Object.values(STREAM_STATUS)) camera.on(status, show);
    camera.on(STREAM_STATUS.FAILED, () => {
      if (this.state.camera === camera) this.#showError(streamFailureText(camera.info(), "camera"));
    });
    camera.on(STREAM_EVENT.MODERATED, (stream, muted, by) => {
      show();
      this.#chat.system(`${by} ${muted.audio || muted.video ? "muted" : "unmuted"} you`);
    });
    this.#showCamera(camera);
  }

  #showCamera(camera) {
    const ui = this.#ui;
    const active = ACTIVE.has(camera.status());
    setBadge(ui.localStatus, camera.status());
    ui.muteAudio.disabled = !active;
    ui.muteVideo.disabled = !active;
    ui.stop.disabled = false;
    ui.stop.textContent = active ? "Stop" : "Publish";
    this.#showMuteButton(ui.muteAudio, "A", camera.isAudioMuted());
    this.#showMuteButton(ui.muteVideo, "V", camera.isVideoMuted());
  }

  #showMuteButton(button, letter, muted) {
    button.textContent = `${muted ? "Unmute" : "Mute"} ${letter}`;
    button.setAttribute("aria-pressed", String(muted));
  }

  async #toggleMute(kind) {
    const camera = this.state.camera;
    if (!camera) return;
    const muted = kind === "audio" ? camera.isAudioMuted() : camera.isVideoMuted();
    const change = {
      audio: muted ? () => camera.unmuteAudio() : () => camera.muteAudio(),
      video: muted ? () => camera.unmuteVideo() : () => camera.muteVideo(),
    }[kind];
    const done = change();
    this.#showCamera(camera);
    try {
      await done;
    } catch (error) {
      this.#showError(`Mute was not applied (${error.code ?? error.message}).`);
    }
  }

  #toggleShare() {
    const ui = this.#ui;
    const room = this.state.room;
    if (this.state.screen) {
      this.state.screen.stop();
      return;
    }
    if (!room) return;
    // Called straight from the click: getDisplayMedia needs the user's gesture.
    const screen = room.publish({ display: ui.localScreen, constraints: SCREEN_CONSTRAINTS, kind: "screen" });
    this.state.screen = screen;
    const ended = () => {
      if (this.state.screen !== screen) return;
      this.state.screen = null;
      this.#showShare(false);
      if (screen.status() === STREAM_STATUS.FAILED) this.#showError(streamFailureText(screen.info(), "screen"));
    };
    screen.on(STREAM_STATUS.UNPUBLISHED, ended).on(STREAM_STATUS.FAILED, ended);
    this.#showShare(true);
  }

  #showShare(sharing) {
    const ui = this.#ui;
    if (!ui.share) return;
    ui.share.textContent = sharing ? "Stop sharing" : "Share";
    ui.share.setAttribute("aria-pressed", String(sharing));
    ui.localScreenTile.hidden = !sharing;
    if (!sharing) ui.localScreen.srcObject = null;
    this.#tiles.refresh();
  }

  async #sendChat() {
    const ui = this.#ui;
    const room = this.state.room;
    const text = ui.chatInput.value;
    if (!room || !text.trim()) return;
    const recipient = ui.chatTo.value ? room.getParticipant(ui.chatTo.value) : null;
    if (ui.chatTo.value && !recipient) {
      this.#showError(chatFailureText("unknown_participant"));
      return;
    }
    ui.chatInput.value = "";
    try {
      await (recipient ? recipient.sendMessage(text) : room.sendMessage(text));
    } catch (error) {
      this.#showError(chatFailureText(error.code ?? "failed"));
      if (!ui.chatInput.value) ui.chatInput.value = text;
    }
  }

  #refreshRecipients() {
    const select = this.#ui.chatTo;
    const chosen = select.value;
    const names = this.state.room?.getParticipants().map((participant) => participant.name()) ?? [];
    const everyone = new Option("Everyone", "");
    select.replaceChildren(everyone, ...names.map((name) => new Option(name, name)));
    select.value = names.includes(chosen) ? chosen : "";
  }

  async #leave() {
    const { connection, room } = this.state;
    this.#ui.join.disabled = true;
    this.#showRecordsLink(room);
    try {
      await room?.leave();
    } catch (error) {
      console.warn("leave:", error);
    }
    connection?.disconnect();
    if (connection) setBadge(this.#ui.status, SESSION_STATUS.DISCONNECTED);
    this.#showLeft();
  }

  /** The red recording indicator: shown with who started it, hidden with null. */
  #showRecording(by) {
    this.#ui.recording.hidden = by === null;
    this.#ui.recording.querySelector(".recorded-by").textContent = by ?? "";
  }

  /** Back to the page before Join. */
  #showLeft() {
    const ui = this.#ui;
    this.#showRecording(null);
    const camera = this.state.camera;
    Object.assign(this.state, { connection: null, room: null, camera: null, screen: null });
    clearTimeout(this.#refreshTimer);
    this.#token = null;
    this.#tokenExpires = null;
    this.#moderation.detach();
    this.#tiles.clear();
    this.#tiles.showSpeakers([], this.#ui.localTile);
    ui.localVideo.srcObject = null;
    if (camera) setBadge(ui.localStatus, camera.status() === STREAM_STATUS.FAILED ? "FAILED" : "UNPUBLISHED");
    else if (!ui.localStatus.dataset.status) setBadge(ui.localStatus, "NONE");
    if (!ui.status.dataset.status) setBadge(ui.status, "NONE");
    this.#showShare(false);
    for (const button of [ui.muteAudio, ui.muteVideo, ui.stop, ui.chatSend, ui.chatInput, ui.chatTo]) {
      button.disabled = true;
    }
    if (ui.share) ui.share.disabled = true;
    ui.stop.textContent = "Stop";
    this.#showMuteButton(ui.muteAudio, "A", false);
    this.#showMuteButton(ui.muteVideo, "V", false);
    this.#refreshRecipients();
    ui.join.textContent = "Join";
    ui.join.disabled = false;
    ui.login.disabled = this.#loggedInWithToken();
    ui.record.disabled = false;
  }

  /**
   * Participants keep a link to the room's records once they are out of it.
   * In open mode it is the link itself, which anyone holding it can open.
   * With ROOM_AUTH=token the server honours the link only with a proof of
   * this identity, so the page exchanges it now with its own access token
   * (the records cookie is then set in this browser) and shows /records/.
   */
  #showRecordsLink(room) {
    const url = room?.recordsUrl();
    const holder = document.getElementById("records-link");
    if (!url || !holder) return;
    this.#recordsUrl = url;
    if (!this.#access.recordsLinkNeedsProof()) {
      this.#recordsLinkShown(holder, { href: url });
      return;
    }
    // Taken now: leaving forgets the session's token.
    const proof = { token: this.#token, expires: this.#tokenExpires, login: this.state.connection?.username() };
    this.#openRecords(url, proof).then(
      (href) => {
        if (this.#recordsUrl === url) this.#recordsLinkShown(holder, { href });
      },
      (error) => {
        if (this.#recordsUrl === url) this.#recordsLinkShown(holder, { problem: error.message });
      },
    );
  }

  /** Exchange the records link `url` with a token of this identity; the plain URL to show. */
  async #openRecords(url, { token, expires, login }) {
    let proof = token;
    if (!proof || !expires || expires - Date.now() < RECORDS_TOKEN_MARGIN_MS) {
      proof = (await this.#access.token({ room: this.#roomName, login })).token;
    }
    return this.#access.openRecords({ recordsUrl: url, token: proof });
  }

  #recordsLinkShown(holder, { href = null, problem = null }) {
    const link = holder.querySelector("a");
    link.hidden = href === null;
    if (href !== null) link.href = href;
    holder.querySelector(".records-link-note").hidden = problem !== null;
    const said = holder.querySelector(".records-link-problem");
    said.textContent = problem === null ? "" : `The room's records could not be opened: ${problem}`;
    said.hidden = problem === null;
    holder.hidden = false;
  }

  #remoteStreams() {
    const room = this.state.room;
    if (!room) return [];
    return room.getParticipants().flatMap((participant) => participant.getStreams());
  }

  #showError(text) {
    this.#ui.error.textContent = text;
    this.#ui.error.hidden = false;
  }

  #clearError() {
    this.#ui.error.textContent = "";
    this.#ui.error.hidden = true;
  }
}

/** Start the page: `layout` "grid" (conference) or "duo" (two-way chat); `screenShare` adds #share. */
export function startRoomPage({ layout = "grid", screenShare = false } = {}) {
  const page = new RoomPage({ layout, screenShare });
  window.conference = page.state;
  return page;
}
