"""The module structure: no import cycles, serving code never loads training code, and each command-line
tool answers --help without loading fastai (fast, and no dependency warnings)."""

from __future__ import annotations

import ast
import json

import pytest

from conftest import ROOT, run_cli

#: what the app, the predictor and the benchmarks run on
SERVING = ["fer.predict", "fer.recognize", "fer.detect", "fer.tracking", "fer.draw", "fer.images", "fer.runtime",
           "fer.card", "fer.feedback"]
#: training-only modules
TRAINING = {"fer.learner", "fer.distill", "fer.finetune", "fer.training", "fer.dataset", "fer.personalize"}
CLIS = [("-m", "fer.finetune"), ("-m", "fer.evaluate"), ("-m", "fer.personalize"), ("data_scripts/prepare_fer2013.py",),
        ("data_scripts/detector_crops.py",)]


def fer_imports(module: str) -> set[str]:
    """The fer modules ``module`` imports anywhere in its source (top level or inside functions)."""
    tree = ast.parse((ROOT / (module.replace(".", "/") + ".py")).read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fer"):
            names = [f"{node.module}.{a.name}" for a in node.names]
            found |= {n for n in names if (ROOT / (n.replace(".", "/") + ".py")).exists()} or {node.module}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("fer.")}
    return found - {"fer"}


def fer_modules() -> list[str]:
    return sorted(f"fer.{p.stem}" for p in (ROOT / "fer").glob("*.py") if p.stem != "__init__")


def test_no_import_cycles():
    graph = {m: fer_imports(m) for m in fer_modules()}

    def visit(module: str, path: tuple[str, ...]) -> None:
        for dep in graph.get(module, ()):
            assert dep not in path, f"import cycle: {' → '.join([*path, dep])}"
            visit(dep, (*path, dep))

    for module in graph:
        visit(module, (module,))


@pytest.mark.parametrize("module", SERVING)
def test_serving_imports_no_training_code(module):
    graph = {m: fer_imports(m) for m in fer_modules()}
    reached, todo = set(), [module]
    while todo:
        for dep in graph.get(todo.pop(), ()):
            if dep not in reached:
                reached.add(dep)
                todo.append(dep)
    assert not reached & TRAINING, f"{module} reaches training code: {sorted(reached & TRAINING)}"


@pytest.mark.parametrize("cli", CLIS, ids=lambda c: c[-1])
def test_help_loads_no_heavy_library(cli):
    code = ("import runpy, sys\n"
            f"sys.argv = [{cli[-1]!r}, '--help']\n"
            "try:\n"
            f"    runpy.{'run_module' if cli[0] == '-m' else 'run_path'}({cli[-1]!r}, run_name='__main__')\n"
            "except SystemExit:\n"
            "    pass\n"
            "import json\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('fastai', 'torch', 'timm'))))\n")
    result = run_cli("-c", code)
    assert "usage:" in result.stdout and json.loads(result.stdout.splitlines()[-1]) == []
    assert "Warning" not in result.stderr
