"""hwgen.datasets: integrity checks (md5, parts, idx format) and the committed sample."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from hwgen import datasets
from hwgen.datasets import DatasetError, load_mnist, load_mnist_sample, parse_idx

LABELS = "t10k-labels.idx1-ubyte.gz"
IMAGES = "t10k-images.idx3-ubyte.gz"
TRAIN_IMAGES = "train-images.idx3-ubyte.gz"


def _copy_small(tmp_path: Path, names: tuple[str, ...] = (LABELS,)) -> Path:
    shutil.copyfile(datasets.MNIST_DIR / "MD5SUMS", tmp_path / "MD5SUMS")
    for n in names:
        shutil.copyfile(datasets.MNIST_DIR / n, tmp_path / n)
    return tmp_path


def test_sample_shape_and_dtype() -> None:
    images, labels = load_mnist_sample()
    assert images.shape == (200, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (200,) and labels.dtype == np.uint8
    assert labels.max() <= 9 and len(np.unique(labels)) == 10
    assert images.max() == 255 and images.min() == 0


def test_to_model_input_keeps_zero_zero() -> None:
    images, _ = load_mnist_sample()
    x = datasets.to_model_input(images[:3])
    assert x.shape == (3, 1, 28, 28) and x.dtype == np.float32
    np.testing.assert_array_equal(x[:, 0] == 0, images[:3] == 0)
    assert x.max() == 1.0


def test_read_checked_ok(tmp_path: Path) -> None:
    d = _copy_small(tmp_path)
    assert len(datasets.read_checked(d, LABELS)) == (datasets.MNIST_DIR / LABELS).stat().st_size


def test_md5_mismatch_names_file(tmp_path: Path) -> None:
    d = _copy_small(tmp_path)
    raw = bytearray((d / LABELS).read_bytes())
    raw[100] ^= 0xFF
    (d / LABELS).write_bytes(bytes(raw))
    with pytest.raises(DatasetError, match=rf"{LABELS}: md5 mismatch.*corrupted or truncated"):
        datasets.read_checked(d, LABELS)


def test_truncated_file(tmp_path: Path) -> None:
    d = _copy_small(tmp_path)
    (d / LABELS).write_bytes((d / LABELS).read_bytes()[:-10])
    with pytest.raises(DatasetError, match=rf"{LABELS}: md5 mismatch"):
        datasets.read_checked(d, LABELS)


def test_missing_file(tmp_path: Path) -> None:
    d = _copy_small(tmp_path)
    with pytest.raises(DatasetError, match=rf"{IMAGES}: file not found"):
        datasets.read_checked(d, IMAGES)


def test_split_parts_joined_and_checked(tmp_path: Path) -> None:
    d = _copy_small(tmp_path)
    raw = (d / LABELS).read_bytes()
    (d / LABELS).unlink()
    for i in range(3):  # any number of parts; the md5 is that of the joined file
        (d / f"{LABELS}.part{i}").write_bytes(raw[i * 2000 : (i + 1) * 2000])
    assert datasets.read_checked(d, LABELS) == raw
    (d / f"{LABELS}.part2").unlink()  # a missing last part is a truncation
    with pytest.raises(DatasetError, match=r"md5 mismatch.*part0, .*part1"):
        datasets.read_checked(d, LABELS)


def test_committed_files_under_5mb() -> None:
    for p in datasets.DATA_DIR.rglob("*"):
        if p.is_file():
            assert p.stat().st_size < 5_000_000, p


def _idx(magic: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    return struct.pack(">I", magic) + struct.pack(f">{len(dims)}I", *dims) + payload


def test_parse_idx_ok() -> None:
    a = parse_idx(_idx(0x803, (2, 28, 28), bytes(range(256)) * 6 + bytes(32)), "x", 3, (28, 28))
    assert a.shape == (2, 28, 28) and a.dtype == np.uint8 and a[0, 0, 5] == 5


@pytest.mark.parametrize(
    "raw, match",
    [
        (_idx(0x801, (2, 28, 28), bytes(1568)), "bad idx magic 0x00000801"),
        (_idx(0x903, (2, 28, 28), bytes(1568)), "bad idx magic"),
        (_idx(0x803, (2, 28, 27), bytes(1512)), r"dimensions \(28, 27\)"),
        (_idx(0x803, (2, 28, 28), bytes(1567)), "payload is 1567 bytes"),
        (b"\x00\x00", "too short"),
    ],
)
def test_parse_idx_format_errors(raw: bytes, match: str) -> None:
    with pytest.raises(DatasetError, match=match):
        parse_idx(raw, "x.idx3-ubyte", 3, (28, 28))


def test_bad_gzip_content_is_format_error(tmp_path: Path) -> None:
    # A file whose md5 matches MD5SUMS but whose content is wrong (e.g. a bad MD5SUMS).
    payload = gzip.compress(_idx(0x801, (100,), bytes(100)))
    (tmp_path / IMAGES).write_bytes(payload)
    (tmp_path / "MD5SUMS").write_text(f"{hashlib.md5(payload).hexdigest()}  {IMAGES}\n")
    with pytest.raises(DatasetError, match=f"{IMAGES}: bad idx magic"):
        load_mnist("test", tmp_path)


def test_bad_split() -> None:
    with pytest.raises(ValueError, match="'train' or 'test'"):
        load_mnist("validation")  # type: ignore[arg-type]


def test_full_test_split_matches_sample() -> None:
    images, labels = load_mnist("test")
    assert images.shape == (10000, 28, 28) and labels.shape == (10000,)
    s_images, s_labels = load_mnist_sample()
    np.testing.assert_array_equal(images[:200], s_images)
    np.testing.assert_array_equal(labels[:200], s_labels)


def test_train_images_are_split_and_verified() -> None:
    assert not (datasets.MNIST_DIR / TRAIN_IMAGES).exists()
    assert (datasets.MNIST_DIR / f"{TRAIN_IMAGES}.part0").is_file()
    assert len(datasets.read_checked(datasets.MNIST_DIR, TRAIN_IMAGES)) == 9_719_438
