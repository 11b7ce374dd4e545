"""Packaging and the one-way import rule."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_import_rule_holds():
    lint = Path(sys.executable).with_name("lint-imports")
    assert lint.exists() or shutil.which("lint-imports"), "import-linter is part of the test install"
    proc = subprocess.run([str(lint if lint.exists() else "lint-imports")], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_cli_and_programs_are_mapped_into_the_package(tmp_path):
    probe = (
        "import importlib.util, squall.cli, squall.programs;"
        "print(squall.cli.__file__); print(squall.programs.__file__);"
        "print(importlib.util.find_spec('cli'), importlib.util.find_spec('programs'))"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True)
    cli_file, programs_file, top_level = out.stdout.splitlines()
    assert Path(cli_file).parent == REPO / "cli"
    assert Path(programs_file).parent == REPO / "programs"
    assert top_level == "None None"


def test_cli_start_up_imports_no_heavy_library(tmp_path):
    probe = (
        "import sys, squall.cli.main;"
        "print(sorted(m for m in ('pydantic', 'rich', 'yaml', 'pulumi', 'ansible_runner', 'fabric') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_design_card_folders_each_say_what_lives_there():
    for folder in ("stacks", "roles", "inventories", "templates", "programs", "cli", "server", "api", "tests"):
        note = REPO / folder / "README.md"
        assert note.exists() and note.read_text().strip(), folder
    assert "stackConfigDir: stacks" in (REPO / "Pulumi.yaml").read_text()


def test_nothing_outside_the_cli_imports_it():
    import ast

    for folder in ("squall", "programs"):
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                assert not any(n == "squall.cli" or n.startswith("squall.cli.") for n in names), path


def test_ci_runs_the_readme_test_command_verbatim():
    readme = (REPO / "README.md").read_text()
    blocks = [b.split("```")[0].strip() for b in readme.split("```sh\n")[1:]]
    setup = [b for b in blocks if b.startswith("python3 -m venv")]
    assert len(setup) == 2, "the README has exactly two set-up commands"
    assert "squall job run examples/wind-stats/job.yaml" in setup[0]
    assert setup[1] in (REPO / ".ci" / "run").read_text()


def test_the_core_knows_nothing_of_the_web_framework_nor_the_server():
    """The server turns HTTP into core calls; the core (and the CLI) never import it or FastAPI."""
    import ast

    web = ("fastapi", "starlette", "uvicorn", "squall.server")
    for folder in ("squall", "programs", "cli"):
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                if path.name == "server.py" and folder == "cli":  # the command that starts it
                    continue
                assert not any(n == w or n.startswith(w + ".") for n in names for w in web), path


def test_the_core_has_no_import_cycle():
    """Every import counts, those inside functions too (they hid five cycles): the modules of ``squall`` form
    no cycle, so each folder can be read from the bottom up."""
    import grimp

    graph = grimp.build_graph("squall", include_external_packages=False)
    order, low, on_stack, stack, cycles = {}, {}, set(), [], []

    def visit(module: str) -> None:  # Tarjan's strongly connected components
        order[module] = low[module] = len(order)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in order:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], order[imported])
        if low[module] == order[module]:
            component = []
            while not component or component[-1] != module:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for module in sorted(graph.modules):
        if module not in order:
            visit(module)
    assert cycles == []
