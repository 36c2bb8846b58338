"""The layering rules of ARCHITECTURE.md, checked on the source (ast; nothing imported):
no import cycle between bsattack modules; Click only in the command layer; madry_models
depends on nothing in bsattack; command modules do not import each other; the library never
imports pipelines, report or commands; commands import only pipelines, report, the shared
command modules and errors; nothing imports bench/."""
import ast
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# modules outside commands/ allowed to import Click: the CLI entry (the group cli.py runs)
CLICK_ALLOWED = {"bsattack.cli"}
# command modules that still import another command module (none)
COMMAND_IMPORTS_ALLOWED = set()
# import cycles broken only by a lazy import inside a function (none)
KNOWN_CYCLES = []
# command modules shared by the others (options, helpers), not commands themselves
SHARED_COMMAND_MODULES = {"bsattack.commands", "bsattack.commands.options",
                          "bsattack.commands.common", "bsattack.commands.attack_options"}


def modules(package):
    """{module name: path} of every .py file under ``package``."""
    found = {}
    for folder, _, files in os.walk(os.path.join(ROOT, package)):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                parts = os.path.relpath(path, ROOT)[:-3].split(os.sep)
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                found[".".join(parts)] = path
    return found


def imported(path, module):
    """Names of the modules ``path`` imports (``from a import b`` yields a.b when that is a
    module, else a), at any depth (lazy imports count)."""
    with open(path) as handle:
        tree = ast.parse(handle.read(), path)
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def graph():
    """{module: set of project modules it imports} for bsattack and madry_models."""
    known = {**modules("bsattack"), **modules("madry_models")}
    return {m: {n for n in imported(p, m) if n in known and n != m} for m, p in known.items()}


def cycles(edges):
    """Every strongly connected component with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_finds_a_planted_cycle():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(edges) == [["a", "b", "c"]] and cycles({"a": {"b"}, "b": set()}) == []


def test_imports_are_resolved_including_lazy_and_package_imports():
    edges = graph()
    assert "bsattack.datasets" in edges["bsattack.models"]
    assert "bsattack.shifts" in edges["bsattack.embed"]
    assert "bsattack.datafiles" in edges["bsattack.idx_data"]


def test_no_import_cycle_in_the_package():
    assert [c for c in cycles(graph()) if c not in KNOWN_CYCLES] == []


def test_click_only_in_the_command_layer():
    offenders = sorted(m for m, p in modules("bsattack").items()
                       if "click" in {n.split(".")[0] for n in imported(p, m)}
                       and not m.startswith("bsattack.commands") and m not in CLICK_ALLOWED)
    assert offenders == []


def test_madry_models_imports_nothing_from_bsattack():
    offenders = {m: sorted(n for n in imported(p, m) if n.split(".")[0] == "bsattack")
                 for m, p in modules("madry_models").items()}
    assert {m: n for m, n in offenders.items() if n} == {}


def test_command_modules_do_not_import_each_other():
    shared = SHARED_COMMAND_MODULES
    edges = {(m, n) for m, targets in graph().items() if m.startswith("bsattack.commands.")
             and m not in shared for n in targets
             if n.startswith("bsattack.commands.") and n not in shared}
    assert edges - COMMAND_IMPORTS_ALLOWED == set()


def test_library_and_report_layers_do_not_import_commands():
    shims = {"bsattack.cli"}         # the CLI entry: the group of all commands
    offenders = {(m, n) for m, targets in graph().items()
                 if not m.startswith("bsattack.commands") and m not in shims
                 for n in targets if n.startswith("bsattack.commands")}
    assert offenders == set()


def test_report_modules_run_nothing():
    """report/ renders results: it does not run attacks, networks or measures."""
    running = {"bsattack.experiment", "bsattack.models", "bsattack.embed", "bsattack.measures",
               "bsattack.challenge_attack", "bsattack.train", "bsattack.detect"}
    allowed = set()
    offenders = {m: sorted(targets & running) for m, targets in graph().items()
                 if m.startswith("bsattack.report") and m not in allowed}
    assert {m: t for m, t in offenders.items() if t} == {}


PIPELINE_MODULES = {"bsattack.experiment", "bsattack.challenge_attack", "bsattack.leaderboard",
                    "bsattack.train"}


def _layer(module):
    if module.startswith("bsattack.commands") or module == "bsattack.cli":
        return "commands"
    if module.startswith("bsattack.pipelines") or module in PIPELINE_MODULES:
        return "pipelines"
    if module.startswith("bsattack.report"):
        return "report"
    return "library"


def test_the_library_never_imports_pipelines_report_or_commands():
    offenders = {(m, n) for m, targets in graph().items() if _layer(m) == "library"
                 for n in targets if _layer(n) != "library"}
    assert offenders == set()


def test_nothing_imports_bench():
    offenders = {m for m, p in {**modules("bsattack"), **modules("madry_models"),
                                **modules("tests")}.items()
                 if any(n == "bench" or n.startswith("bench.") for n in imported(p, m))}
    assert offenders == set()


# library modules command modules still import directly (each to move behind a pipeline or
# the shared options); a new one fails the test below
COMMAND_LIBRARY_IMPORTS_ALLOWED = {
    "bsattack.commands.basic": {"bsattack.data", "bsattack.models"},
    "bsattack.commands.blindspot": {"bsattack.data", "bsattack.datasets", "bsattack.outputs",
                                    "bsattack.paths", "bsattack.shifts"},
    "bsattack.commands.challenge": {"bsattack.attacks", "bsattack.attacks.registry",
                                    "bsattack.challenge", "bsattack.data", "bsattack.outputs"},
    "bsattack.commands.distance": {"bsattack.distance", "bsattack.divergence"},
    "bsattack.commands.fetching": {"bsattack.data", "bsattack.datasets", "bsattack.manifest",
                                   "bsattack.paths"},
    "bsattack.commands.reproduce": {"bsattack.datasets", "bsattack.outputs", "bsattack.paths"},
}
PACKAGES = {"bsattack", "bsattack.pipelines", "bsattack.report", "bsattack.commands"}


def test_commands_import_only_pipelines_report_shared_modules_and_errors():
    """A command parses options, calls a pipeline and prints: no library module (but errors),
    no third-party package but Click."""
    found, edges = {}, graph()
    for m, p in modules("bsattack").items():
        if not m.startswith("bsattack.commands.") or m in SHARED_COMMAND_MODULES:
            continue
        names = imported(p, m)
        library = {n for n in edges[m] if n not in PACKAGES | SHARED_COMMAND_MODULES
                   and n != "bsattack.errors" and _layer(n) == "library"}
        outside = {n.split(".")[0] for n in names} - set(sys.stdlib_module_names) - {
            "click", "bsattack"}
        bad = (library - COMMAND_LIBRARY_IMPORTS_ALLOWED.get(m, set())) | outside
        if bad:
            found[m] = sorted(bad)
    assert found == {}
