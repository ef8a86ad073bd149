"""Apps depend one way: agents is the runtime, and the apps built on it (approvals, demo systems,
traces, memory, costs) register into its hooks. The runtime imports none of them, at module level or inside a
function. To hold the runtime to another app, add its name to BUILT_ON_THE_RUNTIME."""

import ast
from collections.abc import Iterator
from pathlib import Path

from console.devstack import ROOT

RUNTIME = ROOT / "agents"
BUILT_ON_THE_RUNTIME = ("approvals", "demo", "traces", "memory", "costs", "webhooks", "mcp_servers")
APPS = ("console", "agents", *BUILT_ON_THE_RUNTIME)
# The project's wiring: it puts the apps together (URLs, the API root, sockets, the processes), so it may
# import any of them; the rest of console (tenancy, access, audit) is the base every app stands on.
WIRING = {"console/urls.py", "console/api.py", "console/routing.py", "console/asgi.py", "console/celery.py",
          "console/settings.py", "console/context_processors.py", "console/management"}


def runtime_files() -> list[Path]:
    return app_files(RUNTIME)


def app_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*.py") if "migrations" not in path.relative_to(folder).parts)


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) for every import in the file, however deeply nested, and every
    importlib.import_module / __import__ of a literal name."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and (getattr(node.func, "attr", None) == "import_module" or getattr(node.func, "id", None) == "__import__")):
            yield node.lineno, node.args[0].value


def test_the_runtime_imports_no_app_built_on_it():
    wrong = [f"{path.relative_to(ROOT)}:{line} imports {module}"
             for path in runtime_files() for line, module in imports(path)
             if module.split(".")[0] in BUILT_ON_THE_RUNTIME]
    assert not wrong, "agents must not import the apps built on it:\n" + "\n".join(wrong)


def test_the_check_sees_imports_at_every_depth(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import demo.models as m\nfrom traces import selectors\n\n"
                      "def f():\n    from memory.models import Item\n    import importlib\n"
                      "    importlib.import_module('costs.services')\n")
    assert [module for _, module in imports(sample)] == ["demo.models", "traces", "memory.models", "importlib",
                                                         "costs.services"]
    assert (RUNTIME / "services" / "step.py") in runtime_files()
    assert not any("migrations" in path.parts for path in runtime_files())


def test_no_two_apps_import_each_other_however_indirectly():
    edges: dict[str, set[str]] = {app: set() for app in APPS}
    where: dict[tuple[str, str], str] = {}
    for app in APPS:
        if not (ROOT / app).is_dir():
            continue
        for path in app_files(ROOT / app):
            relative = str(path.relative_to(ROOT))
            if any(relative == wired or relative.startswith(wired + "/") for wired in WIRING):
                continue
            for line, module in imports(path):
                other = module.split(".")[0]
                if other in edges and other != app:
                    edges[app].add(other)
                    where.setdefault((app, other), f"{relative}:{line}")

    def cycle_from(app, trail):
        for other in sorted(edges[app]):
            if other in trail:
                return [*trail[trail.index(other):], other]
            if found := cycle_from(other, [*trail, other]):
                return found
        return None

    for app in APPS:
        if cycle := cycle_from(app, [app]):
            steps = [f"{a} → {b} ({where[(a, b)]})" for a, b in zip(cycle, cycle[1:])]
            raise AssertionError("apps import each other in a cycle:\n" + "\n".join(steps))
