"""The direction of dependencies: webhooks -> recording -> rooms -> rooms.media, no circles.

Read from the source with ``ast``: every import counts, at module level or
inside a function or an ``if TYPE_CHECKING:`` block alike.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("conference_site", "audit", "ops", "rooms", "recording", "webhooks", "loadtest", "console")


@cache
def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def _imported_names(name: str, path: Path) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            # ``from rooms import events`` imports the module rooms.events;
            # ``from rooms.media.peer import MediaError`` the module rooms.media.peer.
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


@cache
def project_imports() -> dict[str, frozenset[str]]:
    """Module -> the project modules it imports."""
    modules = project_modules()
    graph = {}
    for name, path in modules.items():
        found = set()
        for imported in _imported_names(name, path):
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            if imported and imported != name and imported not in _packages_of(name):
                found.add(imported)
        graph[name] = frozenset(found)
    return graph


def _packages_of(name: str) -> set[str]:
    # Importing ``rooms.media.x`` runs ``rooms/__init__`` and ``rooms/media/__init__``;
    # a module's own enclosing packages are not a dependency of it.
    parts = name.split(".")
    return {".".join(parts[:index]) for index in range(1, len(parts))}


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_media_node_imports_nothing_of_rooms_or_recording() -> None:
    wrong = {
        (module, imported)
        for module, imports in project_imports().items()
        if _inside(module, "rooms.media")
        for imported in imports
        if not _inside(imported, "rooms.media") and (_inside(imported, "rooms") or _inside(imported, "recording"))
    }
    assert not wrong


def test_rooms_never_imports_recording() -> None:
    wrong = {
        (module, imported)
        for module, imports in project_imports().items()
        if _inside(module, "rooms")
        for imported in imports
        if _inside(imported, "recording")
    }
    assert not wrong


def test_nothing_of_rooms_or_recording_imports_webhooks() -> None:
    """Webhooks only listen: rooms and recording send signals and never know who hears them."""
    wrong = {
        (module, imported)
        for module, imports in project_imports().items()
        if not _inside(module, "webhooks")
        for imported in imports
        if _inside(imported, "webhooks")
    }
    assert not wrong


def test_the_audit_trail_imports_nothing_of_the_project() -> None:
    """Everything writes the audit trail; it depends on nothing, so it never closes a circle."""
    wrong = {
        (module, imported)
        for module, imports in project_imports().items()
        if _inside(module, "audit")
        for imported in imports
        if not _inside(imported, "audit")
    }
    assert not wrong


def test_nothing_of_the_server_imports_the_load_test() -> None:
    """The load test is a client of the server's protocol: the server never depends on it."""
    wrong = {
        (module, imported)
        for module, imports in project_imports().items()
        if not _inside(module, "loadtest")
        for imported in imports
        if _inside(imported, "loadtest")
    }
    assert not wrong


def test_the_load_test_uses_of_rooms_only_tokens_and_the_media_tap() -> None:
    """It runs against any server (another host, another version): it shares the token layout and the
    client-side media helpers, nothing of the server's state."""
    used = {
        imported
        for module, imports in project_imports().items()
        if _inside(module, "loadtest")
        for imported in imports
        if not _inside(imported, "loadtest")
    }
    assert used == {"rooms.access_tokens", "rooms.media.peer", "rooms.media.tap"}


def test_the_metrics_import_nothing_of_the_project() -> None:
    """Every layer counts into ops.metrics, down to the media node: it must close no circle."""
    wrong = {
        (module, imported)
        for module, imports in project_imports().items()
        if _inside(module, "ops")
        for imported in imports
        if not _inside(imported, "ops")
    }
    assert not wrong


def test_nothing_imports_the_operator_console() -> None:
    """The live view only reads what rooms and recording keep; none of them knows it."""
    wrong = {
        (module, imported)
        for module, imports in project_imports().items()
        if not _inside(module, "console")
        for imported in imports
        if _inside(imported, "console")
    }
    assert not wrong


def test_no_import_circles() -> None:
    graph = project_imports()
    circles = []
    # Tarjan's strongly connected components: any of more than one module is a circle.
    index: dict[str, int] = {}
    lowest: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(module: str) -> None:
        index[module] = lowest[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph[module]:
            if imported not in index:
                visit(imported)
                lowest[module] = min(lowest[module], lowest[imported])
            elif imported in on_stack:
                lowest[module] = min(lowest[module], index[imported])
        if lowest[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    assert not circles


def test_the_graph_sees_the_imports_it_checks() -> None:
    """The checks above read real edges (a parser that saw none would pass them)."""
    graph = project_imports()
    assert "rooms.media.node" in graph["rooms.streams"] | graph["rooms.media_host"]
    assert "rooms.streams" in graph["rooms.dispatch"]  # ``from rooms import ... streams``
    assert "rooms.media.messages" in graph["rooms.media.node"]  # ``from rooms.media import messages``
    assert "recording.services" in graph["recording.tasks"]
    assert {"rooms.signals", "recording.signals"} <= graph["webhooks.receivers"]


def import_list() -> str:
    """Every import between project modules, one line per importing module."""
    return "\n".join(
        f"{module} → {', '.join(sorted(imports))}" for module, imports in sorted(project_imports().items()) if imports
    )


def test_the_architecture_page_lists_the_imports_the_code_has() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text()
    after = page.split("python -m tests.test_dependencies", 1)[1]
    documented = after.split("```\n", 1)[1].split("\n```", 1)[0]
    assert documented == import_list(), "regenerate it: python -m tests.test_dependencies"


if __name__ == "__main__":
    # The import list of docs/architecture.md: python -m tests.test_dependencies
    print(import_list())
