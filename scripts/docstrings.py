"""Which public definitions have a docstring: modules, classes, functions and methods whose names do not start
with ``_``, in the packages the API reference shows (``fer`` and ``fer_app``, from this checkout's files).

    python scripts/docstrings.py [--missing] [PATH ...]      # default: fer/ and app/

It prints the share with a docstring and, with ``--missing``, each definition without one (``file:line name``).
"""

from __future__ import annotations

import argparse
import ast
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The folders of the packages the reference shows (app/ is installed as fer_app).
PACKAGES = (ROOT / "fer", ROOT / "app")


@dataclass
class Definition:
    """One public module, class, function or method, and whether it has a docstring."""

    path: Path
    line: int
    name: str
    documented: bool


def is_public(name: str) -> bool:
    return not name.startswith("_")


def definitions(path: Path) -> list[Definition]:
    """The public definitions of one Python file: the module, its top-level classes and functions, and the
    methods of its public classes (properties included; ``__init__`` and other dunders left out)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = [Definition(path, 1, path.stem, ast.get_docstring(tree) is not None)] if is_public(path.stem) or \
        path.name == "__init__.py" else []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and is_public(node.name):
            found.append(Definition(path, node.lineno, node.name, ast.get_docstring(node) is not None))
            if isinstance(node, ast.ClassDef):
                found += [Definition(path, child.lineno, f"{node.name}.{child.name}", ast.get_docstring(child) is not None)
                          for child in node.body
                          if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) and is_public(child.name)]
    return found


def python_files(paths: list[Path]) -> list[Path]:
    """The ``.py`` files of ``paths`` (files or folders, searched recursively), private modules left out."""
    files = []
    for path in paths:
        candidates = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        files += [f for f in candidates if is_public(f.stem) or f.name == "__init__.py"]
    return files


def survey(paths: list[Path] | None = None) -> list[Definition]:
    """Every public definition of ``paths`` (default: :data:`PACKAGES`)."""
    return [d for f in python_files(paths or list(PACKAGES)) for d in definitions(f)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python scripts/docstrings.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="*", type=Path, help="files or folders (default: fer/ and app/)")
    p.add_argument("--missing", action="store_true", help="list the definitions without a docstring")
    args = p.parse_args(argv)
    found = survey(args.paths or None)
    documented = sum(d.documented for d in found)
    if args.missing:
        for d in found:
            if not d.documented:
                print(f"{d.path.relative_to(ROOT) if d.path.is_relative_to(ROOT) else d.path}:{d.line} {d.name}")
    print(f"{documented} of {len(found)} public definitions have a docstring ({documented / max(len(found), 1):.1%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
