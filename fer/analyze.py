"""Find and classify every face in images and folders of images (searched recursively).

    python -m fer.analyze photo.jpg holiday/ [--csv faces.csv] [--json faces.json]

One row per face: file, face number (left to right), box, detector score, landmarks, the probability of
every class and the label. Files that cannot be read are listed at the end and skipped; the exit status is
0 when every file was read, 1 when some failed, 2 when nothing could be done.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from fer.cli import add_model_options, check_model_options
from fer.extras import exit_on_missing_extra


@dataclass
class FileResult:
    file: str
    faces: list = field(default_factory=list)  # fer.api.Face
    error: str | None = None

    def as_dict(self) -> dict:
        if self.error:
            return {"file": self.file, "error": self.error}
        return {"file": self.file, "faces": [f.as_dict() for f in self.faces]}


def image_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[FileResult]]:
    """Files given directly, plus the images under folders (recursively, sorted); missing paths as errors."""
    from fer.images import images_under

    files, missing = [], []
    for path in map(Path, paths):
        if path.is_dir():
            files += images_under(path)
        elif path.is_file():
            files.append(path)
        else:
            missing.append(FileResult(str(path), error=f"{path}: no such file or folder"))
    return files, missing


def analyze_files(model, files: Iterable[Path]) -> Iterator[FileResult]:
    """Each file's faces, or the reason it could not be read (never raises for a bad file)."""
    from fer.images import ImageError

    for path in files:
        try:
            yield FileResult(str(path), model.analyze(path))
        except ImageError as e:
            yield FileResult(str(path), error=str(e))
        except Exception as e:  # noqa: BLE001 - one odd file must not stop a folder of thousands
            yield FileResult(str(path), error=f"{path}: {type(e).__name__}: {e}")


def write_faces(table, result: FileResult) -> None:
    """One file's faces as CSV rows (file, face number, box, landmarks, probabilities, label)."""
    from fer.table import face_row

    table.add([{"file": result.file, "face": i, **face_row(face.box, face.probs)}
               for i, face in enumerate(result.faces, 1)])


def plural(n: int, noun: str) -> str:
    """``1 face``, ``3 faces``."""
    return f"{n} {noun}{'s' * (n != 1)}"


def reason(result: FileResult) -> str:
    """Why a file failed, without its path (error messages name the file first)."""
    return result.error.removeprefix(f"{result.file}: ") if result.error else ""


def summary_line(result: FileResult) -> str:
    if result.error:
        return f"{result.file}: FAILED ({reason(result)})"
    if not result.faces:
        return f"{result.file}: no face found"
    faces = ", ".join(f"{f.label} {f.confidence:.0%} at ({f.box.x}, {f.box.y}, {f.box.w}×{f.box.h})" for f in result.faces)
    return f"{result.file}: {plural(len(result.faces), 'face')}: {faces}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m fer.analyze", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files and folders")
    p.add_argument("--csv", type=Path, help="write one row per face here")
    p.add_argument("--json", type=Path, help="write every file's faces (and the failures) here as JSON")
    p.add_argument("--quiet", action="store_true", help="no per-file lines, no progress bar")
    add_model_options(p)
    args = p.parse_args(argv)
    check_model_options(p, args)
    return args


@exit_on_missing_extra
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from fer.api import load
    from fer.cli import configure_logging, progress

    configure_logging()
    from fer.fileio import write_json_atomic
    from fer.model_files import ModelLoadError
    from fer.table import CsvTable, face_columns

    files, results = image_files(args.paths)
    if not files:
        print(f"error: no images found in {', '.join(args.paths)}", file=sys.stderr)
        return 2
    try:
        model = load(args.model, args.detector, args.min_face, args.score)
    except ModelLoadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    table = CsvTable(args.csv, ["file", "face", *face_columns(model.classes)]) if args.csv else None
    try:
        bar = progress(analyze_files(model, files), len(files), "images", "file", args.quiet)
        for result in bar:
            results.append(result)
            if table:
                write_faces(table, result)
            if not args.quiet:
                bar.write(summary_line(result), file=sys.stdout)
    except KeyboardInterrupt:
        print(f"interrupted after {len(results)} of {len(files)} files", file=sys.stderr)
    finally:
        if table:
            table.close()
        if args.json:
            write_json_atomic(args.json, {"model": str(args.model or "default"), "classes": model.classes,
                                          "files": [r.as_dict() for r in results]})
    failed = [r for r in results if r.error]
    faces = sum(len(r.faces) for r in results)
    print(f"{len(results) - len(failed)} of {plural(len(results), 'file')} read, {plural(faces, 'face')} found"
          + "".join(f" → {p}" for p in (args.csv, args.json) if p), file=sys.stderr)
    if failed:
        print(f"{plural(len(failed), 'file')} failed:", *(f"  {r.error}" for r in failed), sep="\n", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
