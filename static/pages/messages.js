/** What the pages tell people, by protocol code. */

const ROOM_FAILURES = {
  login_taken: (room, login) => `The login “${login}” is already in room “${room}”. Choose another login.`,
  room_full: (room) => `Room “${room}” is full. Try again later.`,
  invalid_room: (room) =>
    `“${room}” is not a valid room name: use up to 128 letters, digits, “-”, “_” and “.” (not starting with “.”).`,
  forbidden: (room) => `You may not join room “${room}”.`,
  try_again: (room) => `Room “${room}” is closing. Join again in a moment.`,
  room_locked: () => "This room is locked.",
};

const SESSION_ENDS = {
  invalid_username: () => "Logins are 1–64 letters, digits, spaces and “-”, “_”, “.”, “@”.",
  resumed: () => "This session was taken over by another window.",
  bad_url: () => "The server address is not valid.",
  token_expired: () => "Your access has expired. Reload to join again.",
  replaced: () => "You joined this room from another tab or device.",
  token_required: () => "This room needs an invitation: open the invite link you were sent, or log in.",
  token_invalid: () => "Your access was not accepted. Reload to join again.",
  token_not_yet_valid: () => "Your access is not valid yet: check this computer's clock, then reload.",
};

const CAPTURE_FAILURES = {
  camera_denied: "Camera and microphone access was denied. You can still watch and chat.",
  no_device: "No camera or microphone was found. You can still watch and chat.",
  device_busy: "The camera or microphone is in use by another application. You can still watch and chat.",
  share_cancelled: "Screen sharing was cancelled.",
};

// The browser and the media server found no network path to each other.
const MEDIA_UNREACHABLE =
  "Media could not connect: this browser and the media server found no network path to each other " +
  "(a firewall blocking UDP, MEDIA_HOST_IP or MEDIA_UDP_PORTS, or a page not served over HTTPS). " +
  "See README, Troubleshooting.";

const STREAM_FAILURES = {
  codec_not_supported: "This browser cannot send the room's video codec.",
  no_media: "No media reached the server.",
  limit: "You are already publishing a stream of this kind.",
  node_unavailable: "The media server is not available. Try again later.",
};

const CHAT_FAILURES = {
  rate_limited: "You are sending messages too fast. Wait a moment.",
  unknown_participant: "That participant has left the room.",
  bad_request: "That message cannot be sent (too long or empty).",
  not_connected: "Not connected: the message was not sent.",
};

const MODERATION_FAILURES = {
  forbidden: "You are not a moderator of this room.",
  unknown_participant: "That participant has already left.",
  unknown_stream: "That stream has already ended.",
  unknown_room: "The room has already ended.",
  not_connected: "Not connected: try again in a moment.",
};

/** What a participant removed by a moderator reads. */
export function kickedText(by) {
  return by ? `You were removed from the room by ${by}.` : "You were removed from the room.";
}

/** What everyone reads when the room closes under them. */
export function finalizedText(reason, by) {
  if (reason === "ended") return by ? `The meeting was ended by ${by}.` : "The meeting was ended.";
  return "An operator closed this room.";
}

/** A moderator's action that the server refused. */
export function moderationFailureText(what, code, message) {
  return `${what} did not work: ${MODERATION_FAILURES[code] ?? message ?? code}`;
}

export function roomFailureText(code, room, login) {
  const text = ROOM_FAILURES[code];
  return text ? text(room, login) : `Could not join room “${room}” (${code}).`;
}

export function sessionEndText(reason) {
  const text = SESSION_ENDS[reason];
  return text ? text() : `The session ended (${reason}).`;
}

export function unreachableText(retryInMs, wasConnected) {
  const seconds = Math.max(1, Math.round(retryInMs / 1000));
  const what = wasConnected ? "Connection to the server lost." : "Server unreachable.";
  return `${what} Retrying in ${seconds} s…`;
}

export function streamFailureText(info, kind) {
  if (info === "ice_failed") return MEDIA_UNREACHABLE;
  const what = kind === "screen" ? "Screen sharing failed" : "Publishing failed";
  return CAPTURE_FAILURES[info] ?? `${what}: ${STREAM_FAILURES[info] ?? info}`;
}

/** A remote stream that could not be played; null when the tile's badge says enough. */
export function playFailureText(info) {
  return info === "ice_failed" ? MEDIA_UNREACHABLE : null;
}

export function chatFailureText(code) {
  return CHAT_FAILURES[code] ?? `The message was not sent (${code}).`;
}
