/**
 * Remote participants' tiles. Each tile is `[data-participant="<login>"]`
 * and holds one slot per stream kind: a `video[data-stream-kind]` and its
 * `.stream-status` (NONE, PENDING, PLAYING, STOPPED, FAILED). The camera
 * slot is always there; a screen slot comes and goes with the share.
 * The caption holds the name and what the participant muted; a moderator
 * sees the moderator menu in the tile's corner. The tiles of those who speak
 * (the page's own included) have class `speaking` and `data-level`; in the
 * grid layout the loudest other participant's tile moves to the front.
 * A slot whose video the server paused for bandwidth (STREAM_EVENT.PAUSED)
 * has class `paused`: it shows the last picture, still, with a note.
 */

import { STREAM_EVENT, STREAM_STATUS } from "../roomapi.js";

const SHOWN_STATUSES = [STREAM_STATUS.PENDING, STREAM_STATUS.PLAYING, STREAM_STATUS.STOPPED, STREAM_STATUS.FAILED];

export function setBadge(element, status) {
  element.textContent = status;
  element.dataset.status = status;
}

class StreamSlot {
  element;
  video;
  stream = null;
  #status;
  #unmute;
  #still;
  #note;
  #onFailed;

  constructor(kind, participantName, onFailed) {
    this.#onFailed = onFailed;
    this.element = document.createElement("div");
    this.element.className = "stream";
    this.element.dataset.slot = kind;
    this.video = document.createElement("video");
    this.video.dataset.streamKind = kind;
    this.video.autoplay = true;
    this.video.playsInline = true;
    this.video.setAttribute("aria-label", `${participantName}: ${kind}`);
    this.#status = document.createElement("span");
    this.#status.className = "stream-status badge";
    setBadge(this.#status, "NONE");
    this.#unmute = document.createElement("button");
    this.#unmute.type = "button";
    this.#unmute.className = "unmute";
    this.#unmute.textContent = "Click to unmute";
    this.#unmute.hidden = true;
    this.#unmute.addEventListener("click", () => {
      this.stream?.unmuteElement().catch(() => {});
      this.#unmute.hidden = true;
    });
    // The picture the video had when the server paused it: the probes that
    // follow may send a few frames, which must not make it flicker.
    this.#still = document.createElement("canvas");
    this.#still.className = "still";
    this.#still.hidden = true;
    this.#note = document.createElement("p");
    this.#note.className = "paused-note";
    this.#note.textContent = "Video paused: your connection is too slow. It comes back by itself.";
    this.#note.hidden = true;
    this.element.append(this.video, this.#still, this.#note, this.#status, this.#unmute);
  }

  bind(stream) {
    if (this.stream === stream) return;
    this.stream = stream;
    for (const status of SHOWN_STATUSES) {
      stream.on(status, () => {
        if (this.stream === stream) this.#show(status);
      });
    }
    stream.on(STREAM_STATUS.FAILED, () => {
      if (this.stream === stream) this.#onFailed(stream);
    });
    stream.on(STREAM_EVENT.AUTOPLAY_BLOCKED, () => {
      if (this.stream === stream) this.#unmute.hidden = false;
    });
    stream.on(STREAM_EVENT.PAUSED, () => {
      if (this.stream === stream) this.#paused(true);
    });
    stream.on(STREAM_EVENT.RESUMED, () => {
      if (this.stream === stream) this.#paused(false);
    });
    this.#paused(false);
    this.#show(STREAM_STATUS.PENDING);
    stream.play(this.video);
  }

  ended() {
    this.#paused(false);
    this.stream = null;
    this.video.srcObject = null;
    this.#unmute.hidden = true;
    this.#show(STREAM_STATUS.STOPPED);
  }

  #paused(paused) {
    if (paused && this.video.videoWidth > 0) {
      this.#still.width = this.video.videoWidth;
      this.#still.height = this.video.videoHeight;
      this.#still.getContext("2d").drawImage(this.video, 0, 0);
    }
    this.#still.hidden = !paused;
    this.#note.hidden = !paused;
    this.element.classList.toggle("paused", paused);
  }

  #show(status) {
    setBadge(this.#status, status);
    this.element.classList.toggle("live", status === STREAM_STATUS.PLAYING);
  }
}

class ParticipantTile {
  element;
  /** Filled by the moderator menu (pages/moderation.js) when this session moderates the room. */
  menu;
  #name;
  #streams;
  #flags;
  #slots = new Map();
  #onFailed;

  constructor(name, onFailed) {
    this.#name = name;
    this.#onFailed = onFailed;
    this.element = document.createElement("figure");
    this.element.className = "tile remote";
    this.element.dataset.participant = name;
    this.#streams = document.createElement("div");
    this.#streams.className = "streams";
    const caption = document.createElement("figcaption");
    const label = document.createElement("span");
    label.className = "name";
    label.textContent = name;
    this.#flags = document.createElement("span");
    this.#flags.className = "flags";
    this.menu = document.createElement("span");
    this.menu.className = "moderator-menu";
    this.menu.setAttribute("role", "group");
    this.menu.setAttribute("aria-label", `Moderate ${name}`);
    caption.append(label, " ", this.#flags);
    this.element.append(this.#streams, caption, this.menu);
    this.#slot("camera");
  }

  show(stream) {
    this.#slot(stream.kind()).bind(stream);
    this.showMuted(stream);
  }

  end(stream) {
    const kind = stream.kind();
    const slot = this.#slots.get(kind);
    if (!slot || slot.stream !== stream) return;
    if (kind === "camera") {
      slot.ended();
      this.#flags.textContent = "";
      return;
    }
    slot.element.remove();
    this.#slots.delete(kind);
    this.element.classList.toggle("has-screen", this.#slots.has("screen"));
  }

  showMuted(stream) {
    if (stream.kind() !== "camera") return;
    const muted = stream.muted();
    const flags = [muted.audio ? "mic off" : "", muted.video ? "camera off" : ""].filter(Boolean);
    this.#flags.textContent = flags.join(" · ");
    // The server stops forwarding a muted camera: its last frame would stay
    // frozen on screen, so the slot goes dark instead.
    this.#slots.get("camera")?.element.classList.toggle("camera-off", muted.video);
  }

  #slot(kind) {
    let slot = this.#slots.get(kind);
    if (!slot) {
      slot = new StreamSlot(kind, this.#name, this.#onFailed);
      this.#slots.set(kind, slot);
      // The camera stays first: it is the tile's face.
      if (kind === "camera") this.#streams.prepend(slot.element);
      else this.#streams.append(slot.element);
      this.element.classList.toggle("has-screen", this.#slots.has("screen"));
    }
    return slot;
  }
}

export class VideoTiles {
  #container;
  #layout;
  #onStreamFailed;
  #tiles = new Map();

  /**
   * `container` also holds the page's own tiles (class `self`), counted in the layout;
   * `onStreamFailed(stream)` hears of a remote stream that could not be played.
   */
  constructor(container, { layout, onStreamFailed = () => {} }) {
    this.#container = container;
    this.#layout = layout;
    this.#onStreamFailed = onStreamFailed;
    container.dataset.layout = layout;
    this.refresh();
  }

  addParticipant(participant) {
    const name = participant.name();
    let tile = this.#tiles.get(name);
    if (!tile) {
      tile = new ParticipantTile(name, this.#onStreamFailed);
      this.#tiles.set(name, tile);
      this.#container.append(tile.element);
    }
    for (const stream of participant.getStreams()) tile.show(stream);
    this.refresh();
    return tile;
  }

  /** The element of `name`'s tile that holds moderator buttons, or null. */
  menuOf(name) {
    return this.#tiles.get(name)?.menu ?? null;
  }

  removeParticipant(name) {
    this.#tiles.get(name)?.element.remove();
    this.#tiles.delete(name);
    this.refresh();
  }

  clear() {
    for (const tile of this.#tiles.values()) tile.element.remove();
    this.#tiles.clear();
    this.refresh();
  }

  showStream(participant, stream) {
    const tile = this.#tiles.get(participant.name()) ?? this.addParticipant(participant);
    tile.show(stream);
    this.refresh();
  }

  endStream(participant, stream) {
    this.#tiles.get(participant.name())?.end(stream);
    this.refresh();
  }

  showMuted(participant, stream) {
    this.#tiles.get(participant.name())?.showMuted(stream);
  }

  /**
   * Highlight who speaks (ROOM_EVENT.SPEAKERS, loudest first). `ownTile` is
   * the page's own camera tile.
   */
  showSpeakers(speakers, ownTile) {
    const levels = new Map();
    for (const speaker of speakers) {
      const tile = speaker.isOwn ? ownTile : this.#tiles.get(speaker.name)?.element;
      if (tile && !levels.has(tile)) levels.set(tile, speaker.level);
    }
    for (const tile of [ownTile, ...[...this.#tiles.values()].map((entry) => entry.element)]) {
      if (!tile) continue;
      const level = levels.get(tile);
      tile.classList.toggle("speaking", level !== undefined);
      if (level === undefined) delete tile.dataset.level;
      else tile.dataset.level = String(level);
    }
    if (this.#layout !== "grid") return;
    // The active speaker first: the loudest of the others (one's own voice
    // does not rearrange one's own page). Moved within one task, a playing
    // video element goes on playing.
    const loudest = speakers.find((speaker) => !speaker.isOwn && this.#tiles.has(speaker.name));
    const tile = loudest && this.#tiles.get(loudest.name).element;
    if (tile && this.#container.firstElementChild !== tile) {
      this.#container.prepend(tile);
      this.refresh();
    }
  }

  /** Re-lay the grid for the number of tiles shown. */
  refresh() {
    const shown = [...this.#container.children].filter((child) => child.classList.contains("tile") && !child.hidden);
    const wide = shown.filter((tile) => tile.classList.contains("has-screen")).length;
    const cells = shown.length + wide;
    const columns = Math.max(1, Math.ceil(Math.sqrt(cells)));
    this.#container.style.setProperty("--columns", String(columns));
    this.#container.style.setProperty("--rows", String(Math.max(1, Math.ceil(cells / columns))));
    this.#container.dataset.columns = String(columns);
    this.#container.dataset.count = String(shown.length);
    this.#container.dataset.remote = String(this.#tiles.size);
    if (this.#layout === "duo") {
      const first = this.#tiles.values().next().value;
      for (const tile of this.#tiles.values()) tile.element.classList.toggle("primary", tile === first);
    }
  }
}
