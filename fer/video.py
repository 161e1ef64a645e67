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
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from fer.core.extras import exit_on_missing_extra
from fer.serving.video import (
    OutputPaths,
    VideoError,
    VideoReader,
    analyze_video,
    kept,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from fer.serving.cli import add_batch_options, add_model_options, batch_options, check_model_options

    p = argparse.ArgumentParser(prog="python -m fer.video", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("videos", nargs="*", type=Path, metavar="VIDEO",
                   help="video files OpenCV can read (MP4, MOV, AVI, WebM, MKV...) and folders of them")
    p.add_argument("--out", type=Path, help="folder for each video's annotated video, CSV, plots, summary")
    p.add_argument("--csv", type=Path, help="one table of all the videos' rows (file, frame, time_s, face_id, ...)")
    p.add_argument("--every", type=int, default=1, metavar="N",
                   help="analyse every N-th frame (the video keeps every frame, with the latest boxes)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_model_options(p)
    add_batch_options(p)
    args = p.parse_args(argv)
    check_model_options(p, args)
    args.batch = batch_options(p, args)
    if not args.videos and not args.files_from:
        p.error("name videos or folders (or --files-from LIST)")
    if not args.out and not args.csv:
        p.error("say where results go: --out DIR (each video's own files), --csv TABLE (one table), or both")
    return args


def is_single_video_run(args: argparse.Namespace) -> bool:
    """One video file into --out, nothing else: the plain run with its detailed report."""
    return (len(args.videos) == 1 and not args.videos[0].is_dir() and not args.files_from and not args.csv
            and args.workers == 1 and args.engine == "local" and not args.address)


@exit_on_missing_extra
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # FFmpeg's own lines; our messages say what is wrong
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


if __name__ == "__main__":
    sys.exit(main())
