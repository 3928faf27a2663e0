"""The pages render with the element ids the browser tests drive, and their scripts are served."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import PurePosixPath

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

ROOM_PAGE_IDS = {
    "login",
    "join",
    "status",
    "record",
    "error",
    "tiles",
    "local-video",
    "local-status",
    "mute-audio",
    "mute-video",
    "stop",
    "chat-log",
    "chat-input",
    "chat-send",
    "invite",
    "invite-copy",
}
ROOM_PAGES = {
    "/conference/": "pages/conference.js",
    "/chat/": "pages/chat.js",
    "/screen/": "pages/screen.js",
}
IMPORT = re.compile(r"""^\s*import\s[^;]*?from\s+["']([^"']+)["']""", re.MULTILINE)


class PageOutline(HTMLParser):
    """What the tests look at in a page: ids, labels, scripts, links, inline handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.label_targets: set[str] = set()
        self.scripts: list[dict[str, str | None]] = []
        self.script_bodies: list[str] = []
        self.links: set[str] = set()
        self.inline_handlers: list[str] = []
        self.tags_by_id: dict[str, str] = {}
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if element_id := attributes.get("id"):
            self.ids.append(element_id)
            self.tags_by_id[element_id] = tag
        if tag == "label" and attributes.get("for"):
            self.label_targets.add(str(attributes["for"]))
        if tag == "script":
            self.scripts.append(attributes)
            self._in_script = True
        if tag == "a" and attributes.get("href"):
            self.links.add(str(attributes["href"]))
        self.inline_handlers += [name for name in attributes if name.startswith("on")]

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.script_bodies.append(data)


def outline(path: str) -> PageOutline:
    response = Client().get(path)
    assert response.status_code == 200, path
    assert response["Content-Type"].startswith("text/html")
    parsed = PageOutline()
    parsed.feed(response.content.decode())
    return parsed


def served_script(url: str) -> str:
    """A static file as the app serves it (whitenoise), checked to be a JavaScript module."""
    response = Client().get(url)
    assert response.status_code == 200, url
    # Browsers refuse module scripts of any other MIME type.
    assert response["Content-Type"].split(";")[0] == "text/javascript", url
    return b"".join(response.streaming_content).decode()  # type: ignore[union-attr]


@pytest.mark.parametrize("path", ROOM_PAGES)
def test_room_page_has_every_driven_element_once(path: str) -> None:
    page = outline(path)
    missing = ROOM_PAGE_IDS - set(page.ids)
    assert not missing, f"{path} lacks {sorted(missing)}"
    duplicated = {element_id for element_id in page.ids if page.ids.count(element_id) > 1}
    assert not duplicated, f"{path} repeats {sorted(duplicated)}"
    assert page.tags_by_id["local-video"] == "video"
    assert page.tags_by_id["chat-log"] in {"ol", "ul"}
    assert page.tags_by_id["join"] == "button"
    assert ("share" in page.ids) is (path == "/screen/")


@pytest.mark.parametrize("path", ROOM_PAGES)
def test_room_page_fields_are_labelled(path: str) -> None:
    page = outline(path)
    for field in ("login", "record", "chat-input", "chat-to"):
        assert field in page.label_targets, f"{path}: #{field} has no <label for>"


@pytest.mark.parametrize(("path", "script"), ROOM_PAGES.items())
def test_room_page_loads_only_its_module_script(path: str, script: str) -> None:
    page = outline(path)
    # No inline code anywhere: the pages work under a strict Content-Security-Policy.
    assert page.script_bodies == []
    assert page.inline_handlers == []
    assert page.scripts == [{"type": "module", "src": f"/static/{script}"}]


@pytest.mark.parametrize("script", sorted(set(ROOM_PAGES.values())))
def test_module_imports_resolve_to_served_files(script: str) -> None:
    """Follow every relative import from a page's entry module: each must be a served module."""
    pending = [PurePosixPath(script)]
    seen: set[PurePosixPath] = set()
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        seen.add(module)
        assert finders.find(str(module)), f"{module} is not a static file"
        source = served_script(f"/static/{module}")
        for target in IMPORT.findall(source):
            assert target.startswith("."), f"{module} imports {target!r}: pages load no outside code"
            pending.append(PurePosixPath(_normalize(module.parent / target)))
    assert PurePosixPath("roomapi.js") in seen
    assert PurePosixPath("pages/room-page.js") in seen


def _normalize(path: PurePosixPath) -> str:
    parts: list[str] = []
    for part in path.parts:
        if part == "..":
            parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts)


def test_sdk_exports_the_reference_shape() -> None:
    source = served_script("/static/roomapi.js")
    for name in ("RoomApi", "SESSION_STATUS", "ROOM_EVENT", "STREAM_STATUS"):
        assert re.search(rf"^export const {name}\b", source, re.MULTILINE), name
    for method in (
        "getParticipants()",
        "getStreams()",
        "play(display)",
        "publish({",
        "muteAudio()",
        "unmuteAudio()",
        "muteVideo()",
        "unmuteVideo()",
        "sendMessage(text)",
        "async leave()",
        "setCodecPreferences",
        "resume",
    ):
        assert method in source, method


def test_landing_links_every_page_and_the_records() -> None:
    page = outline("/")
    assert {"/conference/", "/chat/", "/screen/", "/records/"} <= page.links


def test_stylesheet_and_icon_are_served() -> None:
    page = Client().get("/conference/").content.decode()
    for asset in ("/static/site.css", "/static/favicon.svg"):
        assert asset in page
        assert Client().get(asset).status_code == 200, asset


MODERATION_IDS = {"moderation", "lock-room", "end-room", "guest-invite-copy", "guest-invite", "room-locked"}


class MainData(HTMLParser):
    """The data-* attributes of the room page's <main>: what its script reads before joining."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, str] = {}
        self.hidden_ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "main":
            self.data = {name: value or "" for name, value in attrs if name.startswith("data-")}
        if "hidden" in attributes and attributes.get("id"):
            self.hidden_ids.add(str(attributes["id"]))


def main_data(client: Client, path: str) -> MainData:
    response = client.get(path)
    assert response.status_code == 200
    parsed = MainData()
    parsed.feed(response.content.decode())
    return parsed


@pytest.mark.django_db
@pytest.mark.parametrize("path", ROOM_PAGES)
def test_room_page_tells_its_script_how_to_get_a_token(path: str, settings) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import User

    settings.ROOM_AUTH = "token"
    settings.API_KEYS = {"k": "s" * 40}
    client = Client(enforce_csrf_checks=True)
    page = main_data(client, path)
    # The moderator menu is there, hidden until the session's grants say roomAdmin.
    assert set(outline(path).ids) >= MODERATION_IDS
    assert "moderation" in page.hidden_ids
    assert page.data["data-room-auth"] == "token"
    assert page.data["data-tokens"] == "true"
    assert page.data["data-user"] == ""
    assert page.data["data-token-url"] == "/api/token"
    assert page.data["data-invites-url"] == "/api/invites"
    # The page posts with the CSRF cookie's token in a header.
    assert client.cookies["csrftoken"].value
    assert page.data["data-csrf-token"]

    client.force_login(User.objects.create_user("alice"))
    assert main_data(client, path).data["data-user"] == "alice"


@pytest.mark.django_db
def test_room_page_in_open_mode_without_keys_joins_with_a_login_as_ever(settings) -> None:  # type: ignore[no-untyped-def]
    settings.ROOM_AUTH = "open"
    settings.API_KEYS = {}
    page = main_data(Client(), "/conference/")
    assert (page.data["data-room-auth"], page.data["data-tokens"]) == ("open", "false")


@pytest.mark.django_db
def test_people_log_in_on_the_login_page_and_come_back_to_their_room() -> None:
    from django.contrib.auth.models import User

    User.objects.create_user("bob", password="a-long-password-1")
    client = Client()
    login_page = client.get("/conference/?roomName=weekly").content.decode()
    assert 'href="/login/?next=/conference/%3FroomName%3Dweekly"' in login_page
    assert client.get("/login/").status_code == 200
    wrong = client.post("/login/", {"username": "bob", "password": "nope", "next": "/conference/?roomName=weekly"})
    assert "did not match" in wrong.content.decode()
    credentials = {"username": "bob", "password": "a-long-password-1", "next": "/conference/?roomName=weekly"}
    response = client.post("/login/", credentials)
    assert response.status_code == 302 and response["Location"] == "/conference/?roomName=weekly"
    assert 'id="account-name">bob<' in client.get("/conference/").content.decode()


def test_sdk_has_the_moderation_and_token_methods() -> None:
    source = served_script("/static/roomapi.js")
    for method in ("async kick(name)", "async lock(locked", "async end()", "async mute({ audio, video }"):
        assert method in source, method
    for method in ("async refresh(token)", "grants()", "expires()"):
        assert method in source, method
    for event in ("LOCKED", "KICKED", "MODERATED"):
        assert re.search(rf'^\s+{event}: "{event}",$', source, re.MULTILINE), event
