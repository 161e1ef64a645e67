"""Faces and expressions through a whole video: an annotated video, a per-frame CSV and a plot per face.

    python -m fer.video IN.mp4 --out DIR [--every N] [--detector yunet|haar]
    python -m fer.video interviews/ --csv all.csv [--out DIR] [--workers N] [--address tcp://host:8786] [--resume]

Writes DIR/IN.annotated.mp4 (H.264; boxes, labels and tracked face ids), DIR/IN.csv (one row per analysed frame and
face: frame, time_s, face_id, box, detector score, landmarks, the probability of every class, label),
DIR/IN.face<ID>.png (each face's expressions over time) and DIR/IN.json (a summary). Anything OpenCV can
read works; times come from the file's own timestamps (variable frame rates), phone videos are turned
upright from their rotation tag. The CSV holds each frame's own probabilities; the labels drawn on the
video are smoothed over frames per face. A file that breaks off partway (truncated, corrupt) keeps
what was read: the CSV is then named IN.partial.csv and the summary says where and why it stopped.

Many videos (files, folders, --files-from LIST) run side by side (--workers N processes, or a Dask cluster)
into one table (--csv: file, frame, time_s, face_id, ...), each video's own files too with --out; a video
that cannot be read is a row of NAME.failures.csv and the run goes on; --resume continues a killed run.

Live sources are analysed as they come, until Ctrl-C, --duration S or the source's end (docs/live_sources.md):

    python -m fer.video 0 --jsonl -                                     # camera 0, JSON lines to stdout
    python -m fer.video rtsp://cam.local/live --csv faces.csv --out run/ --duration 3600
    python -m fer.video recording.mkv --follow --csv -                   # a file still being written

Each frame's faces are written (--csv / --jsonl FILE, or - for stdout) as soon as it is done; --out DIR adds the
annotated video, DIR/NAME.csv and the summary DIR/NAME.json. A dropped camera or stream is reopened (waits of
0.5, 1, 2, 4, then 8 s) and the gap recorded; when the analysis falls behind, frames are dropped (counted).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from fer.core.extras import exit_on_missing_extra
from fer.serving.sources import IDLE_S, SourceSpec, is_live
from fer.serving.video import (
    OutputPaths,
    VideoError,
    VideoReader,
    analyze_video,
    kept,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command's options (``--help`` lists them); exits with a message on a bad combination."""
    from fer.serving.cli import add_batch_options, add_model_options, batch_options, check_model_options

    p = argparse.ArgumentParser(prog="python -m fer.video", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("videos", nargs="*", metavar="VIDEO",
                   help="video files OpenCV can read (MP4, MOV, AVI, WebM, MKV...) and folders of them; or one "
                        "live source: a camera number (0), a stream URL (rtsp://, http://...), a file with --follow")
    p.add_argument("--out", type=Path, help="folder for each video's annotated video, CSV, plots, summary")
    p.add_argument("--csv", help="one table of all the videos' rows (file, frame, time_s, face_id, ...); "
                                 "a live source's rows as they come (- for stdout)")
    p.add_argument("--every", type=int, default=1, metavar="N",
                   help="analyse every N-th frame (the video keeps every frame, with the latest boxes)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_model_options(p)
    add_live_options(p)
    add_batch_options(p)
    args = p.parse_args(argv)
    check_model_options(p, args)
    args.source = live_source(p, args)
    if args.source:
        return args
    args.videos = [Path(v) for v in args.videos]
    args.csv = Path(args.csv) if args.csv else None
    args.batch = batch_options(p, args)
    if not args.videos and not args.files_from:
        p.error("name videos or folders (or --files-from LIST)")
    if not args.out and not args.csv:
        p.error("say where results go: --out DIR (each video's own files), --csv TABLE (one table), or both")
    return args


def add_live_options(p: argparse.ArgumentParser) -> None:
    """The options of live sources (cameras, streams, files still being written)."""
    g = p.add_argument_group("live sources (see docs/live_sources.md)")
    g.add_argument("--jsonl", metavar="FILE", help="a JSON line per frame and per gap, as they come (- for stdout)")
    g.add_argument("--duration", type=float, metavar="S", help="stop after S seconds (default: Ctrl-C or its end)")
    g.add_argument("--follow", action="store_true",
                   help="the file is still being written: read it as it grows (MKV, MPEG-TS, fragmented MP4, AVI)")
    g.add_argument("--idle", type=float, metavar="S",
                   help=f"with --follow: the file is finished when it has not grown for S seconds (default {IDLE_S:g})")
    g.add_argument("--give-up-after", type=float, metavar="S",
                   help="end the run when a dropped camera or stream has been gone S seconds (default: keep trying)")


LIVE_ONLY = ("jsonl", "duration", "idle", "give_up_after")


def live_source(p: argparse.ArgumentParser, args: argparse.Namespace) -> SourceSpec | None:
    """The live source the arguments name (checked with its options), or None for a run over files."""
    live = len(args.videos) == 1 and (is_live(args.videos[0]) or args.follow)
    given = [f"--{name.replace('_', '-')}" for name in LIVE_ONLY if getattr(args, name) is not None]
    if not live:
        if given or args.follow:
            p.error(f"{', '.join(given + ['--follow'] * args.follow)}: for one live source only (a camera number, "
                    f"a stream URL, or a file with --follow)")
        if any(is_live(v) for v in args.videos):
            p.error("a camera or stream URL is analysed on its own: name one live source per run")
        return None
    batch = {"--files-from": args.files_from, "--workers": args.workers != 1, "--resume": args.resume,
             "--engine": args.engine != "local", "--address": args.address, "--failures": args.failures}
    if clash := [name for name, used in batch.items() if used]:
        p.error(f"{', '.join(clash)}: for many files, not a live source")
    if not (args.out or args.csv or args.jsonl):
        p.error("say where results go: --csv FILE or --jsonl FILE (- for stdout), --out DIR (annotated video, "
                "CSV, summary), or several")
    for name in ("duration", "idle", "give_up_after"):
        if (value := getattr(args, name)) is not None and not value > 0:
            p.error(f"--{name.replace('_', '-')} {value:g}: must be more than 0")
    if args.idle is not None and not args.follow:
        p.error("--idle: only with --follow")
    if args.every < 1:
        p.error(f"--every {args.every}: must be 1 or more")
    return SourceSpec.parse(args.videos[0], args.follow)


def is_single_video_run(args: argparse.Namespace) -> bool:
    """One video file into --out, nothing else: the plain run with its detailed report."""
    return (len(args.videos) == 1 and not args.videos[0].is_dir() and not args.files_from and not args.csv
            and args.workers == 1 and args.engine == "local" and not args.address)


@exit_on_missing_extra
def main(argv: list[str] | None = None) -> int:
    """Run ``python -m fer.video`` (``fer-video``): one video, many, or a live source; returns the exit status."""
    args = parse_args(argv)
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # FFmpeg's own lines; our messages say what is wrong
    if args.source:
        return run_live(args)
    if is_single_video_run(args):
        return run_one(args)
    return run_many(args)


def run_many(args: argparse.Namespace) -> int:
    """Many videos (files, folders, --files-from) side by side into one --csv table and/or --out files."""
    from fer.core.cli import configure_logging
    from fer.serving.batch import BatchError, collect_inputs
    from fer.serving.cli import model_spec, run_batch

    configure_logging()
    try:
        tasks, missing = collect_inputs(args.videos, args.files_from, ("video",), "video")
    except BatchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not tasks:
        print(f"error: no videos found in {', '.join(map(str, args.videos + args.files_from))}", file=sys.stderr)
        return 2
    if args.out and (problem := output_clash([Path(t.path) for t in tasks], args.out, args.overwrite or args.resume)):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    return run_batch(args.batch, model_spec(args), tasks, missing, "videos", quiet=args.quiet)


def output_clash(videos: list[Path], out_dir: Path, overwrite: bool) -> str | None:
    """Why the videos' own outputs cannot all go into ``out_dir``: two videos of one name, or results there
    already (unless ``overwrite``); None when they can."""
    by_stem: dict[str, Path] = {}
    for video in videos:
        if (other := by_stem.setdefault(video.stem, video)) != video:
            return (f"{other} and {video} would both write {video.stem}.* in {out_dir}: analyse them in separate "
                    f"runs, or use --csv alone")
        if not overwrite and (clash := OutputPaths(out_dir, video.stem).existing()):
            return f"{clash[0]} already exists: choose another --out folder, or pass --overwrite"
    return None


def run_one(args: argparse.Namespace) -> int:
    """One video into --out, with its detailed report (exit status 0, 1 when it broke off, 2 unreadable)."""
    video = args.videos[0]
    out = OutputPaths(args.out, video.stem)
    try:
        VideoReader(video).close()  # a file that cannot be read fails before the model loads
    except VideoError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from fer.core.cli import configure_logging
    from fer.serving.model_files import ModelLoadError
    from fer.serving.recognize import FaceRecognizer

    configure_logging()
    if args.threads:
        from fer.serving.batch import use_threads

        use_threads(args.threads)
    try:
        recognizer = FaceRecognizer.load(args.model, args.detector, args.min_face, args.score, args.min_confidence,
                                         args.min_quality)
        report, _ = analyze_video(recognizer, video, args.every, out, args.overwrite,
                                  show_progress=not args.quiet)
    except (ModelLoadError, VideoError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted: {kept(out)}", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - a message, not a traceback; the partial results are kept
        print(f"error: {video}: {type(e).__name__}: {e}; {kept(out)}", file=sys.stderr)
        return 1
    print(f"{report.frames_read} frames ({report.width}×{report.height}, {report.frames_analysed} analysed) in "
          f"{report.seconds:.1f} s = {report.processing_fps:.1f} frames/s; faces: "
          f"{', '.join(f'#{i}' for i in report.face_ids) or 'none'}")
    for name, where in report.outputs.items():
        print(f"{name}: {', '.join(where) if isinstance(where, list) else where}")
    if not report.complete:
        print(f"warning: {report.problem}; the results cover the frames read", file=sys.stderr)
        return 1
    return 0


def run_live(args: argparse.Namespace) -> int:
    """One live source analysed as it comes (exit status 0 when it ran until its end, the duration or Ctrl-C;
    1 when the source was given up or the run failed, its results so far kept; 2 when it could not start)."""
    from fer.core.cli import configure_logging
    from fer.serving.model_files import ModelLoadError
    from fer.serving.recognize import FaceRecognizer
    from fer.serving.sources import LiveSource, SourceError
    from fer.serving.stream import CsvRows, JsonLines, analyze_stream, check_outputs

    spec: SourceSpec = args.source
    out = OutputPaths(args.out, spec.name) if args.out else None
    tables = [path for path in (args.csv, out and out.csv) if path]
    try:
        check_outputs([*tables, args.jsonl, *([out.video, out.summary] if out else [])], args.overwrite)
        source = LiveSource(spec, give_up_s=args.give_up_after, idle_s=args.idle or IDLE_S).open()
    except (SourceError, VideoError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    configure_logging()
    signal.signal(signal.SIGTERM, stop_on_signal)  # a service manager's stop ends the run as Ctrl-C does
    if args.threads:
        from fer.serving.batch import use_threads

        use_threads(args.threads)
    try:
        recognizer = FaceRecognizer.load(args.model, args.detector, args.min_face, args.score)
        sinks = [CsvRows(path, recognizer.classes) for path in tables] + ([JsonLines(args.jsonl)] if args.jsonl else [])
    except (ModelLoadError, OSError) as e:
        source.close()
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        source.close()
        print("interrupted before the analysis started: nothing was written", file=sys.stderr)
        return 130
    try:
        report = analyze_stream(recognizer, source, sinks, out.video if out else None, args.every, args.duration,
                                out.summary if out else None, show_progress=not args.quiet)
    except KeyboardInterrupt:  # a Ctrl-C again while the outputs were being closed
        print("interrupted while closing the outputs: the rows so far are in them", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - a message, not a traceback; the rows so far are in the outputs
        print(f"error: {spec.label}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    finally:
        if any(sink.path == "-" for sink in sinks):
            keep_quiet_if_stdout_closed()
    print(live_summary(report), file=sys.stderr)  # stdout may carry the rows
    return 1 if source.gave_up else 0


def stop_on_signal(signum, frame) -> None:
    """Turn SIGTERM into Ctrl-C, so a live run ends cleanly."""
    raise KeyboardInterrupt


def keep_quiet_if_stdout_closed() -> None:
    """When the reader of stdout went away (``| head``), send the rest to nowhere (no error at exit)."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def live_summary(report) -> str:
    """The end of a live run in a few lines: counts, drops, gaps, why it ended, the outputs."""
    lines = [(f"{report.source}: {report.frames_received} frames received in {report.seconds:.1f} s, "
              f"{report.frames_processed} processed ({report.frames_analysed} analysed, "
              f"{report.processing_fps:.1f} frames/s), {report.frames_dropped} dropped while the analysis was busy; "
              f"faces: {', '.join(f'#{i}' for i in report.face_ids) or 'none'}")]
    for gap in report.gaps:
        back = f"back after {gap['attempts']} reopening attempt(s)" if gap["reconnected"] else "not back"
        lines.append(f"gap: {gap['gap_s']:.1f} s from {gap['start_s']:.1f} s ({gap['reason']}; {back})")
    lines.append(f"ended: {report.ended}")
    lines += [f"{name}: {where}" for name, where in report.outputs.items()]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
