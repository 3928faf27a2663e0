// The records pages. A room's link is /records/#access=<token>: the token is
// in the fragment, which the browser never sends, so it stays out of request
// lines and access logs. This script takes it out of the address bar, posts
// it (with the page's CSRF token) to the server, which answers with a cookie
// holding the grant, and reloads the page, now showing the room's records.
//
// On the list, players load only when opened and stop when closed, and
// while a recording is still being written or mixed the list reloads itself
// (never while a player is open, so that playback is not cut off).
"use strict";

async function exchangeAccessToken(token) {
  const form = document.getElementById("records-access");
  const status = document.getElementById("records-access-status");
  if (form === null) return;
  history.replaceState(null, "", location.pathname + location.search);
  const show = (text) => {
    if (status === null) return;
    status.textContent = text;
    status.hidden = false;
  };
  show("Opening the room's records…");
  const body = new FormData(form);
  body.set("access", token);
  let response;
  try {
    response = await fetch(form.action, { method: "POST", body, credentials: "same-origin" });
  } catch {
    show("The server could not be reached; reload the page to try again.");
    return;
  }
  if (response.ok) {
    location.reload();
    return;
  }
  let message = "This link to a room's records is not valid.";
  try {
    message = (await response.json()).message || message;
  } catch {
    // not JSON (a proxy's error page, a CSRF refusal): keep the plain words
  }
  show(message);
}

const accessToken = new URLSearchParams(location.hash.slice(1)).get("access");
if (accessToken) exchangeAccessToken(accessToken);

for (const player of document.querySelectorAll("details.player")) {
  player.addEventListener("toggle", () => {
    const video = player.querySelector("video");
    if (video === null) return;
    if (player.open) {
      video.preload = "metadata";
    } else {
      video.pause();
    }
  });
}

const refreshSeconds = Number(document.querySelector("main.records")?.dataset.refreshSeconds || 0);
if (refreshSeconds > 0) {
  setInterval(() => {
    const playerOpen = document.querySelector("details.player[open]") !== null;
    if (!playerOpen && document.visibilityState === "visible") location.reload();
  }, refreshSeconds * 1000);
}
