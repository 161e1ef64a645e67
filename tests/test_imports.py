"""The architecture, checked by package rather than by hand-kept lists: fer/core and fer/serving (and the public
API at fer's top level) import with torch, fastai and timm unimportable; no module imports another in a loop;
fer/'s top level holds only the public API and the commands; each command answers --help without loading the
training libraries (fast, and no dependency warnings)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import pytest
from conftest import ROOT, run_cli

FER = ROOT / "fer"
#: The packages that serve: they must import where torch, fastai and timm cannot.
SERVING_PACKAGES = ("core", "serving")
#: fer's top level: the public API and the commands (``python -m fer.NAME``), nothing else.
PUBLIC_API = {"__init__", "api", "compat", "exceptions", "fer", "classes"}  # fer, classes: the fer package's module names
COMMANDS = {"analyze", "video", "bench", "evaluate", "finetune", "export", "blend", "personalize", "serve", "web"}
TRAINING_LIBRARIES = ("torch", "fastai", "timm")
CLIS = [("-m", "fer.finetune"), ("-m", "fer.evaluate"), ("-m", "fer.personalize"), ("-m", "fer.export"),
        ("-m", "fer.blend"), ("data_scripts/prepare_fer2013.py",), ("data_scripts/detector_crops.py",)]


def module_name(path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def fer_modules() -> dict[str, object]:
    """Every module of the package: dotted name → its file."""
    return {module_name(p): p for p in sorted(FER.rglob("*.py"))}


def fer_imports(path, modules: dict) -> set[str]:
    """The fer modules a file imports anywhere in its source (top level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "fer":
            names = {f"{node.module}.{a.name}" for a in node.names}
            found |= (names & modules.keys()) or {node.module}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "fer"}
    return found & modules.keys()


def test_no_import_cycles():
    modules = fer_modules()
    graph = {m: fer_imports(p, modules) - {m, "fer"} for m, p in modules.items()}
    state: dict[str, str] = {}

    def visit(module: str, path: tuple[str, ...]) -> None:
        state[module] = "open"
        for dep in graph[module]:
            assert state.get(dep) != "open", f"import cycle: {' → '.join([*path, dep])}"
            if dep not in state:
                visit(dep, (*path, dep))
        state[module] = "done"

    for module in graph:
        if module not in state:
            visit(module, (module,))


def test_the_top_level_holds_only_the_public_api_and_the_commands():
    top = {p.stem for p in FER.glob("*.py")}
    assert top <= PUBLIC_API | COMMANDS, f"fer/ holds modules that belong in a package: {sorted(top - PUBLIC_API - COMMANDS)}"
    assert {p.name for p in FER.iterdir() if p.is_dir() and p.name != "__pycache__"} == {
        "core", "serving", "evaluation", "training", "models"}


def serving_modules() -> list[str]:
    modules = fer_modules()
    return sorted(m for m in modules if m.split(".")[1:2] and m.split(".")[1] in SERVING_PACKAGES) + \
        sorted(f"fer.{m}" if m != "__init__" else "fer" for m in PUBLIC_API if (FER / f"{m}.py").exists())


def test_every_serving_module_imports_with_the_training_libraries_blocked():
    """One subprocess imports every module of fer.core and fer.serving, and the public API, with an import
    hook that makes torch, fastai and timm raise; a module that needs them at import time fails here."""
    code = f"""
import importlib, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {TRAINING_LIBRARIES!r}:
            raise ImportError(f"blocked: {{name}}")
sys.meta_path.insert(0, Block())
failed = []
for module in {serving_modules()!r}:
    try:
        importlib.import_module(module)
    except Exception as e:
        failed.append(f"{{module}}: {{type(e).__name__}}: {{e}}")
print("\\n".join(failed))
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "", f"serving modules that need a training library:\n{result.stdout}"


def test_training_imports_sit_at_the_top_of_the_file():
    """Inside fer.training, imports of fer's own modules are at module level (the lazy imports that keep torch
    out of serving are not needed where torch is always there)."""
    late = []
    for path in (FER / "training").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                late += [f"{path.name}:{n.lineno}" for n in ast.walk(node) if isinstance(n, ast.ImportFrom)
                         and n.module and n.module.split(".")[0] == "fer"]
    assert not late, f"fer imports inside functions in fer/training: {late}"


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
