// The records list: players load only when opened and stop when closed, and
// while a recording is still being written or mixed the list reloads itself
// (never while a player is open, so that playback is not cut off).
"use strict";

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
