"""Many photos and videos at once: worker processes on this machine, or a Dask cluster, into one table.

    tasks, missing = collect_inputs(["photos/", "interviews/"], lists=["more.txt"])
    options = JobOptions(ModelSpec(), threads=1)
    with make_engine(workers=2) as engine, BatchTable(Path("faces.csv"), resume=True) as table:
        for outcome in process(tasks, options, engine, table): ...

A task is one whole file. Each worker process loads the model and the face detector once
(:func:`worker_recognizer`) and analyses a photo's faces or a video's tracked faces (:func:`run_task`); a
file that cannot be read is an outcome with its reason, never an exception. The driver appends each file's
rows to the one CSV in a single write when the file is done, then records the file and the table's length
in a progress log beside it, so after a kill ``resume`` cuts the table back to the last recorded length (a
half-written file's rows go) and skips the files recorded as finished: no file lost, no row twice.

Engines: ``InProcessEngine`` (one process, the single-process path), ``PoolEngine`` (``workers`` spawned
processes on this machine) and ``DaskEngine`` (Dask distributed: a running cluster at ``address`` or
``DASK_SCHEDULER_ADDRESS``, else a local cluster of ``workers`` processes; ``pip install -e ".[cluster]"``).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

#: File endings taken as videos when a folder is searched.
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".3gp"})
#: The columns before each face's own (:func:`fer.serving.table.face_columns`); a photo's faces are frame 0, no time,
#: ids 1, 2, ... left to right; a video's are its analysed frames, their times and the tracked face ids.
KEY_COLUMNS = ("file", "frame", "time_s", "face_id")
ENGINES = ("local", "dask")
#: Dask's own setting for the scheduler to connect to, and the environment variable that sets it.
DASK_ADDRESS_KEY, DASK_ENV = "scheduler-address", "DASK_SCHEDULER_ADDRESS"


class BatchError(ValueError):
    """A batch run cannot start or go on (a missing list of paths, a table from another model, no model);
    the message says what and where."""


@dataclass(frozen=True)
class ModelSpec:
    """How each worker loads the model: as :func:`fer.load` (a file path every worker can read)."""

    model: str | None = None
    detector: str = "yunet"
    min_face: int = 0
    score: float | None = None
    min_confidence: float = 0.0
    min_quality: float = 0.0

    @classmethod
    def of(cls, model: str | Path | None = None, detector: str = "yunet", min_face: int = 0,
           score: float | None = None, min_confidence: float = 0.0, min_quality: float = 0.0) -> "ModelSpec":
        """A spec with ``model`` as an absolute path (workers may start in other folders; None: the shipped
        model of each worker's installed package)."""
        return cls(None if model is None else str(Path(model).resolve()), detector, min_face, score,
                   min_confidence, min_quality)

    def load(self):
        """The :class:`fer.serving.recognize.FaceRecognizer` this spec names, loaded in this process."""
        from fer.serving.recognize import FaceRecognizer

        return FaceRecognizer.load(self.model, self.detector, self.min_face, self.score, self.min_confidence,
                                   self.min_quality)


@dataclass(frozen=True)
class Task:
    """One file: ``file`` as the user named it (the table's key), ``path`` absolute (for the workers)."""

    file: str
    path: str
    kind: str  # "photo" or "video"


@dataclass(frozen=True)
class JobOptions:
    """What every task needs: the model, threads per worker process (None: leave as is), every N-th video
    frame, where to write each video's own outputs (annotated video, CSV, plots; None: none), and the
    function that analyses each kind of file (``analyzers[task.kind](recognizer, task, options) -> Outcome``,
    module-level functions, so they reach the workers by name: :func:`photo_outcome` here,
    ``fer.serving.video.video_outcome`` for videos; ``fer.serving.video.batch_analyzers()`` gives both)."""

    spec: ModelSpec = ModelSpec()
    threads: int | None = None
    every: int = 1
    out_dir: str | None = None
    overwrite: bool = False
    analyzers: dict[str, Callable] = field(default_factory=lambda: {"photo": photo_outcome})


@dataclass
class BatchOptions:
    """How many files are analysed together: the one set of options behind ``fer.load().analyze_many`` and
    ``video_many``, ``python -m fer.analyze`` and ``fer.video`` (:func:`fer.serving.cli.add_batch_options`), and
    the engines (:meth:`job` is what each task gets).

    ``workers`` processes here (``threads`` each; default the cores divided by the workers, 1 on a running
    cluster), or Dask (``engine="dask"`` or an ``address``); every ``every``-th video frame; each video's own
    outputs in ``out_dir``; one table in ``csv`` (failures in ``failures``, default beside it), continued with
    ``resume`` or replaced with ``overwrite``; more paths from the text files ``files_from``."""

    workers: int = 1
    threads: int | None = None
    engine: str = "local"
    address: str | None = None
    every: int = 1
    out_dir: Path | None = None
    csv: Path | None = None
    failures: Path | None = None
    resume: bool = False
    overwrite: bool = False
    files_from: list[Path] = field(default_factory=list)

    def check(self) -> None:
        """ValueError naming the option (as the command line spells it) when the options do not fit together."""
        if self.workers < 1:
            raise ValueError(f"--workers {self.workers}: must be 1 or more")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"--threads {self.threads}: must be 1 or more")
        if self.every < 1:
            raise ValueError(f"--every {self.every}: must be 1 or more")
        if self.engine not in ENGINES:
            raise ValueError(f"--engine {self.engine}: choose one of {', '.join(ENGINES)}")
        if self.resume and not self.csv:
            raise ValueError("--resume continues a table: pass the --csv of the run to continue")
        if self.resume and self.overwrite:
            raise ValueError("--resume and --overwrite: choose one")
        if self.failures and not self.csv:
            raise ValueError("--failures goes with --csv")

    @property
    def remote(self) -> bool:
        """Whether the files run on Dask."""
        return self.engine == "dask" or bool(self.address)

    def threads_each(self) -> int:
        """``threads``, else the cores divided by the local workers; 1 on a running cluster (each of its
        worker threads analyses one file)."""
        running_cluster = self.address or (self.engine == "dask" and os.environ.get(DASK_ENV))
        return self.threads or (1 if running_cluster else default_threads(self.workers))

    def job(self, spec: ModelSpec, analyzers: dict[str, Callable]) -> "JobOptions":
        """What every task of this run needs."""
        return JobOptions(spec, self.threads_each(), self.every,
                          str(Path(self.out_dir).resolve()) if self.out_dir else None,
                          self.overwrite or self.resume, analyzers)

    def engine_for(self, recognizer=None):
        """The engine of this run (:func:`make_engine`; one worker runs here, on ``recognizer`` when given)."""
        return make_engine(self.workers, self.address, self.engine, recognizer)

    def table(self) -> "BatchTable | None":
        """The run's table (``csv``), opened to continue or replace as asked; None without one."""
        return BatchTable(Path(self.csv), self.failures, self.resume, self.overwrite) if self.csv else None


@dataclass
class Outcome:
    """One file done: its rows as CSV text (no header; ``columns`` name them), or the reason it failed.
    ``problem``: a video that broke off partway (its rows so far are kept). ``fatal``: the run cannot go on
    (the model does not load). ``line``: one line for the screen; ``detail``: JSON-ready faces or report."""

    file: str
    kind: str
    columns: list[str] | None = None
    text: str = ""
    rows: int = 0
    error: str | None = None
    problem: str | None = None
    fatal: bool = False
    line: str = ""
    detail: dict = field(default_factory=dict)
    seconds: float = 0.0
    frames: int = 0

    @classmethod
    def failed(cls, task: Task, error: str, fatal: bool = False) -> "Outcome":
        """The outcome of a file that could not be analysed, with its one-line message."""
        why = error.removeprefix(f"{task.file}: ")  # error messages name the file first: say it once
        return cls(task.file, task.kind, error=error, fatal=fatal, line=f"{task.file}: FAILED ({why})")

    def as_dict(self) -> dict:
        """The file and its error, or its details, for the JSON report."""
        if self.error:
            return {"file": self.file, "error": self.error}
        return {"file": self.file, **self.detail}


# ---- inputs -----------------------------------------------------------------------------------------------

def kind_suffixes() -> dict[str, frozenset[str]]:
    """The file endings of each kind of file: photos (:data:`fer.core.images.IMAGE_SUFFIXES`) and videos."""
    from fer.core.images import IMAGE_SUFFIXES

    return {"photo": IMAGE_SUFFIXES, "video": VIDEO_SUFFIXES}


def kind_of(path: Path, default: str) -> str:
    """``photo`` or ``video`` by the file's ending; ``default`` for any other ending."""
    suffix = path.suffix.lower()
    return next((kind for kind, suffixes in kind_suffixes().items() if suffix in suffixes), default)


def read_path_list(path: str | Path) -> list[Path]:
    """The paths in a text file, one a line (blank lines and ``#`` comments skipped); relative paths are
    relative to the list's folder. Raises :class:`BatchError` when the list cannot be read."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise BatchError(f"list of paths {path}: cannot be read ({type(e).__name__}: {e})") from None
    entries = [line.strip() for line in lines]
    return [path.parent / entry for entry in entries if entry and not entry.startswith("#")]


def collect_inputs(paths: Iterable[str | Path], lists: Iterable[str | Path] = (),
                   folder_kinds: tuple[str, ...] = ("photo", "video"),
                   default_kind: str = "photo") -> tuple[list[Task], list[Outcome]]:
    """Tasks for files given directly or listed in text files (their kind by ending, else ``default_kind``)
    and for the files of ``folder_kinds`` under folders (recursively, sorted); each file once. Paths that do
    not exist, broken links and what is not a regular file (a named pipe, a device) come back as failed
    outcomes."""
    suffixes = frozenset().union(*(kind_suffixes()[k] for k in folder_kinds))
    tasks, missing, seen = [], [], set()
    for path in [*map(Path, paths), *(p for listing in lists for p in read_path_list(listing))]:
        if path.is_dir():
            named = sorted(p for p in path.rglob("*") if p.suffix.lower() in suffixes and not p.is_dir())
        else:
            named = [path]
        for file in named:
            regular = file.is_file()
            key = str(file.resolve()) if regular else os.path.abspath(file)
            if key in seen:
                continue
            seen.add(key)
            if regular:
                tasks.append(Task(str(file), key, kind_of(file, default_kind)))
            else:  # missing, a broken link, a pipe or a device: a failure of the run, never read
                missing.append(Outcome.failed(Task(str(file), key, kind_of(file, default_kind)),
                                              f"{file}: {not_a_file(file)}"))
    return tasks, missing


def not_a_file(path: Path) -> str:
    """Why ``path`` is not a file that can be read: missing, a broken symbolic link, or something else than a
    regular file (a named pipe, a device, a socket: reading it could block or never end)."""
    import stat

    try:
        mode = path.stat().st_mode
    except OSError:
        return "a broken symbolic link" if path.is_symlink() else "no such file or folder"
    kinds = ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISSOCK, "a socket"))
    what = next((name for test, name in kinds if test(mode)), "not a regular file")
    return f"not a regular file ({what}{' behind a symbolic link' if path.is_symlink() else ''})"


# ---- threads ----------------------------------------------------------------------------------------------

def cpu_count() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_threads(workers: int) -> int:
    """Threads per worker process when not given: the cores divided by the workers (at least 1)."""
    return max(1, cpu_count() // max(1, workers))


def use_threads(threads: int) -> None:
    """Run this process's numeric work on ``threads`` threads: ONNX Runtime sessions made from now on
    (intra-op threads), OpenCV (detection, resizing) and torch's intra-op pool when torch is loaded (or,
    through ``OMP_NUM_THREADS``, when it loads later)."""
    import cv2

    import fer.serving.onnx_predict

    fer.serving.onnx_predict.SESSION_THREADS = threads
    os.environ["OMP_NUM_THREADS"] = str(threads)
    cv2.setNumThreads(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


# ---- the work of one file (runs in the workers) ----------------------------------------------------------

_RECOGNIZERS: dict = {}
_LOAD_LOCK = threading.Lock()


def worker_recognizer(spec: ModelSpec, threads: int | None):
    """This process's recognizer for ``spec``, loaded on first use (once per process, on ``threads``)."""
    with _LOAD_LOCK:
        if (spec, threads) not in _RECOGNIZERS:
            from fer.core.quiet import silence_known_warnings

            silence_known_warnings()
            if threads:
                use_threads(threads)
            _RECOGNIZERS[spec, threads] = spec.load()
            if threads:
                use_threads(threads)  # torch, if loading a .pkl imported it
        return _RECOGNIZERS[spec, threads]


def run_task(task: Task, options: JobOptions) -> Outcome:
    """One file in a worker: the model loaded once per process, then :func:`analyze_task`. A model that
    cannot be loaded is a fatal outcome (the run stops with its message)."""
    from fer.serving.model_files import ModelLoadError

    try:
        recognizer = worker_recognizer(options.spec, options.threads)
    except ModelLoadError as e:
        return Outcome.failed(task, str(e), fatal=True)
    return analyze_task(recognizer, task, options)


def analyze_task(recognizer, task: Task, options: JobOptions) -> Outcome:
    """A photo's faces or a video's tracked faces as rows; a file that cannot be used gives its reason."""
    start = time.perf_counter()
    analyzer = options.analyzers.get(task.kind)
    try:
        if analyzer is None:
            raise BatchError(f"{task.file}: no analyzer for {task.kind}s in this run")
        outcome = analyzer(recognizer, task, options)
    except ValueError as e:  # ImageError, VideoError, BatchError: the message names the file and the problem
        outcome = Outcome.failed(task, str(e))
    except Exception as e:  # noqa: BLE001 - one odd file must not stop a run over thousands
        outcome = Outcome.failed(task, f"{task.file}: {type(e).__name__}: {e}")
    outcome.seconds = time.perf_counter() - start
    return outcome


def batch_columns(classes: list[str]) -> list[str]:
    """The table's columns: file, frame, time_s, face_id, box, score, landmarks, quality, probabilities, label."""
    from fer.serving.table import face_columns

    return [*KEY_COLUMNS, *face_columns(classes)]


def classes_of(columns: list[str]) -> list[str]:
    """The class names in a table's columns (:func:`batch_columns`)."""
    from fer.serving.table import BOX_COLUMNS, LANDMARK_COLUMNS, QUALITY_COLUMNS

    return list(columns[len(KEY_COLUMNS) + len(BOX_COLUMNS) + len(LANDMARK_COLUMNS) + len(QUALITY_COLUMNS):-1])


def rows_text(rows: list[dict], columns: list[str]) -> str:
    """Rows as CSV lines (no header)."""
    buffer = io.StringIO()
    csv.DictWriter(buffer, columns, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def photo_outcome(recognizer, task: Task, options: JobOptions) -> Outcome:
    """A photo's faces as rows: frame 0, no time, face ids 1, 2, ... left to right."""
    from fer.core.images import FULL_SIZE, load_image
    from fer.serving.table import face_row

    faces = recognizer.analyze(load_image(task.path, name=task.file, max_side=FULL_SIZE))
    rows = [{"file": task.file, "frame": 0, "time_s": "", "face_id": i, **face_row(face)}
            for i, face in enumerate(faces, 1)]
    columns = batch_columns(recognizer.classes)
    return Outcome(task.file, task.kind, columns, rows_text(rows, columns), len(rows), frames=1,
                   line=photo_line(task.file, faces), detail={"faces": [f.as_dict() for f in faces]})


def photo_line(file: str, faces: list) -> str:
    """One photo's faces in a line for the screen."""
    if not faces:
        return f"{file}: no face found"
    listed = ", ".join(f"{f.label or 'not sure'} {f.confidence:.0%} at ({f.box.x}, {f.box.y}, {f.box.w}×{f.box.h})" for f in faces)
    return f"{file}: {len(faces)} face{'s' * (len(faces) > 1)}: {listed}"


# ---- engines ----------------------------------------------------------------------------------------------

class InProcessEngine:
    """Every file in this process, one after another: the single-process path."""

    def __init__(self, recognizer=None):
        self.recognizer = recognizer
        self.workers = 1

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def describe(self) -> str:
        """Where the files run, for the command's first line."""
        return "in this process"

    def run(self, tasks: list[Task], options: JobOptions) -> Iterator[Outcome]:
        """Analyse ``tasks`` one after the other in this process, yielding each outcome."""
        for task in tasks:
            if self.recognizer is None:
                yield run_task(task, options)
            else:
                yield analyze_task(self.recognizer, task, options)


class PoolEngine:
    """``workers`` processes on this machine (spawned, each with its own model and detector); outcomes in
    the order they finish."""

    def __init__(self, workers: int):
        self.workers = workers
        self.pool = None

    def __enter__(self):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawned, not forked: the parent may hold onnxruntime and OpenCV thread pools that do not survive fork
        self.pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_start_worker, initargs=(os.getpid(),))
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is not None:  # interrupted or failed: stop the workers now, not after their current file
            for process in list(getattr(self.pool, "_processes", {}).values()):
                process.terminate()
        self.pool.shutdown(wait=exc[0] is None, cancel_futures=True)

    def describe(self) -> str:
        """Where the files run, for the command's first line."""
        return f"on {self.workers} worker processes"

    def run(self, tasks: list[Task], options: JobOptions) -> Iterator[Outcome]:
        """Analyse ``tasks`` on the worker processes, yielding each outcome as it finishes; :class:`BatchError` when
        a worker dies."""
        from concurrent.futures import as_completed
        from concurrent.futures.process import BrokenProcessPool

        futures = {self.pool.submit(run_task, task, options): task for task in tasks}
        for future in as_completed(futures):
            if isinstance(future.exception(), BrokenProcessPool):
                raise BatchError("a worker process died (out of memory, a crash in a native library, or a script "
                                 "that starts workers without `if __name__ == \"__main__\":`); the files finished so "
                                 "far are kept: rerun with --resume") from None
            yield _result(future, futures[future])


class DaskEngine:
    """Dask distributed: the running cluster at ``address`` (else Dask's ``scheduler-address`` setting,
    i.e. ``DASK_SCHEDULER_ADDRESS``), or a local cluster of ``workers`` processes of one thread each.
    Workers need this package installed and the files (and ``--model``) at the same paths."""

    def __init__(self, address: str | None = None, workers: int = 1):
        self.address, self.workers = address, workers
        self.client = self.cluster = None

    def __enter__(self):
        try:
            import dask
            from distributed import Client, LocalCluster
        except ImportError:
            raise BatchError('the Dask engine needs Dask distributed: pip install -e ".[cluster]"') from None
        address = self.address or dask.config.get(DASK_ADDRESS_KEY, None)
        try:
            if address:
                self.client = Client(address, timeout="20s")
            else:
                self.cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                            dashboard_address=None, silence_logs=logging.ERROR)
                self.client = Client(self.cluster)
        except OSError as e:
            raise BatchError(f"Dask scheduler {address}: cannot connect ({e})") from None
        self.address = address or self.cluster.scheduler_address
        try:
            self.client.run(_fer_version)  # every worker can import this package (not file after file failing)
        except Exception as e:  # noqa: BLE001 - whatever the worker raised, the answer is the same
            self.__exit__(None, None, None)
            raise BatchError(f"the Dask workers at {self.address} cannot run fer ({type(e).__name__}: {e}): "
                             f"install this package on every worker (pip install -e .)") from None
        return self

    def __exit__(self, *exc) -> None:
        if self.client:
            self.client.close()
        if self.cluster:
            self.cluster.close()

    def describe(self) -> str:
        """Where the files run, for the command's first line."""
        n = len(self.client.nthreads())
        where = "on a local Dask cluster" if self.cluster else "on the Dask cluster"
        return f"{where} at {self.address} ({n} worker processes)"

    def run(self, tasks: list[Task], options: JobOptions) -> Iterator[Outcome]:
        """Analyse ``tasks`` on the Dask cluster, yielding each outcome as it finishes."""
        from distributed import as_completed

        futures = self.client.map(run_task, tasks, options=options, pure=False)
        by_key = {future.key: task for future, task in zip(futures, tasks)}
        try:
            for future in as_completed(futures):
                yield _result(future, by_key[future.key])
                future.release()
        finally:
            self.client.cancel(futures)


def _fer_version() -> str:
    import fer

    return fer.__version__


def _start_worker(driver: int) -> None:
    """A worker process's start: Ctrl-C is the driver's to handle (it stops the workers; a worker prints no
    traceback of its own), and the worker ends when the driver does, however it ended (``kill -9`` included)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_end_with, args=(driver,), daemon=True, name="end-with-driver").start()


def _end_with(driver: int, every_s: float = 0.5) -> None:
    """End this process once ``driver``, its parent, is gone (the process was handed to another parent)."""
    while os.getppid() == driver:
        time.sleep(every_s)
    os._exit(1)


def _result(future, task: Task) -> Outcome:
    """A finished future's outcome; a worker that died or a task that raised is the file's failure."""
    try:
        return future.result()
    except Exception as e:  # noqa: BLE001 - e.g. the worker process was killed (out of memory): the file failed
        return Outcome.failed(task, f"{task.file}: the worker failed ({type(e).__name__}: {e})")


def make_engine(workers: int = 1, address: str | None = None, engine: str = "local", recognizer=None):
    """The engine for a run: Dask when ``engine == "dask"`` or an ``address`` is given, else ``workers``
    local processes, or this process for one worker (using ``recognizer`` when given)."""
    if workers < 1:
        raise ValueError(f"workers={workers}: must be 1 or more")
    if engine not in ENGINES:
        raise ValueError(f"engine {engine!r}: choose one of {', '.join(ENGINES)}")
    if engine == "dask" or address:
        return DaskEngine(address, workers)
    return InProcessEngine(recognizer) if workers == 1 else PoolEngine(workers)


# ---- the one table ----------------------------------------------------------------------------------------

def sidecar(table: Path, name: str) -> Path:
    """A file beside the table: ``faces.csv`` → ``faces.<name>``."""
    return table.with_name(f"{table.stem}.{name}")


class BatchTable:
    """The run's one CSV, its failures CSV (``file, error``) and its progress log (JSON lines: each
    finished file with the table's length after its rows).

    Each file's rows go in one write, then its line in the log. ``resume=True`` continues a table: it is cut
    back to the length the log last recorded (rows of a file that was being written when the run was
    killed go), the files logged as finished are :attr:`finished` (to skip), and failed files are tried
    again (their failure rows go). Without ``resume`` an existing table is refused unless ``overwrite``."""

    def __init__(self, path: Path, failures: Path | None = None, resume: bool = False, overwrite: bool = False):
        self.path = Path(path)
        self.failures_path = failures or sidecar(self.path, "failures.csv")
        self.log_path = sidecar(self.path, "progress.jsonl")
        self.finished: dict[str, dict] = {}
        self.header: list[str] | None = None
        exists = self.path.exists() and self.path.stat().st_size > 0
        if exists and not resume and not overwrite:
            raise BatchError(f"{self.path} already exists: pass --resume to continue it, or --overwrite")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.failures_path.parent.mkdir(parents=True, exist_ok=True)
        if resume and exists:
            self._restore()
        else:
            for p in (self.path, self.failures_path, self.log_path):
                p.unlink(missing_ok=True)
        self.table = open(self.path, "ab")  # noqa: SIM115 - open for the run, closed by close()
        self.log = open(self.log_path, "a")  # noqa: SIM115
        new_failures = not self.failures_path.exists()
        self.failures_file = open(self.failures_path, "a", newline="")  # noqa: SIM115
        self.failures = csv.writer(self.failures_file)
        if new_failures:
            self.failures.writerow(["file", "error"])
            self.failures_file.flush()

    def _restore(self) -> None:
        """Read the log, cut the table back to its last recorded length, keep the finished files' failure rows."""
        with open(self.path, "rb") as f:
            header = f.readline()
        entries = []
        if self.log_path.exists():
            for line in self.log_path.read_text().splitlines():
                try:
                    entries.append(json.loads(line))
                except json.JSONDecodeError:
                    break  # a line torn by the kill: nothing after it was recorded
        end = 0  # nothing recorded: start the table again, header included
        for entry in entries:
            if entry["status"] != "failed":
                self.finished[entry["file"]] = entry
                end = entry["end"]
        if end:
            self.header = header.decode("utf-8").rstrip("\r\n").split(",")
        with open(self.path, "r+b") as f:
            f.truncate(end)
        self._rewrite(self.log_path, "".join(json.dumps(e) + "\n" for e in self.finished.values()))
        if self.failures_path.exists():
            with open(self.failures_path, newline="") as f:
                rows = [r for r in csv.reader(f) if len(r) == 2]
            kept = [r for r in rows[1:] if r[0] in self.finished]
            buffer = io.StringIO()
            csv.writer(buffer).writerows([["file", "error"], *kept])
            self._rewrite(self.failures_path, buffer.getvalue())

    @staticmethod
    def _rewrite(path: Path, text: str) -> None:
        from fer.core.fileio import atomic_path

        with atomic_path(path) as tmp:
            tmp.write_text(text)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def add(self, outcome: Outcome) -> None:
        """Record one finished file: its rows in one append (the header first, once), a failure row when it
        failed or broke off, then its line in the progress log."""
        if outcome.error is None:
            if self.header is None:
                self.header = list(outcome.columns)
                self.table.write((",".join(self.header) + "\n").encode())
            elif self.header != outcome.columns:
                raise BatchError(f"{self.path}: its columns ({', '.join(self.header[4:8])}, ...) are not this "
                                 f"model's; write to a new table")
            self.table.write(outcome.text.encode())
            self.table.flush()
        reason = outcome.error or outcome.problem
        if reason:
            self.failures.writerow([outcome.file, reason])
            self.failures_file.flush()
        status = "failed" if outcome.error else "partial" if outcome.problem else "done"
        entry = {"file": outcome.file, "status": status, "rows": outcome.rows, "end": self.table.tell()}
        self.log.write(json.dumps(entry) + "\n")
        self.log.flush()
        if status != "failed":
            self.finished[outcome.file] = entry

    def close(self) -> None:
        """Close the table, the progress log and the failures file."""
        for f in (self.table, self.log, self.failures_file):
            f.close()


# ---- a run ------------------------------------------------------------------------------------------------

def process(tasks: list[Task], options: JobOptions, engine, table: BatchTable | None = None) -> Iterator[Outcome]:
    """Run ``tasks`` (less those ``table`` has finished) on ``engine``; each outcome is recorded in ``table``
    as it arrives, then yielded. Raises :class:`BatchError` when a worker cannot load the model."""
    todo = [t for t in tasks if table is None or t.file not in table.finished]
    for outcome in engine.run(todo, options):
        if outcome.fatal:
            raise BatchError(outcome.error)
        if table is not None:
            table.add(outcome)
        yield outcome


def _frame(source, failures: list[dict]):
    import pandas as pd

    df = pd.read_csv(source, keep_default_na=False, na_values=[""])  # empty cells (a photo's time) are NaN
    df.attrs["failures"] = failures
    return df


def outcomes_frame(outcomes: list[Outcome], columns: list[str]):
    """The outcomes' rows as one pandas DataFrame (``columns``); ``df.attrs["failures"]``: ``[{"file", "error"}]``
    (a video that broke off partway is there too, its rows in the frame)."""
    text = ",".join(columns) + "\n" + "".join(o.text for o in outcomes if o.error is None)
    failures = [{"file": o.file, "error": o.error or o.problem} for o in outcomes if o.error or o.problem]
    return _frame(io.StringIO(text), failures)


def read_table(path: Path, failures_path: Path, columns: list[str]):
    """A run's table as a pandas DataFrame, ``df.attrs["failures"]`` from its failures CSV."""
    import pandas as pd

    failures = pd.read_csv(failures_path).to_dict("records") if failures_path.exists() else []
    if not path.exists() or path.stat().st_size == 0:
        return _frame(io.StringIO(",".join(columns) + "\n"), failures)
    return _frame(path, failures)


def summary_dict(outcomes: list[Outcome]) -> dict:
    """Counts for a run: files done, failed, rows, frames analysed."""
    return {"files": len(outcomes), "failed": sum(o.error is not None for o in outcomes),
            "rows": sum(o.rows for o in outcomes), "frames": sum(o.frames for o in outcomes)}

