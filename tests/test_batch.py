"""Batch analysis end to end on real files: a folder with photos, a video and a broken file through one
process, two worker processes, the Python API and a Dask cluster of two worker processes started here (all
must give the same rows); a run killed with SIGKILL and resumed (no file lost, no row twice)."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, run_cli
from PIL import Image

from fer.evaluation.scenes import write_clip

#: the shipped model as ONNX: loads in a second in each worker (the .pkl's rows are the same, tested elsewhere)
MODEL = str(ROOT / "exports" / "fer2013_effnet_lite0.onnx")
KEYS = ["file", "frame", "face_id"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory, astronaut) -> Path:
    """Two photos with a face, one without, a broken "photo" and a 2-s video (one face, a cut, two faces)."""
    from skimage import data

    folder = tmp_path_factory.mktemp("batch") / "collection"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(astronaut).save(folder / "astronaut.jpg")
    Image.fromarray(astronaut[:300, 60:360]).save(folder / "sub" / "crop.png")
    Image.fromarray(data.chelsea()).save(folder / "sub" / "cat.png")
    (folder / "sub" / "broken.jpg").write_bytes(b"not a jpeg" * 20)
    write_clip(folder / "scene.mp4", 320, 240, 20, 10)
    return folder


def read_rows(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, na_values=[""]).sort_values(KEYS).reset_index(drop=True)


def assert_same_rows(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """The same files, frames, face ids, boxes and labels; probabilities to 1e-4 (thread counts may differ)."""
    a, b = (df.sort_values(KEYS).reset_index(drop=True) for df in (a, b))
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    exact = [c for c in a.columns if not a[c].dtype.kind == "f" or c in ("time_s",)]
    pd.testing.assert_frame_equal(a[exact], b[exact])
    pd.testing.assert_frame_equal(a.drop(columns=exact), b.drop(columns=exact), atol=1e-4, check_exact=False)


def analyze(folder: Path, csv_path: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    args = ["-m", "fer.analyze", str(folder), "--csv", str(csv_path), "--model", MODEL, "--quiet", *extra]
    if env is None:
        return run_cli(*args, check=False)
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env})


@pytest.fixture(scope="module")
def single(folder, tmp_path_factory) -> Path:
    """The single-process run: the reference the others must equal."""
    out = tmp_path_factory.mktemp("single") / "faces.csv"
    result = analyze(folder, out, "--workers", "1", "--json", str(out.with_suffix(".json")))
    assert result.returncode == 1 and "Traceback" not in result.stderr  # 1: the broken file failed
    return out


def test_one_process_reads_photos_and_the_video_and_lists_the_broken_file(single, folder):
    rows = read_rows(single)
    assert list(rows.columns[:6]) == ["file", "frame", "time_s", "face_id", "x", "y"]
    by_file = rows.groupby("file")
    assert set(by_file.groups) == {str(folder / "astronaut.jpg"), str(folder / "sub" / "crop.png"),
                                   str(folder / "scene.mp4")}  # the cat has no face, the broken file failed
    photo = rows[rows.file == str(folder / "astronaut.jpg")].iloc[0]
    assert (photo.frame, photo.face_id, photo.label) == (0, 1, "happy") and np.isnan(photo.time_s)
    video = rows[rows.file == str(folder / "scene.mp4")]
    assert sorted(set(video.frame)) == [f for f in range(20) if not 8 <= f < 12] and video.face_id.nunique() == 3
    assert video.time_s.max() == pytest.approx(1.9, abs=0.01)
    failures = list(csv.DictReader(open(single.with_name("faces.failures.csv"))))
    assert [(Path(f["file"]).name, "not an image file" in f["error"]) for f in failures] == [("broken.jpg", True)]
    files = {Path(f["file"]).name: f for f in json.loads(single.with_suffix(".json").read_text())["files"]}
    assert files["cat.png"]["faces"] == [] and "error" in files["broken.jpg"]
    assert files["scene.mp4"]["video"]["complete"]


def test_two_worker_processes_give_the_same_rows(single, folder, tmp_path):
    out = tmp_path / "faces.csv"
    result = analyze(folder, out, "--workers", "2", "--threads", "1")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert_same_rows(read_rows(out), read_rows(single))
    assert (tmp_path / "faces.failures.csv").read_text() == single.with_name("faces.failures.csv").read_text()
    again = analyze(folder, out, "--workers", "2")  # nothing already written is replaced unasked
    assert again.returncode == 2 and "already exists" in again.stderr and "--resume" in again.stderr


def test_python_api_many_files_equal_the_single_file_calls(folder, tmp_path):
    import fer

    m = fer.load(MODEL)
    listing = tmp_path / "list.txt"
    listing.write_text(f"# photos and a video\n{folder / 'astronaut.jpg'}\n\n{folder / 'sub'}\n{folder / 'scene.mp4'}\n"
                       "missing.png\n")
    here = m.analyze_many([], files_from=[listing])
    assert [Path(f["file"]).name for f in here.attrs["failures"]] == ["missing.png", "broken.jpg"]
    assert_same_rows(m.analyze_many([], files_from=[listing], workers=2), here)
    video = m.video(folder / "scene.mp4").assign(file=str(folder / "scene.mp4"))
    assert_same_rows(here[here.file.str.endswith("scene.mp4")], video[here.columns])
    (face,) = m.analyze(folder / "astronaut.jpg")
    photo = here[here.file.str.endswith("astronaut.jpg")].iloc[0]
    assert (photo.x, photo.y, photo.label) == (face.box.x, face.box.y, face.label)
    videos = m.video_many(folder, workers=2, csv=tmp_path / "videos.csv")  # folders: videos only
    assert set(videos.file) == {str(folder / "scene.mp4")} and len(read_rows(tmp_path / "videos.csv")) == len(videos)


def test_unknown_list_and_no_inputs_are_one_line_errors(tmp_path):
    missing = run_cli("-m", "fer.analyze", "--files-from", str(tmp_path / "nope.txt"), check=False)
    assert missing.returncode == 2 and missing.stderr.startswith("error: list of paths")
    assert "Traceback" not in missing.stderr
    empty = run_cli("-m", "fer.video", str(tmp_path), "--csv", str(tmp_path / "t.csv"), check=False)
    assert empty.returncode == 2 and "no videos found" in empty.stderr
    resume = run_cli("-m", "fer.video", str(tmp_path), "--out", str(tmp_path), "--resume", check=False)
    assert resume.returncode == 2 and "--resume continues a table" in resume.stderr


def progress_lines(table: Path) -> list[dict]:
    log = table.with_name(f"{table.stem}.progress.jsonl")
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.fixture(scope="module")
def photos(astronaut, tmp_path_factory) -> Path:
    """80 random crops and scales of the astronaut, each with her face, and a broken PNG."""
    rng = np.random.default_rng(0)
    photos = tmp_path_factory.mktemp("many") / "photos"
    photos.mkdir()
    for i in range(80):
        x, y, size = rng.integers(0, 120), rng.integers(0, 40), rng.integers(260, 380)
        crop = Image.fromarray(astronaut[y:y + size, x:x + size])
        crop.resize((int(size * rng.uniform(0.6, 1.2)),) * 2).save(photos / f"p{i:03d}.jpg")
    (photos / "zz_broken.png").write_bytes(b"\x89PNG broken")
    return photos


def test_a_killed_run_resumes_without_losing_or_repeating_rows(photos, tmp_path):
    table = tmp_path / "faces.csv"
    command = [sys.executable, "-m", "fer.analyze", str(photos), "--csv", str(table), "--model", MODEL, "--quiet",
               "--workers", "2", "--threads", "1"]
    run = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while len(progress_lines(table)) < 10 and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        os.killpg(run.pid, signal.SIGKILL)  # the driver and its two workers, mid-run
        run.wait()
    done_before = progress_lines(table)
    assert 10 <= len(done_before) < 81, "the run was not killed midway"
    with open(table, "a") as f:  # what a kill in the middle of writing a file's rows leaves: a torn row
        f.write(f"{photos / 'p079.jpg'},0,,1,12,3")
    resumed = subprocess.run([*command, "--resume"], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 1 and "Traceback" not in resumed.stderr  # 1: the broken file
    assert f"{len([e for e in done_before if e['status'] != 'failed'])} of 81 files already done" in resumed.stderr
    rows = read_rows(table)
    assert not rows.duplicated(KEYS).any() and set(rows.file) == {str(p) for p in photos.glob("p*.jpg")}
    reference = tmp_path / "reference.csv"
    assert analyze(photos, reference, "--workers", "2").returncode == 1
    assert_same_rows(rows, read_rows(reference))
    finished = progress_lines(table)
    assert len({e["file"] for e in finished}) == len(finished) == 81
    failures = list(csv.DictReader(open(tmp_path / "faces.failures.csv")))
    assert [Path(f["file"]).name for f in failures] == ["zz_broken.png"]


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """A Dask scheduler and one `dask worker` with two worker processes of one thread, as on a real cluster."""
    pytest.importorskip("distributed", reason='the cluster engine needs pip install -e ".[cluster]"')
    work = tmp_path_factory.mktemp("dask")
    scheduler_file = work / "scheduler.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--port", "0",
                                 "--no-dashboard", "--scheduler-file", str(scheduler_file)],
                                cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        started.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file",
                                         str(scheduler_file), "--nworkers", "2", "--nthreads", "1", "--no-dashboard"],
                                        cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client

        deadline = time.monotonic() + 120
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        for process in reversed(started):
            process.terminate()
            process.wait(timeout=30)


def test_the_same_commands_run_on_a_dask_cluster(dask_cluster, single, folder, tmp_path):
    out = tmp_path / "faces.csv"
    result = analyze(folder, out, "--address", dask_cluster)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert_same_rows(read_rows(out), read_rows(single))
    assert "broken.jpg" in (tmp_path / "faces.failures.csv").read_text()
    # fer.video, pointed at the cluster by Dask's own environment variable
    videos = tmp_path / "videos.csv"
    result = subprocess.run([sys.executable, "-m", "fer.video", str(folder), "--csv", str(videos), "--model", MODEL,
                             "--engine", "dask"], cwd=ROOT, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "DASK_SCHEDULER_ADDRESS": dask_cluster})
    assert result.returncode == 0, result.stderr
    assert f"on the Dask cluster at {dask_cluster} (2 worker processes)" in result.stderr
    reference = read_rows(single)
    assert_same_rows(read_rows(videos), reference[reference.file.str.endswith(".mp4")])


def test_threads_reach_onnxruntime_opencv_and_torch():
    code = ("import cv2, torch\n"
            "from fer.serving.batch import use_threads\n"
            "from fer.serving.onnx_predict import OnnxFacePredictor\n"
            "use_threads(1)\n"
            f"p = OnnxFacePredictor.load({MODEL!r})\n"
            "threads = p.session.get_session_options().intra_op_num_threads\n"
            "print(threads, cv2.getNumThreads(), torch.get_num_threads())\n")
    assert run_cli("-c", code).stdout.split() == ["1", "1", "1"]


def process_group_ends(group: int, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    os.killpg(group, signal.SIGKILL)  # leave nothing running after a failed test
    return False


def test_ctrl_c_stops_the_workers_and_the_run_resumes(photos, tmp_path):
    table = tmp_path / "faces.csv"
    command = [sys.executable, "-m", "fer.analyze", str(photos), "--csv", str(table), "--model", MODEL,
               "--workers", "2", "--threads", "1", "--quiet"]
    # as from a terminal: Ctrl-C's default disposition, even when this test runs under a shell's background job
    # (which starts everything with SIGINT ignored, so Python would install no KeyboardInterrupt handler)
    run = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 300
    while not progress_lines(table) and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)  # interrupt at the first finished file: the other 80 are still to come
    os.killpg(run.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group, workers included
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 130 and "Traceback" not in stderr and "--resume continues" in stderr
    assert process_group_ends(run.pid, within_s=20)  # no worker process left behind
    resumed = run_cli(*command[1:], "--resume", check=False)
    rows = read_rows(table)
    assert resumed.returncode == 1 and len(rows) == 80 and not rows.duplicated(KEYS).any()


def test_pipes_devices_and_broken_links_are_failures_never_read(folder, tmp_path):
    """Issue 32: fer.analyze skipped a FIFO, a dangling symlink and a symlink to /dev/zero without a word. Each is
    now a failure of the run, listed with its reason, and nothing waits on the pipe or reads /dev/zero."""
    odd = tmp_path / "odd"
    odd.mkdir()
    os.mkfifo(odd / "pipe.jpg")
    (odd / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (odd / "zero.jpg").symlink_to("/dev/zero")
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(odd / "plain.png")
    out = tmp_path / "faces.csv"
    result = analyze(odd, out, "--workers", "1")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    failures = {Path(r["file"]).name: r["error"] for r in csv.DictReader(open(tmp_path / "faces.failures.csv"))}
    assert failures == {"gone.png": f"{odd / 'gone.png'}: a broken symbolic link",
                        "pipe.jpg": f"{odd / 'pipe.jpg'}: not a regular file (a named pipe)",
                        "zero.jpg": f"{odd / 'zero.jpg'}: not a regular file (a character device behind a symbolic link)"}
    assert "3 files failed" in result.stderr


def children_of(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; only its parent's wait is missing


def test_workers_end_when_the_driver_is_killed(photos, tmp_path):
    """Issue 32: after `kill -9` of fer.analyze --workers 2, its workers ran on with parent PID 1. They now end
    within seconds of the driver, whatever ended it."""
    table = tmp_path / "faces.csv"
    run = subprocess.Popen([sys.executable, "-m", "fer.analyze", str(photos), "--csv", str(table), "--model", MODEL,
                            "--quiet", "--workers", "2", "--threads", "1"], cwd=ROOT,
                           env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not progress_lines(table) and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # the workers are busy with files
        workers = children_of(run.pid)
        assert len(workers) >= 2, "the workers did not start"
        os.kill(run.pid, signal.SIGKILL)  # the driver alone: no Ctrl-C to the group, no clean-up
        run.wait()
        deadline = time.monotonic() + 15
        while any(alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [w for w in workers if alive(w)]
        assert not left, f"workers {left} outlived the driver"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)  # leave nothing running after a failed test
