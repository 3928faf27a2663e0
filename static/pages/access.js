/**
 * What the page asks the Django side for: an access token for its room
 * (POST /api/token), for moderators an invitation for guests
 * (POST /api/invites), and the records of a room it was in
 * (POST /records/access/). The server renders what the page needs on the
 * `<main data-*>` element: ROOM_AUTH, whether it can sign tokens, who is
 * logged in, the endpoints and the CSRF token.
 */

/** A refusal of the Django side: `code` and a `message` to show as it is. */
export class AccessError extends Error {
  constructor(code, message) {
    super(message || code);
    this.name = "AccessError";
    this.code = code;
  }
}

export class PageAccess {
  #roomAuth;
  #tokens;
  #user;
  #tokenUrl;
  #invitesUrl;
  #recordsAccessUrl;
  #csrfToken;
  #invite;

  constructor(element, invite) {
    const data = element.dataset;
    this.#roomAuth = data.roomAuth ?? "open";
    this.#tokens = data.tokens === "true";
    this.#user = data.user || null;
    this.#tokenUrl = data.tokenUrl;
    this.#invitesUrl = data.invitesUrl;
    this.#recordsAccessUrl = data.recordsAccessUrl;
    this.#csrfToken = data.csrfToken ?? "";
    this.#invite = invite;
  }

  /** The logged-in user's name, or null. */
  user() {
    return this.#user;
  }

  /** The invitation this page was opened with (`?invite=`), or null. */
  invite() {
    return this.#invite;
  }

  /**
   * Whether joining takes a token: always with ROOM_AUTH=token; in open
   * mode only for a logged-in user or an invited guest, and only when the
   * server can sign tokens (otherwise the page joins with a login, as ever).
   */
  joinsWithToken() {
    if (this.#roomAuth === "token") return true;
    return this.#tokens && (this.#user !== null || this.#invite !== null);
  }

  /**
   * Whether a link to a room's records needs a proof of whom it was issued
   * to: with ROOM_AUTH=token the server honours it only with that
   * identity's access token (or a login), so the page exchanges it itself;
   * in open mode a link is a bearer link that anyone can open.
   */
  recordsLinkNeedsProof() {
    return this.#roomAuth === "token";
  }

  /**
   * Open a room's records for this browser: post the grant of `recordsUrl`
   * (`/records/#access=<grant>`) with `token`, this identity's access token,
   * as its proof. The answer sets the records cookie (Path=/records/), so
   * the plain URL returned, `/records/`, now shows the room's records.
   */
  async openRecords({ recordsUrl, token }) {
    const url = new URL(recordsUrl, window.location.href);
    const grant = new URLSearchParams(url.hash.slice(1)).get("access") ?? "";
    await this.#send(this.#recordsAccessUrl, new URLSearchParams({ access: grant }), {}, token);
    return url.pathname;
  }

  /** `{token, identity, grants, expires}` for `room`: the user's own, or a guest's for `login`. */
  token({ room, login }) {
    const body = { room };
    if (this.#user === null && this.#invite !== null) Object.assign(body, { invite: this.#invite, login });
    return this.#post(this.#tokenUrl, body);
  }

  /** A new invitation to `room` (`{invite, grants, expires, max_uses}`), made with the moderator's token. */
  makeInvite({ room, token, maxUses = null }) {
    const body = { room };
    if (maxUses !== null) body.max_uses = maxUses;
    return this.#post(this.#invitesUrl, body, token);
  }

  #post(url, body, bearer = null) {
    return this.#send(url, JSON.stringify(body), { "Content-Type": "application/json" }, bearer);
  }

  async #send(url, body, contentHeaders, bearer) {
    const headers = { ...contentHeaders, "X-CSRFToken": this.#csrfToken };
    if (bearer) headers.Authorization = `Bearer ${bearer}`;
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        headers,
        body,
        credentials: "same-origin",
        cache: "no-store",
      });
    } catch {
      throw new AccessError("unreachable", "The server cannot be reached. Try again in a moment.");
    }
    let answer = null;
    try {
      answer = await response.json();
    } catch {
      // A proxy's or CSRF failure's HTML page, or no body (204).
    }
    if (!response.ok) {
      throw new AccessError(
        answer?.error ?? `http_${response.status}`,
        answer?.message ?? `The server refused access (HTTP ${response.status}). Reload the page and try again.`,
      );
    }
    return answer;
  }
}
