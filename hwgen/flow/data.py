"""The images a build calibrates on and tests with.

Images are kept as given: uint8 pixels (the MNIST convention: the model sees x = p/255 and the
input scale is fixed at 1/127) or float model inputs (the input scale is derived from the
calibration data). ``model_input`` turns either into the float array the model takes.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwgen.config import QuantConfig
from hwgen.errors import HwgenError

__all__ = ["Data", "MnistData", "DigitsData", "ArrayData", "load_image_file", "model_input"]


def model_input(images: np.ndarray) -> np.ndarray:
    """uint8 pixels -> float32 x = p/255; float images unchanged; (N,H,W) -> (N,1,H,W)."""
    x = np.asarray(images)
    x = x.astype(np.float32) / np.float32(255.0) if x.dtype.kind in "iu" else x.astype(np.float32)
    return x[:, None] if x.ndim == 3 else x


def _digest(*arrays: np.ndarray | None) -> str:
    h = hashlib.sha256()
    for a in arrays:
        if a is None:
            h.update(b"none")
            continue
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}{a.shape}".encode() + a.tobytes())
    return h.hexdigest()


def _pick(images: np.ndarray, k: int, seed: int) -> np.ndarray:
    """``k`` of ``images`` drawn with ``seed`` (in their original order), or all of them."""
    if len(images) <= k:
        return images
    idx = np.random.default_rng(seed).choice(len(images), k, replace=False)
    return images[np.sort(idx)]


@dataclass
class Data:
    """Calibration and test images for one build; subclasses load lazily."""

    desc: str
    n_test: int
    uint8: bool  # integer pixels (fixed input scale 1/127) or float model inputs

    def calib(self, q: QuantConfig) -> np.ndarray:
        raise NotImplementedError

    def test(self, n: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        raise NotImplementedError

    def key(self) -> str:
        """A digest of everything the images depend on (for cache keys)."""
        raise NotImplementedError


@dataclass
class MnistData(Data):
    """The project's MNIST copy: calibration from the training set, tests from the test set."""

    desc: str = "MNIST"
    n_test: int = 10000
    uint8: bool = True

    def calib(self, q: QuantConfig) -> np.ndarray:
        from hwgen.datasets import load_mnist

        return _pick(load_mnist("train")[0], q.calib_images, q.seed)

    def test(self, n: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        from hwgen.datasets import load_mnist, load_mnist_sample

        images, labels = load_mnist_sample() if n is not None and n <= 200 else load_mnist("test")
        return images[:n], labels[:n]

    def key(self) -> str:
        from hwgen.datasets import MNIST_DIR

        sums = MNIST_DIR / "MD5SUMS"
        return "mnist:" + hashlib.sha256(sums.read_bytes() if sums.is_file() else b"").hexdigest()


@dataclass
class DigitsData(Data):
    """scikit-learn's bundled 8x8 digits (no download): x = (v - 8) / 8 in [-1, 1]."""

    desc: str = "sklearn digits"
    n_test: int = 0
    uint8: bool = False

    def __post_init__(self) -> None:
        from hwgen.datasets import load_digits

        self.n_test = len(load_digits("test")[1])

    def calib(self, q: QuantConfig) -> np.ndarray:
        from hwgen.datasets import load_digits

        return _pick(load_digits("train")[0], q.calib_images, q.seed)

    def test(self, n: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        from hwgen.datasets import load_digits

        images, labels = load_digits("test")
        return images[:n], labels[:n]

    def key(self) -> str:
        from hwgen.datasets import load_digits

        return "digits:" + _digest(*load_digits("train"), *load_digits("test"))


@dataclass
class ArrayData(Data):
    """User images (a --calib file or hwgen.compile(calib=...)): they calibrate, and the same
    images are simulated and, with labels, measure accuracy."""

    images: np.ndarray = field(default=None, repr=False)
    labels: np.ndarray | None = field(default=None, repr=False)

    def calib(self, q: QuantConfig) -> np.ndarray:
        return _pick(self.images, q.calib_images, q.seed)

    def test(self, n: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        return self.images[:n], None if self.labels is None else self.labels[:n]

    def key(self) -> str:
        return "array:" + _digest(self.images, self.labels)


def check_images(images: object, labels: object, where: str) -> ArrayData:
    """Validate user images (+ labels): numeric, finite, (N,H,W) or (N,C,H,W), N >= 1."""
    try:
        x = np.asarray(images)
    except Exception as e:  # noqa: BLE001 - anything array-like may fail its own way
        raise HwgenError(f"{where}: images are not an array ({e})") from None
    if x.dtype.kind not in "iuf" or x.ndim not in (3, 4) or len(x) == 0:
        raise HwgenError(
            f"{where}: images must be a non-empty numeric (N,H,W) or (N,C,H,W) array, "
            f"not {x.dtype}{list(x.shape)}"
        )
    if x.dtype.kind in "iu":
        if x.min() < 0 or x.max() > 255:
            raise HwgenError(f"{where}: integer pixels must be in 0..255, not {x.min()}..{x.max()}")
        x = x.astype(np.uint8)
    elif not np.all(np.isfinite(x)):
        raise HwgenError(f"{where}: images hold NaN or infinite values")
    y = None
    if labels is not None:
        y = np.asarray(labels)
        if y.dtype.kind not in "iu" or y.shape != (len(x),):
            raise HwgenError(
                f"{where}: labels must be integers of shape ({len(x)},), not "
                f"{y.dtype}{list(y.shape)}"
            )
        y = y.astype(np.int64)
    return ArrayData(desc=where, n_test=len(x), uint8=x.dtype == np.uint8, images=x, labels=y)


_IMAGE_KEYS = ("images", "x", "X", "data")
_LABEL_KEYS = ("labels", "y", "Y", "targets")


def load_image_file(path: Path) -> ArrayData:
    """A .npy (images) or .npz (``images`` [+ ``labels``]) file; errors name the file."""
    if not path.is_file():
        raise HwgenError(f"{path}: calibration file not found")
    if path.suffix not in (".npy", ".npz"):
        raise HwgenError(f"{path}: calibration data must be a .npz or .npy file")
    if path.suffix == ".npy":
        images, labels = _npy(path), None
    else:
        try:
            with np.load(path, allow_pickle=False) as z:
                images, labels = _arrays(path, z)
        except HwgenError:
            raise
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
            raise HwgenError(
                f"{path}: not a readable .npz file ({type(e).__name__}: {e})"
            ) from None
    return check_images(images, labels, str(path))


def _npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise HwgenError(f"{path}: not a readable .npy file ({type(e).__name__}: {e})") from None


def _arrays(path: Path, z) -> tuple[np.ndarray, np.ndarray | None]:
    names = list(z.files)
    img = next((k for k in _IMAGE_KEYS if k in names), None)
    if img is None:
        if len(names) != 1:
            raise HwgenError(f"{path}: no 'images' array (arrays: {', '.join(names) or 'none'})")
        img = names[0]
    lbl = next((k for k in _LABEL_KEYS if k in names), None)
    return z[img], (z[lbl] if lbl else None)
