"""The documentation a user reads: the README (short, every figure with its source), the docs site (`mkdocs build
--strict`: every page there, no broken link, the API and command references made from the code), and the
docstrings those references show."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT

from scripts.docstrings import survey

README = ROOT / "README.md"
README_MAX_LINES = 300
#: A measured figure: a number with a unit of time, size, rate or share (version numbers and sizes of images,
#: such as 48×48, are not figures).
FIGURE = re.compile(r"(?<![\w.×])\d[\d,]*(?:\.\d+)?\s?(?:%|ms\b|s\b|min\b|MB\b|GB\b|KB\b|frames/s|images/s|faces/s|"
                    r"fps\b|points\b|×(?!\d))")
#: Where figures come from: a results file, the research log, or the suite's figures beside the model.
SOURCE = re.compile(r"docs/results/|docs/runs/|\.suite\.json")
#: Definitions without a docstring in files that other open branches are rewriting now (issues 32, 34 and 36);
#: whoever merges them gives these their docstrings and empties this set.
AWAITING_OTHER_BRANCHES: dict[str, set[str]] = {}


def prose_blocks(markdown: str) -> list[str]:
    """The Markdown's paragraphs, list items and tables (separated by blank lines), fenced code left out."""
    without_code = re.sub(r"^```.*?^```", "", markdown, flags=re.MULTILINE | re.DOTALL)
    return [b for b in re.split(r"\n\s*\n", without_code) if b.strip()]


def unsourced_figures(markdown: str) -> list[str]:
    """The blocks that state a figure but name no file it comes from, in themselves or in the block just before
    (a table's caption)."""
    blocks = prose_blocks(markdown)
    return [block for i, block in enumerate(blocks)
            if FIGURE.search(block) and not SOURCE.search(block) and not (i and SOURCE.search(blocks[i - 1]))]


def test_the_readme_is_short():
    lines = README.read_text().count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines (at most {README_MAX_LINES})"


def test_every_figure_in_the_readme_names_its_source():
    assert unsourced_figures(README.read_text()) == []


def test_the_figure_check_finds_a_figure_without_a_source():
    assert unsourced_figures("It takes 3.4 ms per face.\n\nTrained on 48×48 faces.") == ["It takes 3.4 ms per face."]
    assert unsourced_figures("Measured in docs/results/bench.json:\n\n| a | 3.4 ms |\n|---|---|") == []


def test_the_readme_starts_with_the_two_newcomer_commands_as_ci_runs_them():
    text = README.read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/setup.sh" in ci and "python -m pytest" in ci
    setup, tests = text.index("bash scripts/setup.sh"), text.index("python -m pytest")
    assert setup < tests < len(text) // 4  # near the top


def test_the_readmes_comparison_tables_are_those_of_the_peers_file():
    """The accuracy and speed table against other tools is docs/results/peers.json as benchmarks/peers.py tables it."""
    import json

    from benchmarks import peers

    result = json.loads((ROOT / "docs" / "results" / "peers.json").read_text())
    text = README.read_text()
    assert peers.measured_table(result) in text
    assert peers.published_table(result) in text
    assert "python benchmarks/peers.py" in text


def test_the_readmes_links_to_files_lead_somewhere():
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README.read_text())
    missing = [link for link in links if "://" not in link and not (ROOT / link).exists()]
    assert links and missing == []


def test_every_public_definition_the_reference_shows_has_a_docstring():
    """fer/ and app/ (the API reference shows fer's modules; the command reference the commands' main)."""
    missing = {}
    for d in survey():
        if not d.documented:
            missing.setdefault(d.path.relative_to(ROOT).as_posix(), set()).add(d.name)
    unexpected = {f: names - AWAITING_OTHER_BRANCHES.get(f, set()) for f, names in missing.items()}
    assert {f: n for f, n in unexpected.items() if n} == {}


@pytest.mark.slow
def test_the_docs_site_builds_strictly(tmp_path):
    """mkdocs build --strict: a broken link, a page missing from the nav's files, or a reference that cannot be
    made fails it. The command reference holds every installed command's --help."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    site = tmp_path / "site"
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)], cwd=ROOT,
                           capture_output=True, text=True, timeout=900, check=False,
                           env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert built.returncode == 0, built.stderr[-5000:]
    commands = (site / "reference" / "commands" / "index.html").read_text()
    for usage in ("python -m fer.analyze", "python -m fer.video", "python -m fer.finetune", "fer-serve",
                  "python data_scripts/prepare_fer2013.py"):
        assert f"usage: {usage}" in commands, usage
    api = (site / "reference" / "fer" / "index.html").read_text()
    assert "fer.load" in api and "analyze_many" in api  # made from the docstrings
    for page in ("getting_started", "app", "python_api", "training", "model_card", "evaluation", "deployment",
                 "serve", "personalisation", "batch", "runs", "results", "coming_from_fer"):
        assert (site / page / "index.html").exists(), page
