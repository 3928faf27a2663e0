/** The room name in the page URL (?roomName=), a guest's invitation (?invite=) and the invite links. */

const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";
const COPIED_FEEDBACK_MS = 2000;

function randomSuffix(length) {
  const out = [];
  const bytes = new Uint8Array(1);
  while (out.length < length) {
    crypto.getRandomValues(bytes);
    // 252 = 7 * 36: drop the bytes that would favour the first letters.
    if (bytes[0] < 252) out.push(ALPHABET[bytes[0] % ALPHABET.length]);
  }
  return out.join("");
}

/** The room of this page: ?roomName=, or a new `room-xxxxxx` put into the URL. */
export function roomNameFromUrl() {
  const url = new URL(window.location.href);
  let name = url.searchParams.get("roomName");
  if (!name) {
    name = `room-${randomSuffix(6)}`;
    url.searchParams.set("roomName", name);
    window.history.replaceState(window.history.state, "", url);
  }
  return name;
}

/** The guest invitation this page was opened with (`?invite=`), or null. */
export function inviteFromUrl() {
  return new URL(window.location.href).searchParams.get("invite") || null;
}

/** The link to this page's room; with `invite`, a guest's invite link. */
export function inviteUrl(roomName, invite = null) {
  const url = new URL(window.location.pathname, window.location.origin);
  url.searchParams.set("roomName", roomName);
  if (invite) url.searchParams.set("invite", invite);
  return url.href;
}

/** Copy `text` to the clipboard; rejects when the browser refuses. */
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // Plain http on a LAN address has no Clipboard API.
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "offscreen";
  document.body.append(area);
  area.select();
  const copied = document.execCommand("copy");
  area.remove();
  if (!copied) throw new Error("copy refused");
}

/** Show the invite link and make the copy button copy it. */
export function showInvite(link, copyButton, roomName) {
  const href = inviteUrl(roomName);
  link.href = href;
  link.textContent = href;
  const label = copyButton.textContent;
  let restore = null;
  copyButton.addEventListener("click", async () => {
    try {
      await copyText(href);
      copyButton.textContent = "Copied";
    } catch {
      copyButton.textContent = "Select and copy the link";
    }
    clearTimeout(restore);
    restore = setTimeout(() => {
      copyButton.textContent = label;
    }, COPIED_FEEDBACK_MS);
  });
}
