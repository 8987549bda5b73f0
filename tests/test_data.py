"""Tests for bnviz.data: offline datasets, on-disk formats, verified downloads (no network)."""

from __future__ import annotations

import gzip
import hashlib
import pickle
import struct
import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from bnviz import data
from bnviz.data import DATASETS, DatasetError, default_root, download_dataset, load_dataset

TOYS = ["spirals", "circles", "xor", "moons"]


def expected_standardized(train: np.ndarray, other: np.ndarray) -> np.ndarray:
    """`other` standardized with `train`'s per-feature statistics, constant features to 0."""
    mean, std = train.mean(0), train.std(0)
    return (other - mean) / np.where(std < 1e-6, 1.0, std)


# --- registry and errors ---------------------------------------------------------------------


def test_registry() -> None:
    assert list(DATASETS) == [
        "digits", "mnist1d", "spirals", "circles", "xor", "moons",
        "mnist", "fashion_mnist", "cifar10",
    ]  # fmt: skip
    assert DATASETS["digits"].image_shape == (1, 8, 8)
    assert DATASETS["mnist"].image_shape == (1, 28, 28)
    assert DATASETS["fashion_mnist"].image_shape == (1, 28, 28)
    assert DATASETS["cifar10"].image_shape == (3, 32, 32)
    assert DATASETS["mnist1d"].image_shape is None
    offline = {name for name, info in DATASETS.items() if info.offline}
    assert offline == {"digits", "mnist1d", *TOYS}
    assert all(DATASETS[t].n_classes == 2 for t in TOYS)
    assert all(info.name == name and info.description for name, info in DATASETS.items())


def test_unknown_name_lists_allowed_names() -> None:
    with pytest.raises(DatasetError) as exc:
        load_dataset("imagenet")
    assert "imagenet" in str(exc.value)
    for name in DATASETS:
        assert name in str(exc.value)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_bad_test_fraction(fraction: float) -> None:
    with pytest.raises(DatasetError, match="test_fraction"):
        load_dataset("moons", test_fraction=fraction)


def test_default_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BNVIZ_DATA", str(tmp_path / "store"))
    assert default_root() == tmp_path / "store"
    monkeypatch.delenv("BNVIZ_DATA")
    assert default_root() == Path.home() / ".cache" / "bnviz"


# --- digits ----------------------------------------------------------------------------------


def test_digits() -> None:
    from sklearn.datasets import load_digits

    ds = load_dataset("digits")
    assert (ds.n_train, ds.n_test, ds.n_features) == (1437, 360, 64)
    assert ds.x_train.shape == (1437, 64) and ds.x_test.shape == (360, 64)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert ds.n_classes == 10 and ds.image_shape == (1, 8, 8)
    assert set(ds.y_train.tolist()) == set(range(10))
    assert not torch.isnan(ds.x_train).any() and not torch.isnan(ds.x_test).any()
    # the split is a partition of all 1,797 images
    _, y_all = load_digits(return_X_y=True)
    counts = torch.bincount(torch.cat([ds.y_train, ds.y_test]), minlength=10)
    assert counts.tolist() == np.bincount(y_all).tolist()
    std = ds.x_train.std(0, unbiased=False)
    varying = std > 0
    assert 50 < int(varying.sum()) < 64  # some border pixels are always 0 in training
    assert torch.allclose(ds.x_train.mean(0), torch.zeros(64), atol=1e-5)
    assert torch.allclose(std[varying], torch.ones(int(varying.sum())), atol=1e-4)
    assert (ds.x_train[:, ~varying] == 0).all()


def test_digits_file_is_what_sklearn_loads() -> None:
    """The bundled file is read without importing scikit-learn, to the same arrays."""
    import subprocess
    import sys

    from sklearn.datasets import load_digits

    from bnviz.data import _read_digits

    x, y = _read_digits()
    x_ref, y_ref = load_digits(return_X_y=True)
    assert np.array_equal(x, x_ref) and np.array_equal(y, y_ref)
    code = "import sys, bnviz.data as d; d.load_dataset('digits'); print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_digits_seeded_split() -> None:
    a, b = load_dataset("digits", seed=0), load_dataset("digits", seed=0)
    assert a.x_train is not b.x_train  # fresh tensors even from the cache
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    c = load_dataset("digits", seed=1)
    assert c.n_train == 1437
    assert not torch.equal(a.y_train, c.y_train)


def test_cached_arrays_are_not_shared() -> None:
    a = load_dataset("digits")
    a.x_train.fill_(123.0)
    assert load_dataset("digits").x_train.abs().max() < 100


def test_digits_n_samples_keeps_a_seeded_training_subset() -> None:
    """n_samples shrinks the training split of digits (same seed → same subset); the test set
    keeps every sample it had."""
    full = load_dataset("digits", seed=3)
    small = load_dataset("digits", n_samples=200, seed=3)
    assert (small.n_train, small.n_test) == (200, full.n_test)
    assert torch.equal(small.y_test, full.y_test)
    data._load_arrays.cache_clear()
    again = load_dataset("digits", n_samples=200, seed=3)
    other = load_dataset("digits", n_samples=200, seed=4)
    assert torch.equal(again.x_train, small.x_train) and torch.equal(again.y_train, small.y_train)
    assert not torch.equal(other.y_train, small.y_train)
    # the subset is the first 200 of a seeded shuffle of the training split
    keep = np.random.default_rng(3).permutation(full.n_train)[:200]
    assert small.y_train.tolist() == full.y_train[torch.from_numpy(keep)].tolist()


def test_digits_n_samples_beyond_the_training_set() -> None:
    n_train = load_dataset("digits").n_train
    assert load_dataset("digits", n_samples=n_train).n_train == n_train
    with pytest.raises(DatasetError, match=f"n_samples={n_train + 1}.*at most {n_train}"):
        load_dataset("digits", n_samples=n_train + 1)


# --- mnist1d ---------------------------------------------------------------------------------


def test_mnist1d_shapes_and_balance() -> None:
    ds = load_dataset("mnist1d")
    assert ds.x_train.shape == (4000, 40) and ds.x_test.shape == (1000, 40)
    assert ds.image_shape is None and ds.n_classes == 10
    all_y = torch.cat([ds.y_train, ds.y_test])
    assert torch.bincount(all_y).tolist() == [500] * 10
    small = load_dataset("mnist1d", n_samples=500)
    assert (small.n_train, small.n_test) == (400, 100)
    assert torch.bincount(torch.cat([small.y_train, small.y_test])).tolist() == [50] * 10


def test_mnist1d_deterministic() -> None:
    a = load_dataset("mnist1d", n_samples=300, seed=4)
    data._load_arrays.cache_clear()
    b = load_dataset("mnist1d", n_samples=300, seed=4)
    c = load_dataset("mnist1d", n_samples=300, seed=5)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_train, b.y_train)
    assert not torch.allclose(a.x_train, c.x_train)


def test_mnist1d_matches_original_transform(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replay the generator's random draws through a per-sample copy of the original code."""
    from scipy.interpolate import interp1d
    from scipy.ndimage import gaussian_filter

    draws: list[np.ndarray] = []
    real_rng = np.random.default_rng

    class Recorder:
        def __init__(self, seed: int) -> None:
            self.rng = real_rng(seed)

        def __getattr__(self, method: str) -> Callable[..., np.ndarray]:
            def call(*args: object, **kwargs: object) -> np.ndarray:
                draws.append(getattr(self.rng, method)(*args, **kwargs))
                return draws[-1]

            return call

    monkeypatch.setattr(np.random, "default_rng", Recorder)
    x, y = data._make_mnist1d(60, seed=3)
    monkeypatch.undo()
    pad_u, scale_u, shift, corr, iid, shear_u, order = draws

    def interpolate(v: np.ndarray, n: int) -> np.ndarray:
        return interp1d(np.linspace(0, 1, len(v)), v, axis=0, kind="linear")(np.linspace(0, 1, n))

    templates = data._mnist1d_templates()
    expected = []
    for i, label in enumerate(np.repeat(np.arange(10), 6)):
        v = np.concatenate([templates[label] + 1e-8, np.zeros(36 + int(pad_u[i] * 25))])
        v = interpolate(v, 12 + 60)
        v *= 1 + 0.4 * (scale_u[i, 0] - 0.5)
        k = int(shift[i, 0])
        v = np.concatenate([v[-k:], v[:-k]]) if k else v
        mask = v != 0
        v = mask * v + (1 - mask) * gaussian_filter(0.25 * corr[i], 2)
        v = v + 2e-2 * iid[i]
        v = v - 0.75 * (shear_u[i, 0] - 0.5) * np.linspace(-0.5, 0.5, len(v))
        expected.append(interpolate(v, 40))
    assert x.shape == (60, 40)
    np.testing.assert_allclose(x, np.stack(expected)[order], atol=1e-12)
    assert y.tolist() == np.repeat(np.arange(10), 6)[order].tolist()
    # the templates as the original normalizes them: zero start, unit std before the /6
    assert templates.shape == (10, 12) and np.allclose(templates[:, 0], 0)
    assert np.allclose(templates.std(1), 1 / 6)


# --- 2-D toys --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TOYS)
def test_toy(name: str) -> None:
    ds = load_dataset(name)
    assert ds.x_train.shape == (800, 2) and ds.x_test.shape == (200, 2)
    assert ds.n_classes == 2 and ds.image_shape is None
    assert sorted(set(ds.y_train.tolist())) == [0, 1]
    counts = torch.bincount(torch.cat([ds.y_train, ds.y_test]))
    assert abs(int(counts[0]) - int(counts[1])) < 100  # roughly balanced
    small = load_dataset(name, n_samples=301)
    assert (small.n_train, small.n_test) == (240, 61)
    data._load_arrays.cache_clear()
    again = load_dataset(name)
    assert torch.equal(ds.x_train, again.x_train) and torch.equal(ds.y_test, again.y_test)
    assert not torch.allclose(ds.x_train, load_dataset(name, noise=0.3).x_train)
    assert not torch.allclose(ds.x_train, load_dataset(name, seed=1).x_train)


def test_xor_labels_follow_quadrants() -> None:
    x, y = data._make_toy("xor", 400, 0.0, seed=0)
    assert np.array_equal(y, (x[:, 0] * x[:, 1] > 0).astype(np.int64))


# --- IDX (MNIST / Fashion-MNIST) ---------------------------------------------------------------


def idx_bytes(array: np.ndarray) -> bytes:
    magic = 0x800 | array.ndim
    return struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes()


def fake_idx(n: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
    images = ((np.arange(n)[:, None] * 7 + np.arange(784) + offset) % 256).astype(np.uint8)
    return images.reshape(n, 28, 28), ((np.arange(n) + offset) % 10).astype(np.uint8)


def write_idx_set(folder: Path, gz: bool = True) -> dict[str, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    xtr, ytr = fake_idx(20, 0)
    xte, yte = fake_idx(10, 3)
    arrays = {"train-images": xtr, "train-labels": ytr, "t10k-images": xte, "t10k-labels": yte}
    for stem, arr in arrays.items():
        kind = "idx3" if arr.ndim == 3 else "idx1"
        raw = idx_bytes(arr)
        if gz:
            (folder / f"{stem}-{kind}-ubyte.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / f"{stem}-{kind}-ubyte").write_bytes(raw)
    return arrays


def test_read_idx_roundtrip(tmp_path: Path) -> None:
    images, labels = fake_idx(5, 1)
    (tmp_path / "img.gz").write_bytes(gzip.compress(idx_bytes(images)))
    (tmp_path / "lab").write_bytes(idx_bytes(labels))
    assert np.array_equal(data.read_idx(tmp_path / "img.gz"), images)
    assert np.array_equal(data.read_idx(tmp_path / "lab"), labels)
    assert data.read_idx(tmp_path / "img.gz")[2, 1, 3] == (2 * 7 + 28 + 3 + 1) % 256


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
@pytest.mark.parametrize("gz", [True, False])
def test_idx_dataset_loads(tmp_path: Path, name: str, gz: bool) -> None:
    arrays = write_idx_set(tmp_path / name, gz=gz)
    ds = load_dataset(name, root=tmp_path, test_fraction=0.5)  # official split wins
    assert (ds.n_train, ds.n_test, ds.n_features) == (20, 10, 784)
    assert ds.image_shape == (1, 28, 28) and ds.n_classes == 10
    assert ds.y_train.tolist() == arrays["train-labels"].tolist()
    assert ds.y_test.tolist() == arrays["t10k-labels"].tolist()
    train = arrays["train-images"].reshape(20, -1) / 255
    test = arrays["t10k-images"].reshape(10, -1) / 255
    np.testing.assert_allclose(ds.x_train.numpy(), expected_standardized(train, train), atol=1e-4)
    np.testing.assert_allclose(ds.x_test.numpy(), expected_standardized(train, test), atol=1e-4)


def test_idx_train_subsample(tmp_path: Path) -> None:
    arrays = write_idx_set(tmp_path / "mnist")
    ds = load_dataset("mnist", root=tmp_path, n_samples=5, seed=2)
    assert (ds.n_train, ds.n_test) == (5, 10)
    keep = np.random.default_rng(2).permutation(20)[:5]  # first n_samples after a seeded shuffle
    assert not np.array_equal(keep, np.arange(5))
    assert ds.y_train.tolist() == arrays["train-labels"][keep].tolist()
    train = arrays["train-images"].reshape(20, -1)[keep] / 255
    np.testing.assert_allclose(ds.x_train.numpy(), expected_standardized(train, train), atol=1e-4)


def test_standardize_constant_feature() -> None:
    train = np.array([[0.0, 1.0], [0.0, 3.0]])
    test = np.array([[5.0, 2.0]])
    xtr, xte = data._standardize(train, test, scale=1.0)
    assert xtr.dtype == np.float32
    np.testing.assert_allclose(xtr, [[0, -1], [0, 1]])
    # constant in training: shifted but not divided by ~0, so test values stay finite and small
    np.testing.assert_allclose(xte, [[5, 0]])


def test_idx_bad_magic(tmp_path: Path) -> None:
    write_idx_set(tmp_path / "mnist")
    path = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[2:4] = b"\x0d\x03"  # float IDX instead of unsigned bytes
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DatasetError, match="magic"):
        load_dataset("mnist", root=tmp_path)
    with pytest.raises(DatasetError, match="magic"):
        data.read_idx(path)


def test_idx_size_and_count_mismatch(tmp_path: Path) -> None:
    write_idx_set(tmp_path / "mnist")
    labels = tmp_path / "mnist" / "train-labels-idx1-ubyte.gz"
    labels.write_bytes(gzip.compress(gzip.decompress(labels.read_bytes())[:-1]))
    with pytest.raises(DatasetError, match="size mismatch"):
        load_dataset("mnist", root=tmp_path)
    labels.write_bytes(gzip.compress(idx_bytes(np.zeros(19, np.uint8))))
    with pytest.raises(DatasetError, match="20 images but 19 labels"):
        load_dataset("mnist", root=tmp_path)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
def test_missing_files_message(tmp_path: Path, name: str) -> None:
    with pytest.raises(DatasetError) as exc:
        load_dataset(name, root=tmp_path)
    message = str(exc.value)
    assert str(tmp_path / name) in message
    assert f"python -m bnviz download {name}" in message
    expected = "cifar-10-python.tar.gz" if name == "cifar10" else "t10k-labels-idx1-ubyte.gz"
    assert expected in message


def test_missing_files_uses_default_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BNVIZ_DATA", str(tmp_path))
    with pytest.raises(DatasetError, match=str(tmp_path / "mnist")):
        load_dataset("mnist")


# --- CIFAR-10 --------------------------------------------------------------------------------


def cifar_batches(per_batch: int = 3) -> dict[str, tuple[np.ndarray, list[int]]]:
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    rng = np.random.default_rng(0)
    return {
        name: (
            rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8),
            [(b * per_batch + i) % 10 for i in range(per_batch)],
        )
        for b, name in enumerate(names)
    }


def write_cifar_folder(folder: Path, batches: dict[str, tuple[np.ndarray, list[int]]]) -> None:
    folder.mkdir(parents=True)
    for name, (pixels, labels) in batches.items():
        batch = {b"batch_label": name.encode(), b"labels": labels, b"data": pixels,
                 b"filenames": [b"img.png"] * len(labels)}  # fmt: skip
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))


def check_cifar(ds: data.Dataset, batches: dict[str, tuple[np.ndarray, list[int]]]) -> None:
    train_px = np.concatenate([batches[f"data_batch_{i}"][0] for i in range(1, 6)]) / 255
    train_y = [y for i in range(1, 6) for y in batches[f"data_batch_{i}"][1]]
    test_px, test_y = batches["test_batch"][0] / 255, batches["test_batch"][1]
    assert ds.image_shape == (3, 32, 32) and ds.n_features == 3072
    assert (ds.n_train, ds.n_test) == (15, 3)
    assert ds.y_train.tolist() == train_y and ds.y_test.tolist() == test_y
    np.testing.assert_allclose(
        ds.x_train.numpy(), expected_standardized(train_px, train_px), atol=1e-4
    )
    np.testing.assert_allclose(
        ds.x_test.numpy(), expected_standardized(train_px, test_px), atol=1e-4
    )


def test_cifar_folder(tmp_path: Path) -> None:
    batches = cifar_batches()
    write_cifar_folder(tmp_path / "cifar10" / "cifar-10-batches-py", batches)
    check_cifar(load_dataset("cifar10", root=tmp_path), batches)


def test_cifar_tarball(tmp_path: Path) -> None:
    batches = cifar_batches()
    staging = tmp_path / "staging"
    write_cifar_folder(staging / "cifar-10-batches-py", batches)
    (tmp_path / "cifar10").mkdir()
    with tarfile.open(tmp_path / "cifar10" / "cifar-10-python.tar.gz", "w:gz") as tf:
        tf.add(staging / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    check_cifar(load_dataset("cifar10", root=tmp_path), batches)
    extracted = tmp_path / "cifar10" / "cifar-10-batches-py"
    assert sorted(p.name for p in extracted.iterdir()) == sorted(batches)


def test_cifar_reads_numpy1_pickles(tmp_path: Path) -> None:
    """The real batches were pickled by numpy 1.x, whose arrays name numpy.core.multiarray."""
    batches = cifar_batches()
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    write_cifar_folder(folder, batches)
    for path in folder.iterdir():
        blob = path.read_bytes().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
        assert b"numpy.core.multiarray" in blob
        path.write_bytes(blob)
    check_cifar(load_dataset("cifar10", root=tmp_path), batches)


def test_cifar_rejects_code_in_pickle(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self) -> tuple[object, ...]:
            return (Path.touch, (tmp_path / "pwned",))

    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    write_cifar_folder(folder, cifar_batches())
    (folder / "data_batch_2").write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    with pytest.raises(DatasetError, match="data_batch_2"):
        load_dataset("cifar10", root=tmp_path)
    assert not (tmp_path / "pwned").exists()


# --- downloads (file:// URLs only; never the network) -----------------------------------------


def md5(blob: bytes) -> str:
    return hashlib.md5(blob).hexdigest()


def test_fetch_good_checksum(tmp_path: Path) -> None:
    payload = bytes(range(256)) * 5000  # > one read chunk
    (tmp_path / "src.bin").write_bytes(payload)
    calls: list[tuple[int, int]] = []
    dest = tmp_path / "out" / "file.bin"
    url = (tmp_path / "src.bin").as_uri()
    data._fetch_file([url], dest, md5(payload), lambda d, t: calls.append((d, t)))
    assert dest.read_bytes() == payload
    assert calls and calls[-1] == (len(payload), len(payload))
    assert [p.name for p in dest.parent.iterdir()] == ["file.bin"]


def test_fetch_bad_checksum_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "src.bin").write_bytes(b"tampered")
    dest = tmp_path / "out" / "file.bin"
    with pytest.raises(DatasetError, match="verification"):
        data._fetch_file([(tmp_path / "src.bin").as_uri()], dest, md5(b"original"))
    assert list(dest.parent.iterdir()) == []


def test_fetch_unreachable_mirrors(tmp_path: Path) -> None:
    dest = tmp_path / "out" / "file.bin"
    urls = [(tmp_path / "nowhere" / "a").as_uri(), (tmp_path / "nowhere" / "b").as_uri()]
    with pytest.raises(DatasetError, match="could not reach") as exc:
        data._fetch_file(urls, dest, md5(b""))
    assert str(dest.parent) in str(exc.value)
    assert not dest.exists()


def test_fetch_falls_back_to_next_mirror(tmp_path: Path) -> None:
    (tmp_path / "good").write_bytes(b"payload")
    dest = tmp_path / "out" / "f"
    urls = [(tmp_path / "missing").as_uri(), (tmp_path / "good").as_uri()]
    data._fetch_file(urls, dest, md5(b"payload"))
    assert dest.read_bytes() == b"payload"


def test_download_then_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    arrays = write_idx_set(tmp_path / "mirror")
    files = tuple(
        (p.name, md5(p.read_bytes()), p.stat().st_size)
        for p in sorted((tmp_path / "mirror").iterdir())
    )
    mirror = (tmp_path / "mirror").as_uri() + "/"
    monkeypatch.setitem(data._REMOTES, "mnist", data._Remote((mirror,), files))
    calls: list[tuple[int, int]] = []
    root = tmp_path / "cache"
    ds = load_dataset("mnist", root=root, download=True, progress=lambda d, t: calls.append((d, t)))
    assert ds.y_test.tolist() == arrays["t10k-labels"].tolist()
    total = sum(size for _, _, size in files)
    assert calls[-1] == (total, total) and all(d <= t for d, t in calls)
    # already present: nothing is fetched again, even with the mirror gone
    for p in (tmp_path / "mirror").iterdir():
        p.unlink()
    assert download_dataset("mnist", root=root) == root / "mnist"


def test_download_offline_dataset_is_a_no_op(tmp_path: Path) -> None:
    assert download_dataset("digits", root=tmp_path) == tmp_path / "digits"
    assert list(tmp_path.iterdir()) == []
