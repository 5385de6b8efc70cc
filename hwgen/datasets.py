"""MNIST from the project's own copy in ``data/mnist/`` (no download, md5-checked on load).

The gzip files are stored as shipped by LeCun et al. (idx-ubyte, gzipped). Files larger than
:data:`PART_SIZE` are committed as ``<name>.part0``, ``<name>.part1``, ... (the repository keeps
every file under 5 MB); the loader joins the parts and checks the md5 of the *joined* gzip
against ``MD5SUMS`` before parsing, so a corrupted, truncated or missing part is an error that
names the file rather than a silently wrong data set.

``python -m hwgen.datasets --import-from DIR`` rebuilds ``data/mnist/`` (and the test sample
``data/mnist_sample.npz``) from a directory holding the four original gzip files and MD5SUMS.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import shutil
import struct
import sys
import zipfile
import zlib
from pathlib import Path
from typing import Literal

import numpy as np

from hwgen.errors import HwgenError

__all__ = [
    "DATA_DIR",
    "MNIST_DIR",
    "SAMPLE_PATH",
    "PART_SIZE",
    "DatasetError",
    "load_digits",
    "load_mnist",
    "load_mnist_sample",
    "mnist_available",
    "parse_idx",
    "read_checked",
    "to_model_input",
]

# The repository root is one level above the hwgen package; data lives next to it.
DATA_DIR = Path(__file__).resolve().parents[1] / "data"
MNIST_DIR = DATA_DIR / "mnist"
SAMPLE_PATH = DATA_DIR / "mnist_sample.npz"
# 4 MiB: comfortably under the 5 MB per-file limit for committed files.
PART_SIZE = 4 * 1024 * 1024
SAMPLE_SIZE = 200

Split = Literal["train", "test"]

_FILES: dict[str, tuple[str, str, int]] = {
    # split: (images file, labels file, expected count)
    "train": ("train-images.idx3-ubyte.gz", "train-labels.idx1-ubyte.gz", 60000),
    "test": ("t10k-images.idx3-ubyte.gz", "t10k-labels.idx1-ubyte.gz", 10000),
}
_IDX_UBYTE = 0x08  # idx type code for unsigned byte


class DatasetError(HwgenError, ValueError):
    """A data file is missing, corrupted, truncated or not in the expected format."""


def _read_md5sums(directory: Path) -> dict[str, str]:
    path = directory / "MD5SUMS"
    if not path.is_file():
        raise DatasetError(f"{path}: MD5SUMS file is missing (needed to verify the MNIST copy)")
    sums: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name.strip().lstrip("*")] = digest.lower()
    return sums


def _parts(directory: Path, name: str) -> list[Path]:
    whole = directory / name
    if whole.is_file():
        return [whole]
    parts: list[Path] = []
    while (p := directory / f"{name}.part{len(parts)}").is_file():
        parts.append(p)
    if not parts:
        raise DatasetError(
            f"{whole}: file not found (neither {name} nor {name}.part0, ... exist in {directory})"
        )
    return parts


def read_checked(directory: Path, name: str) -> bytes:
    """Return the bytes of ``directory/name`` (joined from ``.partN`` files if split),
    after checking them against the md5 recorded in ``directory/MD5SUMS``."""
    sums = _read_md5sums(directory)
    if name not in sums:
        raise DatasetError(f"{directory / 'MD5SUMS'}: no md5 recorded for {name}")
    parts = _parts(directory, name)
    data = b"".join(p.read_bytes() for p in parts)
    digest = hashlib.md5(data).hexdigest()
    if digest != sums[name]:
        shown = ", ".join(p.name for p in parts)
        raise DatasetError(
            f"{directory / name}: md5 mismatch (got {digest}, expected {sums[name]}; "
            f"{len(data)} bytes read from {shown}): the file is corrupted or truncated"
        )
    return data


def parse_idx(raw: bytes, name: str, ndim: int, dims: tuple[int, ...] = ()) -> np.ndarray:
    """Parse an (uncompressed) idx-ubyte file: magic 0x0000_08_<ndim>, big-endian int32 dims,
    then the payload. ``dims`` are the expected trailing dimensions (e.g. (28, 28))."""
    if len(raw) < 4 + 4 * ndim:
        raise DatasetError(f"{name}: too short for an idx header ({len(raw)} bytes)")
    zero, dtype, got_ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != _IDX_UBYTE or got_ndim != ndim:
        raise DatasetError(
            f"{name}: bad idx magic 0x{raw[:4].hex()} (expected 0x000008{ndim:02x}: "
            f"unsigned bytes, {ndim} dimension(s))"
        )
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    if tuple(shape[1:]) != tuple(dims):
        raise DatasetError(f"{name}: dimensions {shape[1:]} (expected {tuple(dims)})")
    payload = raw[4 + 4 * ndim :]
    if len(payload) != int(np.prod(shape)):
        raise DatasetError(
            f"{name}: payload is {len(payload)} bytes but the header {shape} needs "
            f"{int(np.prod(shape))}"
        )
    return np.frombuffer(payload, dtype=np.uint8).reshape(shape).copy()


def _load_idx(directory: Path, name: str, ndim: int, dims: tuple[int, ...]) -> np.ndarray:
    gz = read_checked(directory, name)
    try:
        raw = gzip.decompress(gz)
    except (OSError, EOFError, zlib.error) as e:  # only reachable if MD5SUMS itself is wrong
        raise DatasetError(f"{directory / name}: not a valid gzip file ({e})") from e
    return parse_idx(raw, str(directory / name), ndim, dims)


def load_mnist(split: Split, data_dir: Path | str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Load an MNIST split: ``(images uint8 [N, 28, 28], labels uint8 [N])``.

    ``split`` is "train" (60,000) or "test" (10,000). ``data_dir`` defaults to the project's
    ``data/mnist``. Raises :class:`DatasetError` naming the file on any integrity problem.
    """
    if split not in _FILES:
        raise ValueError(f"MNIST split must be 'train' or 'test', not {split!r}")
    directory = Path(data_dir) if data_dir is not None else MNIST_DIR
    img_name, lbl_name, count = _FILES[split]
    images = _load_idx(directory, img_name, 3, (28, 28))
    labels = _load_idx(directory, lbl_name, 1, ())
    if len(images) != count or len(labels) != count:
        raise DatasetError(
            f"{directory}: MNIST {split} has {len(images)} images and {len(labels)} labels "
            f"(expected {count} of each)"
        )
    if labels.max() > 9:
        raise DatasetError(f"{directory / lbl_name}: label {labels.max()} out of range 0..9")
    return images, labels


def mnist_available(data_dir: Path | str | None = None) -> bool:
    """True if every MNIST gzip file (whole or split) is present (not verified)."""
    directory = Path(data_dir) if data_dir is not None else MNIST_DIR
    names = [n for img, lbl, _ in _FILES.values() for n in (img, lbl)]
    return all((directory / n).is_file() or (directory / f"{n}.part0").is_file() for n in names)


def load_mnist_sample(path: Path | str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The first 200 MNIST test images and labels (uint8 [200,28,28], uint8 [200]),
    committed as a small npz so tests and CI never need the full set."""
    p = Path(path) if path is not None else SAMPLE_PATH
    try:
        with np.load(p, allow_pickle=False) as z:
            images, labels = z["images"], z["labels"]
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
        raise DatasetError(f"{p}: not a readable MNIST sample ({type(e).__name__}: {e})") from None
    if images.dtype != np.uint8 or images.shape[1:] != (28, 28) or images.ndim != 3:
        raise DatasetError(f"{p}: images are {images.dtype}{images.shape}, not uint8[N,28,28]")
    if labels.dtype != np.uint8 or labels.shape != (len(images),):
        raise DatasetError(f"{p}: labels are {labels.dtype}{labels.shape}, not uint8[N]")
    return images, labels


DIGITS_TEST = 360  # the last 360 of sklearn's 1,797 digits are the test split


def load_digits(split: Split) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits (no download) as model inputs:
    ``(float32 [N, 8, 8] with x = (v - 8) / 8 in [-1, 1], int64 labels [N])``.

    Deterministic split: the first 1,437 images train, the last 360 test. The inputs are
    signed (centred), so this path exercises an input scale derived from the data.
    """
    from sklearn.datasets import load_digits as _sk

    if split not in ("train", "test"):
        raise ValueError(f"digits split must be 'train' or 'test', not {split!r}")
    d = _sk()
    x = ((d.images.astype(np.float32) - 8.0) / 8.0).astype(np.float32)
    y = d.target.astype(np.int64)
    cut = len(x) - DIGITS_TEST
    return (x[:cut], y[:cut]) if split == "train" else (x[cut:], y[cut:])


def to_model_input(images: np.ndarray) -> np.ndarray:
    """uint8 [N,H,W] (or [N,C,H,W]) pixels -> float32 [N,C,H,W] ``x = pixel/255``; float
    images are already model inputs (only the channel axis is added to [N,H,W]).

    No mean/std normalisation: the integer contract needs a zero pixel to stay exactly zero.
    """
    if images.dtype.kind == "f":
        x = images.astype(np.float32)
        return x[:, None] if x.ndim == 3 else x
    if images.dtype != np.uint8:
        raise TypeError(f"expected uint8 pixels or float inputs, got {images.dtype}")
    if images.ndim == 3:
        images = images[:, None]
    return images.astype(np.float32) / np.float32(255.0)


def import_mnist(src: Path, dst: Path = MNIST_DIR, sample: Path = SAMPLE_PATH) -> None:
    """Copy the four MNIST gzip files and MD5SUMS from ``src`` into ``dst``, splitting files
    larger than PART_SIZE, then write the 200-image test sample; verifies by reloading."""
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src / "MD5SUMS", dst / "MD5SUMS")
    for img, lbl, _ in _FILES.values():
        for name in (img, lbl):
            data = read_checked(src, name)
            for stale in dst.glob(f"{name}*"):
                stale.unlink()
            if len(data) <= PART_SIZE:
                (dst / name).write_bytes(data)
            else:
                for i in range(0, len(data), PART_SIZE):
                    (dst / f"{name}.part{i // PART_SIZE}").write_bytes(data[i : i + PART_SIZE])
    images, labels = load_mnist("test", dst)
    np.savez_compressed(sample, images=images[:SAMPLE_SIZE], labels=labels[:SAMPLE_SIZE])
    load_mnist("train", dst)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hwgen.datasets", description=__doc__)
    ap.add_argument(
        "--import-from",
        type=Path,
        metavar="DIR",
        help="directory with the 4 MNIST .gz files and MD5SUMS to copy into data/",
    )
    ap.add_argument("--check", action="store_true", help="load and verify both splits")
    args = ap.parse_args(argv)
    if args.import_from:
        import_mnist(args.import_from)
        print(f"imported MNIST into {MNIST_DIR} and {SAMPLE_PATH}")
    if args.check or not args.import_from:
        for split in ("train", "test"):
            images, labels = load_mnist(split)  # type: ignore[arg-type]
            print(f"{split}: {images.shape} {images.dtype}, labels {np.bincount(labels)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
