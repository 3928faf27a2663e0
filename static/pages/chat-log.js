/** The chat panel: one <li> per line with the time, the sender and the text. */

function clock(ts) {
  const date = new Date(ts);
  return [date.getHours(), date.getMinutes(), date.getSeconds()].map((n) => String(n).padStart(2, "0")).join(":");
}

function span(className, text) {
  const element = document.createElement("span");
  element.className = className;
  element.textContent = text;
  return element;
}

export class ChatLog {
  #list;

  constructor(list) {
    this.#list = list;
  }

  clear() {
    this.#list.replaceChildren();
  }

  /** A line from the page itself: "room is empty", "bob joined", ... */
  system(text, ts = Date.now()) {
    this.#append(ts, ["system"], [span("text", text)]);
  }

  /** A message as the SDK delivers it (ROOM_EVENT.MESSAGE, room.history()). */
  message(message) {
    const parts = [span("from", message.from.name())];
    const classes = ["message"];
    if (message.isOwn) classes.push("own");
    if (message.isPrivate) {
      classes.push("private");
      const label = message.isOwn ? `(private to ${message.to.join(", ")})` : "(private)";
      parts.push(span("private-label", label));
    }
    parts.push(span("text", message.text));
    this.#append(message.ts, classes, parts);
  }

  #append(ts, classes, parts) {
    const list = this.#list;
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 24;
    const line = document.createElement("li");
    line.classList.add("line", ...classes);
    const time = document.createElement("time");
    time.dateTime = new Date(ts).toISOString();
    time.textContent = clock(ts);
    line.append(time);
    // Real spaces between the parts, so the line reads well as plain text too.
    for (const part of parts) line.append(" ", part);
    list.append(line);
    if (atBottom) list.scrollTop = list.scrollHeight;
  }
}
