"""Loading an exported learner and classifying face crops in one batched forward pass."""

from __future__ import annotations

import pickle
import platform
import types
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from fer.core.quiet import known_warnings_silenced  # before fastai

with known_warnings_silenced():  # importing fastai makes torch warn that jit.script is deprecated
    from fastai.vision.all import TensorImageBW

from fer.core.card import DEFAULT_LEARNER, ModelLoadError, card_temperature, describe_card, load_card
from fer.serving.faces import batched_probabilities
from fer.training.preprocess import inference_module, validation_pipeline
from fer.training.runtime import compile_for_inference

__all__ = ["DEFAULT_LEARNER", "FacePredictor", "ModelLoadError", "load_learner_file"]


#: Where the modules of fer's flat layout (before 0.2) went: learners exported then name them in their pickle.
MOVED_MODULES = {f"fer.{name}": f"fer.{package}.{name}" for package, names in {
    "core": ("labels", "images", "fileio", "card", "extras", "quiet", "plotting", "cli", "dataset"),
    "serving": ("detect", "faces", "tracking", "draw", "onnx_predict", "model_files", "recognize", "batch", "feedback",
                "live", "timeline", "table", "video"),
    "evaluation": ("metrics", "scenes", "suite", "evaluate"),
    "training": ("learner", "distill", "distributed", "preprocess", "predict", "runtime", "export", "blend",
                 "personalize"),
}.items() for name in names} | {"fer.training": "fer.training.config"}


class MovedModulesUnpickler(pickle.Unpickler):
    """An unpickler that finds classes and functions of fer's earlier layouts (:data:`MOVED_MODULES`)."""

    def find_class(self, module: str, name: str):
        """The class ``name`` of ``module``, looked up where the module lives now."""
        return super().find_class(MOVED_MODULES.get(module, module), name)


#: ``pickle`` with :class:`MovedModulesUnpickler`, for ``torch.load(pickle_module=...)``.
moved_modules_pickle = types.SimpleNamespace(**{**vars(pickle), "Unpickler": MovedModulesUnpickler})


def load_learner_file(path: str | Path):
    """``fastai.learner.load_learner`` on the CPU with clear errors.

    Unpickling runs code from the file: load only models from ``exports/`` or that you trust.
    """
    from fastai.learner import Learner, load_learner

    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"model file {path}: not found. Train one with `python -m fer.finetune --data DIR "
                             f"--out {path}`, or pass --model PATH to an exported learner (.pkl)")
    check_exporting_python(path, load_card(path))
    try:
        with known_warnings_silenced():
            learn = load_learner(path, cpu=True, pickle_module=moved_modules_pickle)
    except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, RuntimeError, AttributeError, ImportError,
            ModuleNotFoundError, ValueError, TypeError, OSError, IndexError, KeyError) as e:
        raise ModelLoadError(f"model file {path}: not a readable fastai learner — truncated, corrupt or another "
                             f"kind of file ({type(e).__name__}: {str(e)[:200]})") from None
    if not isinstance(learn, Learner) or not hasattr(learn, "dls") or not hasattr(learn.dls, "vocab"):
        raise ModelLoadError(f"model file {path}: holds a {type(learn).__name__}, not a fastai classification learner")
    return learn


def check_exporting_python(path: Path, card: dict) -> None:
    """Refuse a learner whose card says it was exported under another Python minor version: fastai's export
    pickles some functions by value, as bytecode, and such a file crashes the interpreter (a segfault, not an
    exception) when it is used under another Python."""
    exported = str(card.get("versions", {}).get("python", ""))
    running = platform.python_version()
    if exported and exported.split(".")[:2] != running.split(".")[:2]:
        raise ModelLoadError(
            f"model file {path}: exported under Python {exported}, and this is Python {running}; fastai pickles "
            f"some of a learner's code as bytecode, which crashes another Python minor version. Use its ONNX file "
            f"({path.with_suffix('.onnx').name}, any Python), or export it again under Python {running} "
            f"(`python -m fer.finetune ... --run-dir RUN --resume` exports a finished run's best checkpoint)")


class FacePredictor:
    """Classifies 48×48-able face crops with an exported learner: one forward pass per batch, through the
    learner's own validation ``after_batch`` pipeline (the preprocessing it was trained with). Logits are divided
    by the calibration temperature its card records (:func:`fer.core.card.card_temperature`), as its ONNX
    export's are."""

    def __init__(self, learn, card: dict | None = None, backend: str = "auto", fuse_preprocess: bool = True):
        self.learn = learn
        self.model = learn.model.eval()
        # the validation-time view of the pipeline: resize + normalise, no random augmentation
        self.pipeline = validation_pipeline(learn)
        self.classes: list[str] = list(learn.dls.vocab)
        self.card = card or {}
        self.temperature = card_temperature(self.card)
        self.backend, self.fuse_preprocess = backend, fuse_preprocess
        self.backend_used: str | None = None  # known after the first prediction
        self._compiled = None

    @classmethod
    def load(cls, path: str | Path = DEFAULT_LEARNER, backend: str = "auto") -> "FacePredictor":
        """The predictor of an exported learner (``.pkl``) with its card; ``backend`` as
        :func:`fer.training.runtime.compile_backend`."""
        return cls(load_learner_file(path), load_card(path), backend)

    @torch.inference_mode()
    def predict_proba(self, faces: Sequence[np.ndarray], tta: str | bool = False, bs: int = 256) -> np.ndarray:
        """Class probabilities, shape (len(faces), n_classes), averaged over the views of the TTA mode ``tta``
        (``none``, ``flip`` or ``tencrop``; ``True`` is ``flip``: :func:`fer.serving.faces.tta_views`)."""
        return batched_probabilities(faces, self._forward, len(self.classes), tta, bs)

    def _forward(self, faces: np.ndarray) -> np.ndarray:
        batch = torch.from_numpy(faces)
        return torch.softmax(self._inference_fn(batch)(batch).float() / self.temperature, dim=1).numpy()

    def _inference_fn(self, batch):
        """uint8 faces → logits, compiled for CPU inference on first use (:mod:`fer.training.runtime`; ONNX Runtime
        unless ``backend`` says otherwise) and checked against the eager model. The preprocessing is compiled
        with the model when :func:`fer.training.preprocess.inference_module` can express the learner's pipeline;
        otherwise (or with ``fuse_preprocess=False``) the pipeline runs first."""
        if self._compiled is None:
            example = torch.randint(0, 256, (2, *batch.shape[1:]), dtype=torch.uint8)
            preprocess = inference_module(self.pipeline) if self.fuse_preprocess else None
            if preprocess is not None:
                net = torch.nn.Sequential(preprocess, self.model)
                self._compiled, self.backend_used = compile_for_inference(net, example, self.backend)
            else:
                x = self.pipeline(TensorImageBW(example)).as_subclass(torch.Tensor)
                model, self.backend_used = compile_for_inference(self.model, tuple(x.shape), self.backend)
                self._compiled = lambda b: model(self.pipeline(TensorImageBW(b)).as_subclass(torch.Tensor))
        return self._compiled

    def describe(self) -> str:
        """One line about the loaded model for users."""
        return describe_card(self.card, self.classes)
