/**
 * The moderator menu, shown only to a session whose grants say roomAdmin
 * for the room: in each remote participant's tile "Mute" (their microphone)
 * and "Remove from room"; for the room "Lock room", "End meeting for
 * everyone" and "Copy invite link" (an invitation for guests).
 */

import { copyText, inviteUrl } from "./invite.js";
import { moderationFailureText } from "./messages.js";

// "End meeting for everyone" asks for a second click within this time.
const CONFIRM_WINDOW_MS = 5000;
const COPIED_FEEDBACK_MS = 2000;

function button(className, text, onClick) {
  const element = document.createElement("button");
  element.type = "button";
  element.className = className;
  element.textContent = text;
  element.addEventListener("click", onClick);
  return element;
}

function cameraOf(participant) {
  return participant.getStreams().find((stream) => stream.kind() === "camera") ?? null;
}

/** Whether `connection`'s grants let it moderate `room`. */
export function mayModerate(connection, room) {
  const grants = connection.grants();
  return Boolean(grants?.roomAdmin) && (grants.room === "" || grants.room === room.name());
}

export class ModeratorMenu {
  #ui;
  #tiles;
  #access;
  #onError;
  #room = null;
  #token = () => null;
  #endTimer = null;
  #endLabel;
  #inviteLabel;

  /**
   * `ui`: {section, lock, end, invite, inviteLine, inviteLink, lockedNote};
   * `tiles`: the VideoTiles whose tiles get the per-participant buttons;
   * `access`: PageAccess, to make invitations; `onError(text)`.
   */
  constructor(ui, { tiles, access, onError }) {
    this.#ui = ui;
    this.#tiles = tiles;
    this.#access = access;
    this.#onError = onError;
    this.#endLabel = ui.end.textContent;
    this.#inviteLabel = ui.invite.textContent;
    ui.lock.addEventListener("click", () => this.#toggleLock());
    ui.end.addEventListener("click", () => this.#end());
    ui.invite.addEventListener("click", () => this.#makeInvite());
  }

  /** Show the menu if this session moderates `room`; `token()` is the session's current token. */
  attach(room, { token }) {
    this.#room = mayModerate(room.connection(), room) ? room : null;
    this.#token = token;
    this.#ui.section.hidden = this.#room === null;
    if (!this.#room) return;
    this.lockedChanged(room.isLocked());
    for (const participant of room.getParticipants()) this.participantShown(participant);
  }

  detach() {
    this.#room = null;
    this.#ui.section.hidden = true;
    this.#ui.inviteLine.hidden = true;
    this.#disarmEnd();
  }

  /** A remote participant's tile is on the page: give it its buttons. */
  participantShown(participant) {
    if (!this.#room) return;
    const menu = this.#tiles.menuOf(participant.name());
    if (!menu) return;
    if (menu.childElementCount === 0) {
      const name = participant.name();
      menu.append(
        button("moderate-mute", "Mute", () => this.#toggleMute(name)),
        button("moderate-kick", "Remove from room", () => this.#kick(name)),
      );
    }
    this.streamChanged(participant);
  }

  /** A participant's camera came, went or was muted: the Mute button follows it. */
  streamChanged(participant) {
    if (!this.#room) return;
    const mute = this.#tiles.menuOf(participant.name())?.querySelector(".moderate-mute");
    if (!mute) return;
    const camera = cameraOf(participant);
    const muted = Boolean(camera?.muted().audio);
    mute.disabled = camera === null;
    mute.textContent = muted ? "Unmute" : "Mute";
    mute.setAttribute("aria-pressed", String(muted));
  }

  lockedChanged(locked) {
    this.#ui.lock.textContent = locked ? "Unlock room" : "Lock room";
    this.#ui.lock.setAttribute("aria-pressed", String(locked));
    this.#ui.lockedNote.hidden = !locked;
  }

  async #toggleMute(name) {
    const participant = this.#room?.getParticipant(name);
    const camera = participant ? cameraOf(participant) : null;
    if (!camera) return;
    try {
      await camera.mute({ audio: !camera.muted().audio });
    } catch (error) {
      this.#onError(moderationFailureText(`Muting ${name}`, error.code, error.message));
    }
  }

  async #kick(name) {
    try {
      await this.#room?.kick(name);
    } catch (error) {
      this.#onError(moderationFailureText(`Removing ${name}`, error.code, error.message));
    }
  }

  async #toggleLock() {
    const room = this.#room;
    if (!room) return;
    try {
      await room.lock(!room.isLocked());
    } catch (error) {
      this.#onError(moderationFailureText("Locking the room", error.code, error.message));
    }
  }

  async #end() {
    const room = this.#room;
    if (!room) return;
    if (this.#endTimer === null) {
      // Ending cannot be undone: a second click confirms.
      this.#ui.end.textContent = "Click again to end for everyone";
      this.#endTimer = setTimeout(() => this.#disarmEnd(), CONFIRM_WINDOW_MS);
      return;
    }
    this.#disarmEnd();
    try {
      await room.end();
    } catch (error) {
      this.#onError(moderationFailureText("Ending the meeting", error.code, error.message));
    }
  }

  #disarmEnd() {
    clearTimeout(this.#endTimer);
    this.#endTimer = null;
    this.#ui.end.textContent = this.#endLabel;
  }

  async #makeInvite() {
    const room = this.#room;
    if (!room) return;
    const ui = this.#ui;
    let answer;
    try {
      answer = await this.#access.makeInvite({ room: room.name(), token: this.#token() });
    } catch (error) {
      this.#onError(`No invite link: ${error.message}`);
      return;
    }
    const href = inviteUrl(room.name(), answer.invite);
    ui.inviteLink.href = href;
    ui.inviteLink.textContent = href;
    ui.inviteLine.hidden = false;
    try {
      await copyText(href);
      ui.invite.textContent = "Copied";
    } catch {
      ui.invite.textContent = "Select and copy the link";
    }
    setTimeout(() => {
      ui.invite.textContent = this.#inviteLabel;
    }, COPIED_FEEDBACK_MS);
  }
}
