// The live view: asks state.json every few seconds and redraws rooms, nodes
// and the queue in place. No framework; every figure goes in as text.
"use strict";

(function () {
  const root = document.getElementById("live");
  if (!root) return;
  const stateUrl = root.dataset.stateUrl;
  const intervalMs = Number(root.dataset.intervalMs) || 2500;
  const statusLine = document.getElementById("live-status");

  function element(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function bitrate(bps) {
    if (bps === null || bps === undefined) return "–";
    if (bps >= 1e6) return (bps / 1e6).toFixed(2) + " Mbit/s";
    return Math.round(bps / 1e3) + " kbit/s";
  }

  function percent(share, digits) {
    if (share === null || share === undefined) return "–";
    return (share * 100).toFixed(digits) + " %";
  }

  function trackText(kind, track) {
    if (!track) return "–";
    const parts = [bitrate(track.bps)];
    if (kind === "video") parts.push(track.fps.toFixed(1) + " fps");
    parts.push("loss " + percent(track.loss, 1));
    return parts.join(" · ");
  }

  function mutedText(stream) {
    const muted = [];
    if (stream.muted && stream.muted.audio) muted.push("audio");
    if (stream.muted && stream.muted.video) muted.push("video");
    return muted.length ? "muted: " + muted.join(", ") : "";
  }

  function roomSection(room) {
    const body = element("tbody");
    for (const participant of room.participants) {
      const streams = participant.streams.length ? participant.streams : [null];
      streams.forEach((stream, index) => {
        const row = element("tr", stream ? { "data-stream": stream.id } : {});
        if (index === 0) {
          const who = participant.display_name
            ? participant.display_name + " (" + participant.login + ")" : participant.login;
          row.append(element("td", { rowspan: streams.length, class: "live-login" },
            who, participant.present ? "" : " (left)"));
        }
        if (stream) {
          row.append(
            element("td", {}, stream.kind, " ", element("span", { class: "live-muted" }, mutedText(stream))),
            element("td", { class: "live-video" }, stream.video ? trackText("video", stream.tracks.video) : "–"),
            element("td", { class: "live-audio" }, stream.audio ? trackText("audio", stream.tracks.audio) : "–"),
            element("td", { class: "live-players" }, stream.players === null ? "–" : stream.players),
          );
        } else {
          row.append(element("td", { colspan: 4, class: "live-empty" }, "publishes nothing"));
        }
        body.append(row);
      });
    }
    if (!room.participants.length) {
      body.append(element("tr", {}, element("td", { colspan: 5, class: "live-empty" }, "Nobody is in the room.")));
    }
    const facts = [room.status, room.participants.length + " in the room",
      room.node ? "node " + room.node : "no media node", room.record ? "recorded" : ""].filter(Boolean);
    return element("section", { class: "live-room", "data-room": room.name },
      element("h3", {}, room.name, " ", element("small", {}, facts.join(" · "))),
      element("table", { class: "live-table" },
        element("thead", {}, element("tr", {},
          element("th", {}, "Participant"), element("th", {}, "Stream"), element("th", {}, "Video"),
          element("th", {}, "Audio"), element("th", {}, "Players"))),
        body));
  }

  function drawRooms(state) {
    const holder = document.getElementById("live-rooms");
    const count = document.getElementById("live-rooms-count");
    const shown = state.rooms.length;
    count.textContent = shown < state.rooms_open ? "(" + shown + " of " + state.rooms_open + ")" : "(" + shown + ")";
    const sections = state.rooms.map(roomSection);
    if (!sections.length) sections.push(element("p", { class: "live-empty" }, "No room is open."));
    holder.replaceChildren(...sections);
  }

  function drawNodes(state) {
    const body = document.querySelector("#live-nodes tbody");
    const rows = state.nodes.map((node) => element("tr", { "data-node": node.node },
      element("td", node.host ? { title: node.host + ", process " + node.pid } : {},
        node.node, node.draining ? element("span", { class: "live-draining" }, " draining") : null),
      element("td", {}, node.rooms),
      element("td", { class: "live-published" }, node.published === null ? "–" : node.published),
      element("td", { class: "live-legs" }, node.legs === null ? "–" : node.legs),
      element("td", { class: "live-bps-in" }, bitrate(node.bps_in)),
      element("td", { class: "live-bps-out" }, bitrate(node.bps_out)),
      element("td", { class: "live-cpu" }, percent(node.cpu, 0))));
    if (!rows.length) rows.push(element("tr", {}, element("td", { colspan: 7, class: "live-empty" },
      "No media node is alive.")));
    body.replaceChildren(...rows);
  }

  function drawQueue(state) {
    const line = document.getElementById("live-queue");
    const queue = state.queue;
    if (!queue.lengths) {
      line.textContent = "The broker did not answer (" + queue.error + ").";
      line.className = "live-error";
      return;
    }
    line.className = "";
    line.textContent = Object.entries(queue.lengths)
      .map(([name, length]) => length + " task" + (length === 1 ? "" : "s") + " waiting in " + name).join(", ");
  }

  async function refresh() {
    try {
      const response = await fetch(stateUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error("HTTP " + response.status);
      const state = await response.json();
      drawRooms(state);
      drawNodes(state);
      drawQueue(state);
      statusLine.className = "live-status";
      statusLine.textContent = "Updated " + new Date(state.at_ms).toLocaleTimeString();
      root.dataset.updatedAt = String(state.at_ms);
    } catch (error) {
      // The last figures stay; the line says they are getting old.
      statusLine.className = "live-status live-error";
      statusLine.textContent = "Update failed (" + error.message + "); retrying.";
    } finally {
      setTimeout(refresh, intervalMs);
    }
  }

  refresh();
})();
