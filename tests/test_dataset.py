"""The data script on tiny CSVs: exact folders, idempotent re-runs, and every bad-row case."""

from __future__ import annotations

import gzip
import re
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from conftest import ROOT, USAGES, csv_lines, run_cli, synthetic_face, write_csv
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fer.core.dataset import N_PIXELS, BadRowError, CsvFormatError, convert_csv, folder_counts, parse_pixels
from fer.core.labels import FER2013_CLASSES


def tree(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*.png")) if p.parent.parent.parent == folder}


def test_cli_converts_counts_plots_and_is_lossless(tiny_csv, tiny_data):
    counts = folder_counts(tiny_data, FER2013_CLASSES)
    assert counts.loc["train"].tolist() == [USAGES["Training"]] * 7
    assert counts.loc["valid"].tolist() == [USAGES["PublicTest"]] * 7
    assert counts.loc["test"].tolist() == [USAGES["PrivateTest"]] * 7
    first = cv2.imread(str(tiny_data / "train" / "angry" / "0.png"), cv2.IMREAD_UNCHANGED)
    assert first.shape == (48, 48) and np.array_equal(first, synthetic_face(0, 0))
    for name in ("class_counts.png", "samples.png", "counts.csv", "source.json"):
        assert (tiny_data / name).stat().st_size > 0


def test_gzip_and_rerun_give_the_same_folder(tmp_path, tiny_csv):
    gz = tmp_path / "tiny.csv.gz"
    gz.write_bytes(gzip.compress(tiny_csv.read_bytes()))
    out = tmp_path / "out"
    convert_csv(gz, out, progress=False)
    before = tree(out)
    (out / "train" / "happy" / "999999.png").write_bytes(b"stale")  # a file from some other run
    (out / "train" / "happy" / ".5.png.tmp").write_bytes(b"half")  # an interrupted write
    report = convert_csv(tiny_csv, out, progress=False)
    assert tree(out) == before
    assert report.removed_stale == 2
    assert not list(out.rglob("*.tmp"))


def test_ferplus_labels(tmp_path):
    lines = csv_lines({"Training": 1, "PublicTest": 1, "PrivateTest": 1})
    n = len(lines) - 1
    votes = ["Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"]
    for i in range(n):
        row = [0] * 10
        row[i % 10] = 10  # majority cycles through the 8 emotions, unknown and NF
        name = "" if i % 10 == 9 else f"fer{i:07d}.png"
        votes.append(f"Training,{name}," + ",".join(map(str, row)))
    ferplus = write_csv(tmp_path / "ferplus.csv", votes)
    report = convert_csv(write_csv(tmp_path / "f.csv", lines), tmp_path / "out", labels="ferplus",
                         ferplus_path=ferplus, progress=False)
    assert report.dropped_ferplus == sum(1 for i in range(n) if i % 10 >= 8)
    assert "contempt" in report.counts.columns and report.counts.to_numpy().sum() == n - report.dropped_ferplus
    assert (tmp_path / "out" / "train" / "neutral" / "0.png").exists()  # row 0: neutral votes


BAD_ROWS = [
    ("0,1 2 3,Training", "expected 2304 pixel values, found 3"),
    ("0," + " ".join(["7"] * 2303 + ["x"]) + ",Training", "'x' is not an integer"),
    ("0," + " ".join(["7"] * 2303 + ["1.5"]) + ",Training", "'1.5' is not an integer"),
    ("0," + " ".join(["7"] * 2303 + ["256"]) + ",Training", "256 is outside 0-255"),
    ("0," + " ".join(["-1"] + ["7"] * 2303) + ",Training", "-1 is outside 0-255"),
    ("9," + " ".join(["7"] * 2304) + ",Training", "unknown emotion 9"),
    ("happy," + " ".join(["7"] * 2304) + ",Training", "emotion 'happy' is not an integer"),
    ("0," + " ".join(["7"] * 2304) + ",Validation", "unknown Usage 'Validation'"),
    ("0," + " ".join(["7"] * 2304), "expected 3 columns, found 2"),
]


@pytest.mark.parametrize("bad, problem", BAD_ROWS)
def test_bad_row_names_line_and_problem_and_writes_nothing(tmp_path, bad, problem):
    lines = csv_lines({"Training": 1, "PublicTest": 0, "PrivateTest": 0})
    lines.insert(4, bad)  # data rows are lines 2.., so this is line 5
    path = write_csv(tmp_path / "bad.csv", lines)
    with pytest.raises(BadRowError) as e:
        convert_csv(path, tmp_path / "out", progress=False)
    assert e.value.line == 5 and problem in str(e.value) and "bad.csv, line 5" in str(e.value)
    assert not (tmp_path / "out").exists()
    report = convert_csv(path, tmp_path / "out", skip_bad_rows=True, progress=False)
    assert len(report.bad_rows) == 1 and report.written == 7


def test_cli_bad_row_message_and_skip(tmp_path):
    lines = csv_lines({"Training": 1, "PublicTest": 0, "PrivateTest": 0})
    lines.insert(2, "0,1 2 3,Training")
    path = write_csv(tmp_path / "bad.csv", lines)
    result = run_cli("data_scripts/prepare_fer2013.py", "--csv", str(path), "--out", str(tmp_path / "o"), check=False)
    assert result.returncode == 2 and "line 3: expected 2304 pixel values, found 3" in result.stderr
    assert "Traceback" not in result.stderr
    result = run_cli("data_scripts/prepare_fer2013.py", "--csv", str(path), "--out", str(tmp_path / "o"),
                     "--skip-bad-rows", "--no-plots")
    assert "skipped 1 bad row(s)" in result.stdout and "wrote 7 images" in result.stdout


def test_cli_whole_file_errors_do_not_suggest_skipping_rows(tmp_path):
    (tmp_path / "cols.csv").write_text("emotion,Usage\n0,Training\n")
    for csv in (tmp_path / "none.csv", tmp_path / "cols.csv"):
        result = run_cli("data_scripts/prepare_fer2013.py", "--csv", str(csv), "--out", str(tmp_path / "o"), check=False)
        assert result.returncode == 2 and f"error: {csv}" in result.stderr and "Nothing was written" in result.stderr
        assert "--skip-bad-rows" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("content, problem", [
    ("", "the file is empty"),
    ("emotion,pixels,Usage\n", "no data rows"),
    ("emotion,Usage\n0,Training\n", "missing column(s) pixels"),
    ("pixels,Usage\n1 2,Training\n", "missing column(s) emotion"),
])
def test_whole_file_problems(tmp_path, content, problem):
    path = tmp_path / "x.csv"
    path.write_text(content)
    with pytest.raises(CsvFormatError, match=re.escape(problem)):
        convert_csv(path, tmp_path / "out", progress=False)


def test_missing_csv_file(tmp_path):
    with pytest.raises(CsvFormatError, match="no such file"):
        convert_csv(tmp_path / "nope.csv", tmp_path / "out", progress=False)


def test_bom_crlf_extra_columns_and_duplicates(tmp_path):
    lines = csv_lines({"Training": 1, "PublicTest": 1, "PrivateTest": 0})
    lines = [line + (",extra" if i else ",Note") for i, line in enumerate(lines)]
    lines.append(lines[1])  # an exact duplicate row
    path = tmp_path / "win.csv"
    path.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8"))
    report = convert_csv(path, tmp_path / "out", progress=False)
    assert report.written == 15 and report.duplicate_rows == 1
    assert report.counts.loc["train", "angry"] == 2


def test_missing_usage_is_an_error_or_a_seeded_split(tmp_path):
    lines = [",".join(l.split(",")[:2]) for l in csv_lines({"Training": 10, "PublicTest": 0, "PrivateTest": 0})]
    path = write_csv(tmp_path / "nousage.csv", lines)
    with pytest.raises(CsvFormatError, match="missing column Usage; pass --random-split"):
        convert_csv(path, tmp_path / "out", progress=False)
    a = convert_csv(path, tmp_path / "a", random_split=True, progress=False).counts
    b = convert_csv(path, tmp_path / "b", random_split=True, progress=False).counts
    assert a.equals(b) and a.to_numpy().sum() == 70 and a.loc["train"].sum() > a.loc["test"].sum() > 0


@pytest.mark.slow
def test_killed_conversion_then_rerun_is_complete_and_exact(tmp_path):
    path = write_csv(tmp_path / "big.csv", csv_lines({"Training": 300, "PublicTest": 0, "PrivateTest": 0}))
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "data_scripts/prepare_fer2013.py", "--csv", str(path), "--out", str(out),
                             "--no-plots"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.rglob("*.png"))) < 200:
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    assert 0 < len(list(out.rglob("*.png"))) < 2100, "the conversion was not interrupted midway"
    run_cli("data_scripts/prepare_fer2013.py", "--csv", str(path), "--out", str(out), "--no-plots")
    files = sorted(out.rglob("*.png"))
    assert len(files) == 2100 and not list(out.rglob("*.tmp"))
    for f in files:
        label, index = FER2013_CLASSES.index(f.parent.name), int(f.stem)
        assert np.array_equal(cv2.imread(str(f), cv2.IMREAD_UNCHANGED), synthetic_face(label, index))


VALID_ROW = st.lists(st.integers(0, 255), min_size=N_PIXELS, max_size=N_PIXELS)
SEPARATORS = st.sampled_from([" ", "  ", "\t"])


LARGE_ROWS = [HealthCheck.large_base_example, HealthCheck.data_too_large, HealthCheck.too_slow]


@settings(max_examples=25, deadline=None, suppress_health_check=LARGE_ROWS)
@given(VALID_ROW, SEPARATORS)
def test_parse_pixels_reads_every_valid_row(values, sep):
    assert np.array_equal(parse_pixels(sep.join(map(str, values))).ravel(), np.array(values, np.uint8))


def mutations(values: list[int]) -> st.SearchStrategy[str]:
    """A valid row made invalid in one way: a value dropped or added, out of range, or not an integer."""
    text = list(map(str, values))
    return st.one_of(
        st.integers(0, N_PIXELS - 1).map(lambda i: text[:i] + text[i + 1:]),
        st.integers(0, 255).map(lambda v: text + [str(v)]),
        st.tuples(st.integers(0, N_PIXELS - 1), st.one_of(st.integers(max_value=-1), st.integers(min_value=256),
                                                           st.integers(min_value=2**63)))
        .map(lambda iv: text[:iv[0]] + [str(iv[1])] + text[iv[0] + 1:]),
        st.tuples(st.integers(0, N_PIXELS - 1), st.sampled_from(["1.5", "x", "1e2", "0x10", "nan", "--1", "½"]))
        .map(lambda it: text[:it[0]] + [it[1]] + text[it[0] + 1:]),
    ).map(" ".join)


@settings(max_examples=50, deadline=None, suppress_health_check=LARGE_ROWS)
@given(VALID_ROW.flatmap(mutations))
def test_parse_pixels_rejects_every_mutated_row_with_a_reason(text):
    with pytest.raises(ValueError, match="pixel value|expected 2304 pixel values"):
        parse_pixels(text)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=30))
def test_parse_pixels_never_crashes_on_junk(text):
    with pytest.raises(ValueError):
        parse_pixels(text)
