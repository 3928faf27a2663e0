// A room's archive page: the player and the room's timeline beside it.
//
// Every entry carries its moment on the room's clock (data-at, seconds; 0 is
// where the room's first recorded media starts, the mix's time 0). A record
// played instead of the mix starts elsewhere on that clock (data-offset):
// its time t is the room's t + offset. Clicking an entry seeks the player
// there; the entry under the playhead (the last one at or before it) is
// highlighted as the recording plays.
"use strict";

const video = document.getElementById("archive-video");
const timeline = document.getElementById("timeline");
const entries = timeline === null ? [] : Array.from(timeline.querySelectorAll("li[data-at]"));
const moments = entries.map((entry) => Number(entry.dataset.at));
let offset = video === null ? 0 : Number(video.dataset.offset || 0);
let current = null;

function roomTime() {
  return video.currentTime + offset;
}

function seekTo(moment) {
  let time = Math.max(0, moment - offset);
  if (Number.isFinite(video.duration)) time = Math.min(time, video.duration);
  video.currentTime = time;
}

// The last entry at or before the playhead; entries are in time order.
function entryAt(moment) {
  let low = 0;
  let high = moments.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (moments[middle] <= moment + 0.001) low = middle + 1;
    else high = middle;
  }
  return low > 0 ? entries[low - 1] : null;
}

function keepInView(entry) {
  // Scroll the timeline's own box, never the page under the reader.
  const box = timeline.getBoundingClientRect();
  const row = entry.getBoundingClientRect();
  if (row.top < box.top) timeline.scrollTop -= box.top - row.top;
  else if (row.bottom > box.bottom) timeline.scrollTop += row.bottom - box.bottom;
}

function highlight() {
  const entry = entryAt(roomTime());
  if (entry === current) return;
  if (current !== null) {
    current.classList.remove("current");
    current.removeAttribute("aria-current");
  }
  current = entry;
  if (entry === null) return;
  entry.classList.add("current");
  entry.setAttribute("aria-current", "true");
  keepInView(entry);
}

function chatTrack() {
  return video.textTracks.length > 0 ? video.textTracks[0] : null;
}

function showSubtitles(show) {
  const track = chatTrack();
  // "hidden" still loads the cues (and keeps them readable); "showing" draws them.
  if (track !== null) track.mode = show ? "showing" : "hidden";
}

function playSource(option) {
  // Keep the moment the reader is at when switching to another record.
  const moment = roomTime();
  const subtitles = document.getElementById("archive-subtitles");
  offset = Number(option.dataset.offset || 0);
  video.querySelector("track")?.remove();
  const track = document.createElement("track");
  Object.assign(track, { kind: "subtitles", srclang: "und", label: "Chat", src: option.dataset.subtitles });
  video.append(track);
  video.src = option.dataset.src;
  video.addEventListener("loadedmetadata", () => seekTo(moment), { once: true });
  showSubtitles(subtitles !== null && subtitles.checked);
  document.getElementById("archive-download").href = option.dataset.src;
  document.getElementById("archive-vtt").href = option.dataset.subtitles;
  highlight();
}

// A link may open the page at a moment of the room's clock (?t=seconds, as
// the chat search's hits do): seek there once the player knows its duration.
function openAtLinkedMoment() {
  const moment = Number.parseFloat(new URLSearchParams(window.location.search).get("t") ?? "");
  if (!Number.isFinite(moment)) return;
  if (video.readyState >= HTMLMediaElement.HAVE_METADATA) seekTo(moment);
  else video.addEventListener("loadedmetadata", () => seekTo(moment), { once: true });
}

if (video !== null) {
  for (const entry of entries) {
    entry.querySelector("button").addEventListener("click", () => {
      seekTo(Number(entry.dataset.at));
      highlight();
    });
  }
  for (const name of ["timeupdate", "seeked", "seeking", "loadedmetadata"]) video.addEventListener(name, highlight);
  const subtitles = document.getElementById("archive-subtitles");
  if (subtitles !== null) {
    showSubtitles(subtitles.checked);
    subtitles.addEventListener("change", () => showSubtitles(subtitles.checked));
    // The player's own captions button changes the mode too: keep the box in step.
    video.textTracks.addEventListener("change", () => {
      subtitles.checked = chatTrack()?.mode === "showing";
    });
  }
  const source = document.getElementById("archive-source");
  if (source !== null) source.addEventListener("change", () => playSource(source.selectedOptions[0]));
  openAtLinkedMoment();
  highlight();
}
