"""Datasets as tensors on the training device.

Owns the dataset registry, the offline data (scikit-learn's bundled digits, a port of the
procedural MNIST-1D generator, four 2-D toys), readers for the real on-disk formats of MNIST,
Fashion-MNIST (IDX) and CIFAR-10 (pickled "python version"), the user-requested download of
those three, the train/test split and the standardization with training statistics.

Nothing here touches the network unless the caller explicitly asks for a download.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.client
import importlib.util
import math
import os
import pickle
import shutil
import struct
import tarfile
import tempfile
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

Progress = Callable[[int, int], None]
_Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class DatasetError(Exception):
    """A user-facing message (no traceback wanted): what failed and what to do."""


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    image_shape: tuple[int, ...] | None  # (C, H, W) when a CNN can use it; None otherwise
    n_classes: int
    offline: bool  # needs no download


@dataclass(frozen=True, eq=False)  # field-wise == on tensors is ambiguous; compare by identity
class Dataset:
    name: str
    x_train: torch.Tensor  # float32 (N, F), standardized with training statistics (or raw)
    y_train: torch.Tensor  # int64 (N,)
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int
    image_shape: tuple[int, ...] | None

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.x_test.shape[0])


_CATALOG = (  # name, description, image shape, classes, offline
    ("digits", "8x8 handwritten digits from scikit-learn (1,797 images)", (1, 8, 8), 10, True),
    ("mnist1d", "MNIST-1D: procedural length-40 signals of 10 digits", None, 10, True),
    ("spirals", "two interleaved 2-D spirals", None, 2, True),
    ("circles", "two concentric 2-D circles", None, 2, True),
    ("xor", "2-D XOR: the class is the sign of x*y", None, 2, True),
    ("moons", "two interleaving 2-D half-moons", None, 2, True),
    ("mnist", "MNIST digits 28x28, 70k images (11 MB download)", (1, 28, 28), 10, False),
    ("fashion_mnist", "Fashion-MNIST 28x28, 70k images (30 MB download)", (1, 28, 28), 10, False),
    ("cifar10", "CIFAR-10 colour 32x32, 60k images (163 MB download)", (3, 32, 32), 10, False),
)
DATASETS: dict[str, DatasetInfo] = {row[0]: DatasetInfo(*row) for row in _CATALOG}

_TOYS = ("spirals", "circles", "xor", "moons")
_TOY_DEFAULT_N = 1000
_MNIST1D_DEFAULT_N = 5000
# Generated data draws from seed + offset: with the same seed as the split's permutation, the
# bits that place a sample would also pick whether it is held out.
_GEN_SEED_OFFSET = 1_000_003


@dataclass(frozen=True)
class _Remote:
    mirrors: tuple[str, ...]
    files: tuple[tuple[str, str, int], ...]  # (file name, MD5, size in bytes)


_IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
_CIFAR_TAR = "cifar-10-python.tar.gz"
_CIFAR_DIR = "cifar-10-batches-py"
_CIFAR_BATCHES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")

_MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
_REMOTES: dict[str, _Remote] = {
    "mnist": _Remote(
        _MNIST_MIRRORS,
        (
            (_IDX_FILES[0], "f68b3c2dcbeaaa9fbdd348bbdeb94873", 9912422),
            (_IDX_FILES[1], "d53e105ee54ea40749a09fcbcd1e9432", 28881),
            (_IDX_FILES[2], "9fb629c4189551a2d022fa330f9573f3", 1648877),
            (_IDX_FILES[3], "ec29112dd5afa0611ce80d1b7f02629c", 4542),
        ),
    ),
    "fashion_mnist": _Remote(
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        (
            (_IDX_FILES[0], "8d4fb7e6c68d591d4c3dfef9ec88bf0d", 26421880),
            (_IDX_FILES[1], "25c81989df183df01b3e8a0aad5dffbe", 29515),
            (_IDX_FILES[2], "bef4ecab320f06d8554ea6380940ec79", 4422102),
            (_IDX_FILES[3], "bb300cfdad3c16e7a12a480ee83cd310", 5148),
        ),
    ),
    "cifar10": _Remote(
        ("https://www.cs.toronto.edu/~kriz/",),
        ((_CIFAR_TAR, "c58f30108f718f92721af3b95e74349a", 170498071),),
    ),
}


def default_root() -> Path:
    """Cache folder for downloaded data: $BNVIZ_DATA if set, else ~/.cache/bnviz."""
    env = os.environ.get("BNVIZ_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "bnviz"


def _check_name(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    return DATASETS[name]


def _resolve_root(root: str | Path | None) -> Path:
    return (Path(root).expanduser() if root is not None else default_root()).absolute()


# ---------------------------------------------------------------------------------------------
# MNIST-1D, ported from https://github.com/greydanus/mnist1d (Greydanus & Kobak, "Scaling down
# deep learning with MNIST-1D", Apache-2.0). Same templates and transform chain, but drawn from a
# local numpy Generator instead of the global seed, so its streams differ from the original's.
# ---------------------------------------------------------------------------------------------

_MNIST1D_TEMPLATES = np.asarray(
    [
        [5, 6, 6.5, 6.75, 7, 7, 7, 7, 6.75, 6.5, 6, 5],
        [5, 3, 3, 3.4, 3.8, 4.2, 4.6, 5, 5.4, 5.8, 5, 5],
        [5, 6, 6.5, 6.5, 6, 5.25, 4.75, 4, 3.5, 3.5, 4, 5],
        [5, 6, 6.5, 6.5, 6, 5, 5, 6, 6.5, 6.5, 6, 5],
        [5, 4.4, 3.8, 3.2, 2.6, 2.6, 5, 5, 5, 5, 5, 5],
        [5, 3, 3, 3, 3, 5, 6, 6.5, 6.5, 6, 4.5, 5],
        [5, 4, 3.5, 3.25, 3, 3, 3, 3, 3.25, 3.5, 4, 5],
        [5, 7, 7, 6.6, 6.2, 5.8, 5.4, 5, 4.6, 4.2, 5, 5],
        [5, 4, 3.5, 3.5, 4, 5, 5, 4, 3.5, 3.5, 4, 5],
        [5, 4, 3.5, 3.5, 4, 5, 5, 5, 5, 4.7, 4.3, 5],
    ]
)
_M1D_TEMPLATE_LEN = 12
_M1D_PADDING = (36, 60)
_M1D_SCALE_COEFF = 0.4
_M1D_MAX_TRANSLATION = 48
_M1D_CORR_NOISE = 0.25
_M1D_IID_NOISE = 2e-2
_M1D_SHEAR = 0.75
_M1D_LENGTH = 40


def _mnist1d_templates() -> np.ndarray:
    x = _MNIST1D_TEMPLATES - _MNIST1D_TEMPLATES.mean(1, keepdims=True)
    x /= x.std(1, keepdims=True)
    x -= x[:, :1]  # every digit starts at 0, so padding joins it without a step
    return x / 6.0


def _resample(x: np.ndarray, lengths: np.ndarray, n: int) -> np.ndarray:
    """Linear interpolation of each row's first lengths[i] values onto n evenly spaced points.

    Row-wise equivalent of the original's interp1d from linspace(0, 1, length) to linspace(0, 1, n).
    """
    pos = np.linspace(0, 1, n)[None, :] * (lengths[:, None] - 1)
    left = np.minimum(np.floor(pos).astype(np.int64), lengths[:, None] - 2)
    frac = pos - left
    rows = np.arange(len(x))[:, None]
    return x[rows, left] * (1 - frac) + x[rows, left + 1] * frac


def _make_mnist1d(n_samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-1D signals (n, 40) and int64 labels (n,), n = n_samples // 10 * 10, shuffled.

    The original transforms one sample at a time; this applies the same steps to all rows at
    once (about 100x faster), so the random draws come in a different order.
    """
    from scipy.ndimage import gaussian_filter1d

    rng = np.random.default_rng(seed)
    templates = _mnist1d_templates()
    y = np.repeat(np.arange(len(templates)), n_samples // len(templates))
    n = len(y)
    low, high = _M1D_PADDING
    width = _M1D_TEMPLATE_LEN + high  # length after the first interpolation
    # pad: the template followed by low..high zeros; eps keeps the template itself nonzero, so the
    # mask below marks only the padding as empty
    pad = low + (rng.random(n) * (high - low + 1)).astype(np.int64)
    x = np.zeros((n, width))
    x[:, :_M1D_TEMPLATE_LEN] = templates[y] + 1e-8
    x = _resample(x, _M1D_TEMPLATE_LEN + pad, width)
    x *= 1 + _M1D_SCALE_COEFF * (rng.random((n, 1)) - 0.5)
    # circular shift right by k in [0, max_translation); k = 0 is the identity
    shift = rng.integers(_M1D_MAX_TRANSLATION, size=(n, 1))
    x = x[np.arange(n)[:, None], (np.arange(width)[None, :] - shift) % width]
    # correlated noise fills the empty padding only; iid noise goes everywhere
    corr = gaussian_filter1d(_M1D_CORR_NOISE * rng.standard_normal(x.shape), 2, axis=1)
    x = np.where(x != 0, x, corr)
    x += _M1D_IID_NOISE * rng.standard_normal(x.shape)
    x -= _M1D_SHEAR * (rng.random((n, 1)) - 0.5) * np.linspace(-0.5, 0.5, width)
    x = _resample(x, np.full(n, width), _M1D_LENGTH)
    order = rng.permutation(n)
    return x[order], y[order].astype(np.int64)


def _read_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits file, read as its load_digits reads it, without importing
    scikit-learn: that import (SciPy with it) costs ~3 s of CPU, paid by every worker."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError("digits: scikit-learn is not installed (pip install scikit-learn)")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"
    data = np.loadtxt(path, delimiter=",")  # 1,797 rows: 64 pixel values (0–16), then the label
    return data[:, :-1], data[:, -1].astype(np.int64)


# ---------------------------------------------------------------------------------------------
# 2-D toys; noise is the std of Gaussian jitter in data units (the shapes span about [-1, 1]).
# ---------------------------------------------------------------------------------------------


def _make_toy(name: str, n: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_circles, make_moons

    if name == "moons":
        return make_moons(n_samples=n, noise=noise, random_state=seed)
    if name == "circles":
        return make_circles(n_samples=n, noise=noise, factor=0.5, random_state=seed)
    rng = np.random.default_rng(seed)
    if name == "xor":
        x = rng.uniform(-1, 1, size=(n, 2))
        y = (np.sign(x[:, 0]) * np.sign(x[:, 1]) > 0).astype(np.int64)
    else:  # spirals: 1.5 turns each, the second arm rotated by half a turn
        y = (np.arange(n) >= n // 2).astype(np.int64)
        theta = np.sqrt(rng.random(n)) * 3 * np.pi  # sqrt spreads points evenly along the arm
        r = theta / (3 * np.pi)
        angle = theta + np.pi * y
        x = np.stack([r * np.cos(angle), r * np.sin(angle)], axis=1)
    return x + noise * rng.standard_normal(x.shape), y


# ---------------------------------------------------------------------------------------------
# On-disk formats
# ---------------------------------------------------------------------------------------------


def _read_maybe_gzip(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":  # gzip magic; lets either file name hold either form
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError) as exc:
        raise DatasetError(
            f"{path}: corrupt gzip file ({exc}); delete it and fetch it again"
        ) from None


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file of unsigned bytes (gzip'd or not): labels (N,) or images (N, H, W)."""
    path = Path(path)
    raw = _read_maybe_gzip(path)
    if len(raw) < 4:
        raise DatasetError(f"{path}: too short to be an IDX file")
    (magic,) = struct.unpack(">I", raw[:4])
    if magic not in (0x801, 0x803):
        raise DatasetError(
            f"{path}: bad IDX magic number 0x{magic:08x} (expected 0x00000801 for labels or "
            "0x00000803 for images); the file is corrupt or not MNIST-format"
        )
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    if len(raw) - header != math.prod(dims):
        raise DatasetError(
            f"{path}: IDX size mismatch: header says {'x'.join(map(str, dims))} = "
            f"{math.prod(dims)} bytes, file holds {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _find(folder: Path, file_name: str) -> Path | None:
    for candidate in (file_name, file_name.removesuffix(".gz")):
        if (folder / candidate).is_file():
            return folder / candidate
    return None


def _missing(name: str, folder: Path, needed: str) -> DatasetError:
    return DatasetError(
        f"{name}: files not found in {folder} (need {needed}). Run `python -m bnviz download "
        f"{name}` with a network connection (or use the dashboard's Download button), or copy "
        "the files there."
    )


def _load_idx_dataset(name: str, folder: Path) -> _Arrays:
    paths = [_find(folder, f) for f in _IDX_FILES]
    if any(p is None for p in paths):
        raise _missing(name, folder, ", ".join(_IDX_FILES) + "; un-gzipped copies also work")
    xtr, ytr, xte, yte = (read_idx(p) for p in paths)  # type: ignore[arg-type]
    for images, labels, split in ((xtr, ytr, "train"), (xte, yte, "t10k")):
        if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.ndim != 1:
            raise DatasetError(
                f"{name}: {split} files in {folder} have shapes {images.shape} / {labels.shape}, "
                "expected (N, 28, 28) images and (N,) labels"
            )
        if len(images) != len(labels):
            raise DatasetError(
                f"{name}: {split} files in {folder} disagree: {len(images)} images but "
                f"{len(labels)} labels"
            )
    return xtr, ytr, xte, yte


_PICKLE_ALLOWED = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),  # numpy 1.x pickles (the real CIFAR files)
        ("numpy._core.multiarray", "_reconstruct"),  # numpy 2.x pickles
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }
)


class _ArrayUnpickler(pickle.Unpickler):
    """Only what the CIFAR batches need (numpy arrays, bytes), so a bad file cannot run code."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _PICKLE_ALLOWED:
            raise pickle.UnpicklingError(f"forbidden global {module}.{name}")
        return super().find_class(module, name)


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with path.open("rb") as f:
            batch = _ArrayUnpickler(f, encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as exc:
        raise DatasetError(f"{path}: not a CIFAR-10 python batch ({exc!r})") from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise DatasetError(
            f"{path}: data {data.shape} / labels {labels.shape}, expected (N, 3072) / (N,)"
        )
    return data, labels


def _extract_cifar(tar_path: Path, target: Path) -> None:
    """Copy just the six batch files out of the tarball (never trusting its member paths)."""
    target.mkdir(parents=True, exist_ok=True)
    found = set()
    try:
        with tarfile.open(tar_path, "r:*") as tf:
            for member in tf:
                p = PurePosixPath(member.name)
                if not (
                    member.isfile() and p.name in _CIFAR_BATCHES and p.parent.name == _CIFAR_DIR
                ):
                    continue
                src = tf.extractfile(member)
                assert src is not None  # regular file
                part = target / f"{p.name}.part"  # a fixed name: an interrupted run leaves one
                with part.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
                os.replace(part, target / p.name)
                found.add(p.name)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DatasetError(
            f"{tar_path}: cannot extract ({exc}); delete it and fetch it again"
        ) from None
    if missing := [b for b in _CIFAR_BATCHES if b not in found]:
        raise DatasetError(f"{tar_path}: tarball lacks {', '.join(missing)}")


def _load_cifar(folder: Path) -> _Arrays:
    batches = folder / _CIFAR_DIR
    if not all((batches / b).is_file() for b in _CIFAR_BATCHES):
        if not (folder / _CIFAR_TAR).is_file():
            raise _missing("cifar10", folder, f"{_CIFAR_TAR} or the extracted {_CIFAR_DIR}/ folder")
        _extract_cifar(folder / _CIFAR_TAR, batches)
    train = [_read_cifar_batch(batches / b) for b in _CIFAR_BATCHES[:-1]]
    xte, yte = _read_cifar_batch(batches / _CIFAR_BATCHES[-1])
    return (
        np.concatenate([x for x, _ in train]),
        np.concatenate([y for _, y in train]),
        xte,
        yte,
    )


# ---------------------------------------------------------------------------------------------
# Download (only on explicit request)
# ---------------------------------------------------------------------------------------------


def _fetch_file(
    urls: Sequence[str],
    dest: Path,
    md5: str,
    progress: Progress | None = None,
    done_before: int = 0,
    total: int = 0,
) -> None:
    """Try each URL until one yields bytes with the right MD5, then move them to `dest` atomically.

    progress gets (bytes done, total bytes) where both include `done_before`/`total` from the
    caller, so one bar can span several files; total 0 means unknown.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in urls:
        tmp = None
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                length = int(response.headers.get("Content-Length") or 0)
                grand_total = total or (done_before + length if length else 0)
                digest = hashlib.md5()
                done = 0
                with tempfile.NamedTemporaryFile(
                    dir=dest.parent,
                    prefix=f".{dest.name}.",
                    suffix=".part",
                    delete=False,
                ) as out:
                    tmp = Path(out.name)
                    while chunk := response.read(1 << 20):
                        out.write(chunk)
                        digest.update(chunk)
                        done += len(chunk)
                        if progress is not None:
                            progress(done_before + done, grand_total)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            errors.append(f"{url}: {exc}")
            if tmp is not None:
                tmp.unlink(missing_ok=True)
            continue
        if digest.hexdigest() != md5:
            tmp.unlink(missing_ok=True)
            errors.append(f"{url}: checksum mismatch (MD5 {digest.hexdigest()}, expected {md5})")
            continue
        os.replace(tmp, dest)
        return
    mismatch = any("checksum mismatch" in e for e in errors)
    raise DatasetError(
        (
            f"{dest.name}: downloaded file failed verification"
            if mismatch
            else f"{dest.name}: could not reach the mirrors"
        )
        + f" ({'; '.join(errors)}). Download it by hand from one of those URLs and copy it to "
        f"{dest.parent}."
    )


def download_dataset(
    name: str, root: str | Path | None = None, progress: Progress | None = None
) -> Path:
    """Fetch a dataset's missing files into root/<name>/ and return that folder.

    Offline datasets need nothing; their folder is returned without touching the disk.
    """
    _check_name(name)
    folder = _resolve_root(root) / name
    if name not in _REMOTES:
        return folder
    remote = _REMOTES[name]
    total = sum(size for _, _, size in remote.files)
    done = 0
    for file_name, md5, size in remote.files:
        have = _find(folder, file_name) is not None
        if name == "cifar10":
            have = have or all((folder / _CIFAR_DIR / b).is_file() for b in _CIFAR_BATCHES)
        if not have:
            urls = [mirror + file_name for mirror in remote.mirrors]
            _fetch_file(urls, folder / file_name, md5, progress, done, total)
        done += size
        if progress is not None:
            progress(done, total)
    return folder


# ---------------------------------------------------------------------------------------------
# Split, standardization, cache
# ---------------------------------------------------------------------------------------------


def _split(x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int) -> _Arrays:
    order = np.random.default_rng(seed).permutation(len(y))
    # ceil (like scikit-learn's train_test_split); the epsilon absorbs float noise in the product
    n_test = math.ceil(test_fraction * len(y) - 1e-9)
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


def _subsample(
    name: str, x: np.ndarray, y: np.ndarray, n_samples: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """The first n_samples of the training set after a seeded shuffle (0 = all of it)."""
    if n_samples == 0:
        return x, y
    if n_samples > len(y):
        raise DatasetError(
            f"{name}: n_samples={n_samples} asks for more than its {len(y)} training samples; "
            f"use at most {len(y)} (or 0 for all)"
        )
    keep = np.random.default_rng(seed).permutation(len(y))[:n_samples]
    return x[keep], y[keep]


def _column_stats(x: np.ndarray, chunk: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    # float64 accumulation in row chunks: exact enough, without a float64 copy of all of CIFAR
    total = np.zeros(x.shape[1])
    for i in range(0, len(x), chunk):
        total += x[i : i + chunk].sum(0, dtype=np.float64)
    mean = total / len(x)
    sq = np.zeros(x.shape[1])
    for i in range(0, len(x), chunk):
        sq += ((x[i : i + chunk] - mean) ** 2).sum(0)
    return mean, np.sqrt(sq / len(x))


INPUT_NORMS = ("standardize", "none")  # what happens to the features before training


def _standardize(
    xtr: np.ndarray, xte: np.ndarray, scale: float, input_norm: str = "standardize"
) -> tuple[np.ndarray, np.ndarray]:
    """float32 features × scale; standardized with training statistics unless input_norm is
    "none" (then the raw values: digits 0–16, images 0–1, toys as generated)."""
    xtr, xte = xtr.astype(np.float32), xte.astype(np.float32)
    xtr *= np.float32(scale)  # in place: CIFAR's training set is 0.6 GB as float32
    xte *= np.float32(scale)
    if input_norm == "none":
        return xtr, xte
    mean, std = _column_stats(xtr)
    # a feature constant in training carries no information: dividing by 1 maps it to 0 there
    std = np.where(std < 1e-6, 1.0, std)
    for x in (xtr, xte):
        x -= mean.astype(np.float32)
        x /= std.astype(np.float32)
    return xtr, xte


@functools.lru_cache(maxsize=4)  # a group of runs reloads the same data; CIFAR is ~0.7 GB
def _load_arrays(
    name: str,
    n_samples: int,
    noise: float,
    test_fraction: float,
    seed: int,
    root: Path | None,
    input_norm: str = "standardize",
    input_scale: float = 1.0,
) -> _Arrays:
    scale = 1.0
    if name in ("mnist", "fashion_mnist", "cifar10"):
        assert root is not None
        folder = root / name
        xtr, ytr, xte, yte = (
            _load_cifar(folder) if name == "cifar10" else _load_idx_dataset(name, folder)
        )
        xtr, xte = xtr.reshape(len(xtr), -1), xte.reshape(len(xte), -1)
        xtr, ytr = _subsample(name, xtr, ytr, n_samples, seed)
        scale = 1 / 255
    else:
        if name == "digits":
            x, y = _read_digits()
        elif name == "mnist1d":
            x, y = _make_mnist1d(n_samples or _MNIST1D_DEFAULT_N, seed + _GEN_SEED_OFFSET)
        else:
            x, y = _make_toy(name, n_samples or _TOY_DEFAULT_N, noise, seed + _GEN_SEED_OFFSET)
        xtr, ytr, xte, yte = _split(x, y, test_fraction, seed)
        if name == "digits":  # a fixed set: n_samples keeps part of its training split
            xtr, ytr = _subsample(name, xtr, ytr, n_samples, seed)
    if len(ytr) == 0 or len(yte) == 0:
        raise DatasetError(
            f"{name}: split leaves {len(ytr)} training and {len(yte)} test samples; "
            "use more samples or another test fraction"
        )
    xtr, xte = _standardize(xtr, xte, scale, input_norm)
    if input_scale != 1.0:  # every other feature on another scale (Ng's "0–1 vs 1–1,000")
        xtr[:, 1::2] *= np.float32(input_scale)
        xte[:, 1::2] *= np.float32(input_scale)
    return xtr, ytr.astype(np.int64), xte, yte.astype(np.int64)


def load_dataset(
    name: str,
    *,
    n_samples: int = 0,
    noise: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
    device: str | torch.device = "cpu",
    root: str | Path | None = None,
    download: bool = False,
    progress: Progress | None = None,
    input_norm: str = "standardize",
    input_scale: float = 1.0,
) -> Dataset:
    """Load `name` as standardized float32 features and int64 labels on `device`.

    n_samples: total samples for generated data (0 = its default), or a seeded subsample of the
    training set for digits / mnist / fashion_mnist / cifar10 (0 = all; their test set stays
    whole; more than the training set holds is an error).
    noise: jitter of the 2-D toys. test_fraction: held-out share where there is no official
    split. root: cache folder (default_root()). download: fetch missing files (explicit only).
    input_norm: "standardize" (training mean 0, std 1 per feature) or "none" (raw values).
    input_scale: then multiplies every other feature (indices 1, 3, 5, …): two scales of input.
    """
    arrays = load_arrays(
        name,
        n_samples=n_samples,
        noise=noise,
        test_fraction=test_fraction,
        seed=seed,
        root=root,
        download=download,
        progress=progress,
        input_norm=input_norm,
        input_scale=input_scale,
    )
    import torch  # here, not at the top: the web server reads DATASETS without loading torch

    info = DATASETS[name]
    xtr, ytr, xte, yte = (torch.from_numpy(a).to(device=device, copy=True) for a in arrays)
    return Dataset(name, xtr, ytr, xte, yte, info.n_classes, info.image_shape)


def load_arrays(
    name: str,
    *,
    n_samples: int = 0,
    noise: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
    root: str | Path | None = None,
    download: bool = False,
    progress: Progress | None = None,
    input_norm: str = "standardize",
    input_scale: float = 1.0,
) -> _Arrays:
    """`load_dataset`'s arrays in NumPy (x_train, y_train, x_test, y_test), without torch:
    cached, shared, never to be written to."""
    info = _check_name(name)
    if input_norm not in INPUT_NORMS:
        raise DatasetError(f"input_norm={input_norm!r}: choose one of {', '.join(INPUT_NORMS)}")
    if not (math.isfinite(input_scale) and input_scale > 0):
        raise DatasetError(f"input_scale={input_scale!r}: must be a positive number")
    if n_samples < 0 or noise < 0:
        raise DatasetError(f"{name}: n_samples and noise must be >= 0")
    official_split = not info.offline
    if not official_split and not 0 < test_fraction < 1:
        raise DatasetError(f"{name}: test_fraction must be between 0 and 1, got {test_fraction}")
    resolved = None if info.offline else _resolve_root(root)
    if download and not info.offline:
        download_dataset(name, resolved, progress)
    # parameters that do not affect a dataset are normalized so they do not split the cache
    arrays = _load_arrays(
        name,
        int(n_samples),
        float(noise) if name in _TOYS else 0.0,
        0.0 if official_split else float(test_fraction),
        int(seed),
        resolved,
        input_norm,
        float(input_scale),
    )
    return arrays
