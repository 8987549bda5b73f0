"""RunConfig.input_norm / input_scale: raw features for every data set, one feature set stretched,
the data key, and the feature_scaling lesson's check on the real engine."""

from __future__ import annotations

import numpy as np
import pytest

from bnviz import checks, data
from bnviz.config import PRESETS, ConfigError, RunConfig, from_query, to_query
from bnviz.data import load_arrays, load_dataset
from bnviz.train import data_key
from tests.test_data import cifar_batches, write_cifar_folder, write_idx_set


@pytest.mark.parametrize("name", ["digits", "mnist1d", "spirals", "circles", "xor", "moons"])
def test_none_skips_standardization_for_offline_sets(name):
    raw = load_arrays(name, n_samples=200 if name != "digits" else 0, input_norm="none")
    std = load_arrays(name, n_samples=200 if name != "digits" else 0)
    np.testing.assert_allclose(std[0].mean(0), 0, atol=1e-4)
    assert np.abs(raw[0].mean(0)).max() > 1e-2  # raw data is not centred
    # the same samples, before and after: standardized = (raw − mean) / std per feature
    mean, sd = raw[0].mean(0), raw[0].std(0)
    sd = np.where(sd < 1e-6, 1.0, sd)
    np.testing.assert_allclose(std[1], raw[1])
    np.testing.assert_allclose(std[2], (raw[2] - mean) / sd, atol=1e-3)


def test_digits_raw_are_pixel_values():
    xtr = load_arrays("digits", input_norm="none")[0]
    assert xtr.min() == 0 and xtr.max() == 16 and np.all(xtr == np.round(xtr))


def test_none_for_downloaded_formats(tmp_path):
    arrays = write_idx_set(tmp_path / "mnist")
    ds = load_dataset("mnist", root=tmp_path, input_norm="none")
    np.testing.assert_allclose(ds.x_train.numpy(), arrays["train-images"].reshape(20, -1) / 255)
    batches = cifar_batches()
    write_cifar_folder(tmp_path / "cifar10" / "cifar-10-batches-py", batches)
    ds = load_dataset("cifar10", root=tmp_path, input_norm="none")
    np.testing.assert_allclose(ds.x_test.numpy(), batches["test_batch"][0] / 255, rtol=1e-6)


def test_input_scale_stretches_every_other_feature():
    base = load_arrays("digits")[0]
    stretched = load_arrays("digits", input_scale=100.0)[0]
    np.testing.assert_allclose(stretched[:, 0::2], base[:, 0::2])
    np.testing.assert_allclose(stretched[:, 1::2], 100 * base[:, 1::2], rtol=1e-6)
    assert base[0, 1] != 100 * base[0, 1] or base[0, 1] == 0  # the cache was not written to


def test_bad_values_are_reported():
    with pytest.raises(data.DatasetError, match="input_norm"):
        load_arrays("digits", input_norm="whiten")
    with pytest.raises(ConfigError, match="input_norm"):
        RunConfig(input_norm="whiten")
    with pytest.raises(ConfigError, match="input_scale"):
        RunConfig(input_scale=0)


def test_fields_in_url_and_data_key():
    cfg = RunConfig(input_norm="none", input_scale=100)
    assert to_query(cfg) == {"input_norm": "none", "input_scale": "100.0"}
    assert from_query(to_query(cfg))[0] == cfg
    keys = {data_key(c) for c in (RunConfig(), cfg, RunConfig(input_norm="none"))}
    assert len(keys) == 3


def test_feature_scaling_check_on_the_real_engine(preset_records):
    records = preset_records("feature_scaling")
    assert len(records) == len(PRESETS["feature_scaling"].configs())
    result = checks.CHECKS["feature_scaling"](records)
    assert result.passed, result.summary
    labels = [f for f, _ in result.figures]
    assert any("input_scale=1000" in f and "norm=none" in f for f in labels)
