"""The house rules, checked on every `make test`.

- Import contracts (import-linter, `.importlinter`): pipeline/ uses components/,
  never the reverse; no import cycles between sibling modules; model code and
  component logic free of TFX.
- An AST walk of pipeline/ and components/: no import cycle between any two
  modules, no module over 500 lines.
- The README is the door (under 250 lines, its links resolve); docs/options.md
  is what the parser generates.
"""
import ast
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("pipeline", "components")
MAX_MODULE_LINES = 500
MAX_README_LINES = 250


def _modules():
    out = {}
    for pkg in PACKAGES:
        for dirpath, _, files in os.walk(os.path.join(ROOT, pkg)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(dirpath, name)
                    rel = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                    out[rel[:-len(".__init__")] if rel.endswith(".__init__") else rel] = path
    return out


def _imports(modules):
    """{module: modules of this project it imports}, at any depth of the file (lazy too)."""
    graph = {}
    for mod, path in modules.items():
        tree = ast.parse(open(path, encoding="utf-8").read())
        package = mod if path.endswith("__init__.py") else mod.rpartition(".")[0]
        found = set()
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
                names = [base] + [f"{base}.{a.name}" for a in node.names]
            for name in names:
                while name and name not in modules:
                    name = name.rpartition(".")[0]
                if name and name != mod:
                    found.add(name)
        graph[mod] = found
    return graph


def test_import_contracts_hold():
    lint = os.path.join(os.path.dirname(sys.executable), "lint-imports")
    proc = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "broken" in proc.stdout and "0 broken" in proc.stdout


def test_no_module_of_components_imports_pipeline():
    graph = _imports(_modules())
    up = sorted((m, i) for m, deps in graph.items() if m.startswith("components")
                for i in deps if i.startswith("pipeline"))
    assert up == []


def test_no_import_cycles_between_modules():
    graph = _imports(_modules())
    # Tarjan's strongly connected components; a package's __init__ importing its
    # own submodules is how a package exposes them, not a cycle.
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]

    def edges(m):
        return [d for d in graph[m] if not (d.startswith(m + ".") or m.startswith(d + "."))]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                sccs.append(sorted(scc))

    sys.setrecursionlimit(10000)
    for m in sorted(graph):
        if m not in index:
            visit(m)
    assert sccs == []


def test_modules_stay_under_500_lines():
    long = {m: n for m, path in _modules().items()
            if (n := sum(1 for _ in open(path, encoding="utf-8"))) > MAX_MODULE_LINES}
    assert long == {}


def test_readme_is_short_and_its_links_resolve():
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    assert len(text.splitlines()) < MAX_README_LINES
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    links = re.findall(r"\]\(((?!https?:|#)[^)#\s]+)", prose)
    assert any(link.startswith("docs/") for link in links)
    assert "docs/options.md" in links  # every option: generated from the parser (below)
    missing = [link for link in links if not os.path.exists(os.path.join(ROOT, link))]
    assert missing == []


def test_options_doc_is_what_the_parser_generates():
    from pipeline.cli import options_doc

    with open(os.path.join(ROOT, "docs", "options.md"), encoding="utf-8") as f:
        assert f.read() == options_doc.render(), "docs/options.md is stale: run `make docs`"


def test_every_component_package_has_a_readme():
    for pkg in ("example_gen", "data_gate", "evaluator", "registry", "model"):
        assert os.path.exists(os.path.join(ROOT, "components", pkg, "README.md")), pkg


PATH_MENTION = re.compile(r"(?<![\w/.<-])((?:pipeline|components|tests|bench|docs|data)/"
                          r"[A-Za-z0-9_./-]*[A-Za-z0-9_]\.(?:py|md|csv|json))\b")


def test_every_file_the_code_and_docs_name_exists():
    tracked = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                             capture_output=True, text=True).stdout.split()
    stale = []
    for rel in tracked:
        if not rel.endswith((".py", ".md")) or rel.startswith("bench/results"):
            continue
        path = os.path.join(ROOT, rel)
        if not os.path.exists(path):
            continue
        for lineno, line in enumerate(open(path, encoding="utf-8"), start=1):
            for m in PATH_MENTION.finditer(line):
                if not (os.path.exists(os.path.join(ROOT, m.group(1)))
                        or os.path.exists(os.path.join(os.path.dirname(path), m.group(1)))):
                    stale.append(f"{rel}:{lineno}: {m.group(1)}")
    assert stale == []
