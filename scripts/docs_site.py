"""MkDocs hooks of the docs site (mkdocs.yml ``hooks:``): pages made at build time from the code, so that no copy
is kept by hand.

- ``reference/commands.md``: every command's ``--help``, as argparse prints it (the ``[project.scripts]`` of
  pyproject.toml, the other ``python -m fer.<tool>`` commands and ``data_scripts/``);
- ``results.md``: the files of ``docs/results/``, each with the command that wrote it when the file says so;
- an index page for each folder of ``docs/results/`` and ``docs/runs/`` that has none, so that a link to a folder
  (which GitHub shows as its files) leads to its files on the site too;
- pages listed under ``extra.pending_pages`` (written on other branches) are left out of the nav until they exist;
- ``<!-- peers tables -->`` in a page becomes the comparison tables of ``docs/results/peers.json``
  (``benchmarks/peers.py``'s own tables, as the README holds them);
- Sphinx roles in docstrings (``:func:`x```) are shown as plain code.

    mkdocs build --strict        # the site, into site/
    mkdocs serve                 # a preview on http://127.0.0.1:8000 that rebuilds on change
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import json
import os
import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
#: ``python -m`` commands of the fer package that have no entry in ``[project.scripts]``: every fer/<tool>.py
#: with a ``main``; the checkout's data scripts come after them.
DATA_SCRIPTS = ROOT / "data_scripts"
#: The width argparse formats help to (it follows $COLUMNS otherwise).
HELP_COLUMNS = "100"


def installed_commands() -> list[tuple[str, str]]:
    """``(command, "module:function")`` of pyproject.toml's ``[project.scripts]``, in its order."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"].get("scripts", {})
    return list(scripts.items())


def module_commands(taken: set[str]) -> list[tuple[str, str]]:
    """``(python -m fer.X, "fer.X:main")`` for each fer/X.py with a ``main`` that no installed command runs."""
    found = []
    for path in sorted((ROOT / "fer").glob("*.py")):
        module = f"fer.{path.stem}"
        if module not in taken and re.search(r"^def main\(", path.read_text(), re.MULTILINE):
            found.append((f"python -m {module}", f"{module}:main"))
    return found


def help_text(target: str | Path) -> str:
    """What ``COMMAND --help`` prints: ``target`` is ``"module:function"`` or a script's path (its ``main``)."""
    if isinstance(target, Path):
        spec = importlib.util.spec_from_file_location(f"_docs_{target.stem}", target)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        main = module.main
    else:
        name, function = target.split(":")
        main = getattr(importlib.import_module(name), function)
    out = io.StringIO()
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_COLUMNS
    try:
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            main(["--help"])
    finally:
        if previous is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = previous
    text = out.getvalue().strip()
    if not text.startswith("usage:"):
        raise RuntimeError(f"{target} --help printed no usage")
    return text


def commands_page() -> str:
    """The command-line reference: every command's ``--help``."""
    installed = installed_commands()
    commands = installed + module_commands({target.split(":")[0] for _, target in installed})
    scripts = [(f"python data_scripts/{p.name}", p) for p in sorted(DATA_SCRIPTS.glob("*.py"))]
    intro = ("Each command's `--help`, as it prints it (this page is made from the argument parsers when the site "
             "is built, by `scripts/docs_site.py`). The installed commands come with the package; the "
             "`python -m fer.…` ones need the training install for training, evaluation and export; the data "
             "scripts run in a checkout.")
    lines = ["# Command-line reference", "", intro, ""]
    for title, items in (("Installed commands", installed), ("Other commands of the package", commands[len(installed):]),
                         ("Data scripts (in a checkout)", scripts)):
        lines += [f"## {title}", ""]
        for command, target in items:
            lines += [f"### `{command}`", "", "```text", help_text(target), "```", ""]
    return "\n".join(lines)


def command_of(path: Path) -> str | None:
    """The command a results file says wrote it (a JSON file's top-level ``command``), if any."""
    if path.suffix != ".json":
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    command = data.get("command") if isinstance(data, dict) else None
    return command if isinstance(command, str) else None


def results_page(docs_dir: Path) -> str:
    """An index of ``docs/results/``: every file, linked, with the command that wrote it where the file says."""
    folder = docs_dir / "results"
    intro = ("Every measurement the README and these pages quote is a file in `docs/results/` (or the research "
             "log's `docs/runs/`), written by a command; the pages name the command beside each figure. This index "
             "is made when the site is built.")
    lines = ["# Results files", "", intro, "", "| file | size | written by (when the file records it) |", "|---|---|---|"]
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(docs_dir).as_posix()
        command = command_of(path)
        size = f"{path.stat().st_size / 1024:,.0f} KB"
        lines.append(f"| [{relative}]({relative}) | {size} | {f'`{command}`' if command else ''} |")
    return "\n".join(lines) + "\n"


#: Folders whose sub-folders get a generated index page (links to a folder lead there).
INDEXED_FOLDERS = ("results", "runs")


def folder_index(folder: Path, docs_dir: Path) -> str:
    """A page listing ``folder``'s files and sub-folders, linked."""
    relative = folder.relative_to(docs_dir).as_posix()
    lines = [f"# {relative}/", "", f"The files of `docs/{relative}/`.", ""]
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        link = f"{path.name}/index.md" if path.is_dir() else path.name
        lines.append(f"- [{path.name}{'/' if path.is_dir() else ''}]({link})")
    return "\n".join(lines) + "\n"


def folders_to_index(docs_dir: Path) -> list[Path]:
    """The folders under :data:`INDEXED_FOLDERS` (themselves included) without an index.md of their own."""
    found = []
    for top in INDEXED_FOLDERS:
        root = docs_dir / top
        if root.is_dir():
            found += [d for d in [root, *sorted(p for p in root.rglob("*") if p.is_dir())]
                      if not (d / "index.md").exists()]
    return found


FOLDER_LINK = re.compile(r"\]\(([^)#\s:]+/)(#[^)]*)?\)")


def link_folders(markdown: str, page_path: str, docs_dir: Path) -> str:
    """Links to a folder of the docs (``](runs/issue20/)``) point at its index page."""
    base = (docs_dir / page_path).parent

    def to_index(match):
        target = (base / match.group(1)).resolve()
        if target.is_dir() and target.is_relative_to(docs_dir.resolve()):
            return f"]({match.group(1)}index.md{match.group(2) or ''})"
        return match.group(0)

    return FOLDER_LINK.sub(to_index, markdown)



PEERS_MARKER = "<!-- peers tables -->"


def peers_tables(docs_dir: Path) -> str:
    """The tables of ``docs/results/peers.json`` as ``benchmarks/peers.py`` writes them."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("peers", ROOT / "benchmarks" / "peers.py")
    peers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(peers)
    result = json.loads((docs_dir / "results" / "peers.json").read_text())
    return f"{peers.measured_table(result)}\n\n{peers.published_table(result)}"


def on_page_markdown(markdown, page, config, **kwargs):
    """Folder links lead to the folders' index pages; the peers marker becomes its tables."""
    if PEERS_MARKER in markdown:
        markdown = markdown.replace(PEERS_MARKER, peers_tables(Path(config.docs_dir)))
    return link_folders(markdown, page.file.src_uri, Path(config.docs_dir))


def drop_pending(nav: list, pending: set[str], docs_dir: Path, log) -> list:
    """``nav`` without the entries of ``pending`` pages whose file is not there yet."""
    kept = []
    for entry in nav:
        if isinstance(entry, dict):
            (title, value), = entry.items()
            if isinstance(value, list):
                value = drop_pending(value, pending, docs_dir, log)
                if value:
                    kept.append({title: value})
                continue
            if value in pending and not (docs_dir / value).exists():
                log(f"pending page not there yet, left out of the nav: {value}")
                continue
        elif isinstance(entry, str) and entry in pending and not (docs_dir / entry).exists():
            continue
        kept.append(entry)
    return kept


def on_config(config, **kwargs):
    """Leave the pending pages that do not exist yet out of the nav."""
    import logging

    pending = set(config.extra.get("pending_pages", []))
    if pending and config.nav:
        log = logging.getLogger("mkdocs.hooks.docs_site").info
        config.nav = drop_pending(config.nav, pending, Path(config.docs_dir), log)
    return config


def on_files(files, config, **kwargs):
    """Add the generated pages."""
    from mkdocs.structure.files import File

    docs_dir = Path(config.docs_dir)
    files.append(File.generated(config, "reference/commands.md", content=commands_page()))
    files.append(File.generated(config, "results.md", content=results_page(docs_dir)))
    for folder in folders_to_index(docs_dir):
        uri = (folder / "index.md").relative_to(docs_dir).as_posix()
        files.append(File.generated(config, uri, content=folder_index(folder, docs_dir)))
    return files


SPHINX_ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|exc|obj|py:\w+):(?=<code>)")


def on_page_content(html, page, **kwargs):
    """Show docstrings' Sphinx roles (``:func:`fer.load```) as their code alone."""
    return SPHINX_ROLE.sub("", html)
