"""The layering rules of ARCHITECTURE.md, checked on the source (ast; nothing imported):
no import cycle between bsattack modules; Click only in the command layer; madry_models
depends on nothing in bsattack; command modules do not import each other; the library never
imports pipelines, report or commands; commands import only pipelines, report, the shared
command modules and errors; names are looked up at the command boundary only (get_spec,
resolve_checkpoint); nothing imports bench/; every test module lives in the tests/ sub-folder
of the code it tests and imports no other test module (nor conftest)."""
import ast
import os
import sys

from support import ROOT

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
    assert "bsattack.datasets" in edges["bsattack.data"]
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


PIPELINE_MODULES = {"bsattack.experiment", "bsattack.challenge_attack",
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


# below the commands, the modules that may turn a name into what it names: the registries
# themselves, and for a data set the worker's side of a parallel.Job (Models.get), since a job
# carries the name to another process
NAME_LOOKUPS_ALLOWED = {"get_spec": {"bsattack.datasets", "bsattack.parallel"},
                        "resolve_checkpoint": {"bsattack.manifest"}}


def calls(path, name):
    """Lines of ``path`` that call ``name`` (as a bare name or an attribute)."""
    with open(path) as handle:
        tree = ast.parse(handle.read(), path)
    return sorted(node.lineno for node in ast.walk(tree) if isinstance(node, ast.Call)
                  and name in (getattr(node.func, "id", None), getattr(node.func, "attr", None)))


def test_call_finder_finds_planted_calls(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("from bsattack.datasets import get_spec\nget_spec('a')\n"
                    "def f(datasets):\n    return datasets.get_spec('b'), get_spec\n")
    assert calls(str(path), "get_spec") == [2, 4]


def test_names_are_resolved_at_the_command_boundary():
    """Pipelines, report and library take the DatasetSpec and the resolved checkpoint the
    commands made; none of them looks a data set or checkpoint name up again."""
    offenders = {(m, name): calls(p, name) for m, p in modules("bsattack").items()
                 if _layer(m) != "commands" for name, allowed in NAME_LOOKUPS_ALLOWED.items()
                 if m not in allowed}
    assert {k: lines for k, lines in offenders.items() if lines} == {}


def test_nothing_imports_bench():
    offenders = {m for m, p in {**modules("bsattack"), **modules("madry_models"),
                                **modules("tests")}.items()
                 if any(n == "bench" or n.startswith("bench.") for n in imported(p, m))}
    assert offenders == set()


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
        bad = library | outside
        if bad:
            found[m] = sorted(bad)
    assert found == {}


# tests/<folder>/: the code its test modules are about (ARCHITECTURE.md's layers); the
# helpers they share are in tests/support/, the committed data in tests/fixtures/
TEST_FOLDERS = {
    "attacks": ("bsattack/attacks",),
    "commands": ("cli.py", "bsattack/cli.py", "bsattack/commands"),
    "pipelines": ("bsattack/pipelines",) + tuple(
        f"bsattack/{m.rpartition('.')[2]}.py" for m in sorted(PIPELINE_MODULES)),
    "report": ("bsattack/report",),
    "library": ("bsattack",),                   # the other bsattack/*.py modules
    "networks": ("madry_models",),
    "project": ("ARCHITECTURE.md", "pyproject.toml", "docs/API.md"),  # the whole repository
}


def collected_files(tests):
    """Paths (relative to ``tests``) of the files pytest collects as test modules."""
    return sorted(os.path.relpath(os.path.join(folder, name), tests)
                  for folder, _, files in os.walk(tests) for name in files
                  if name.endswith(".py") and (name.startswith("test_")
                                               or name.endswith("_test.py")))


def misplaced_tests(tests):
    """Test modules not directly inside one of the TEST_FOLDERS (at tests/ top level, in
    support/ or fixtures/, in another or a nested folder)."""
    return [path for path in collected_files(tests)
            if len(path.split(os.sep)) != 2 or path.split(os.sep)[0] not in TEST_FOLDERS]


def imports_between_tests(tests):
    """{file: sorted test modules or conftest it imports} for every .py file under ``tests``:
    helpers come from tests/support/ only."""
    local = {os.path.basename(p)[:-3] for p in collected_files(tests)} | {"conftest"}
    found = {}
    for folder, _, files in os.walk(tests):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                bad = {n.split(".")[0] for n in imported(path, name[:-3])} & local
                if bad:
                    found[os.path.relpath(path, tests)] = sorted(bad)
    return found


def test_test_checks_find_planted_offenders(tmp_path):
    for path, text in {"test_top.py": "", "attacks/test_a.py": "from test_b import helper\n",
                       "library/test_b.py": "def helper():\n    import test_top\n",
                       "library/test_c.py": "from conftest import ROOT\n",
                       "elsewhere/test_d.py": "", "attacks/deep/test_e.py": "",
                       "support/helper.py": "from support import ROOT\n"}.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    assert misplaced_tests(str(tmp_path)) == [os.path.join("attacks", "deep", "test_e.py"),
                                              os.path.join("elsewhere", "test_d.py"),
                                              "test_top.py"]
    assert imports_between_tests(str(tmp_path)) == {
        os.path.join("attacks", "test_a.py"): ["test_b"],
        os.path.join("library", "test_b.py"): ["test_top"],
        os.path.join("library", "test_c.py"): ["conftest"]}


def test_every_test_module_is_in_the_folder_of_the_code_it_tests():
    assert {f: [p for p in paths if not os.path.exists(os.path.join(ROOT, p))]
            for f, paths in TEST_FOLDERS.items()} == {f: [] for f in TEST_FOLDERS}
    tests = os.path.join(ROOT, "tests")
    assert misplaced_tests(tests) == []
    names = [os.path.basename(p) for p in collected_files(tests)]
    # no __init__.py in the test folders: pytest imports each test module by its file name
    assert sorted(n for n in set(names) if names.count(n) > 1) == []
    assert len(names) > 40


def test_no_test_module_imports_another_test_module_or_conftest():
    assert imports_between_tests(os.path.join(ROOT, "tests")) == {}
