"""The two-weight error surface (bnviz.surface) against a plain NumPy reference and autograd."""

from __future__ import annotations

import numpy as np
import torch

from bnviz import surface as sf


def test_grid_gradient_and_minimum_match_the_definition():
    p = sf.make_problems(10.0)["raw"]
    w1, w2 = np.linspace(-1, 3, 7), np.linspace(-0.5, 1, 5)
    z = sf.loss_grid(p, w1, w2)
    for i, b in enumerate(w2):
        for j, a in enumerate(w1):
            ref = 0.5 * np.mean((a * p.x[:, 0] + b * p.x[:, 1] + p.bias - p.y) ** 2)
            assert abs(z[i, j] - ref) < 1e-9
    w = torch.tensor([0.3, -0.2], dtype=torch.float64, requires_grad=True)
    x, y = torch.tensor(p.x), torch.tensor(p.y)
    (0.5 * ((x @ w + p.bias - y) ** 2).mean()).backward()
    np.testing.assert_allclose(sf.gradient(p, w.detach().numpy()), w.grad.numpy(), atol=1e-12)
    lstsq = np.linalg.lstsq(p.x, p.y - p.bias, rcond=None)[0]
    np.testing.assert_allclose(p.w_star, lstsq, atol=1e-9)


def test_standardized_inputs_make_the_surface_round():
    probs = sf.make_problems(100.0)
    raw, std = probs["raw"], probs["standardized"]
    assert raw.condition > 1e4 and std.condition < 1.5
    assert raw.max_lr < 1e-3 < 1.0 < std.max_lr
    # the bias is optimal at mean(y) for centred features, whatever w is
    for w in ([0.0, 0.0], [1.0, -2.0]):
        r = std.y - np.asarray(w) @ std.x.T
        assert abs(r.mean() - std.bias) < 1e-9


def test_same_learning_rate_diverges_raw_and_converges_standardized():
    probs = sf.make_problems(10.0)
    lr = 0.5
    raw = sf.descend(probs["raw"], lr, 100)
    std = sf.descend(probs["standardized"], lr, 100)
    assert raw.diverged_step is not None and std.diverged_step is None
    assert sf.steps_to(std, probs["standardized"]) < 20
    # a step small enough for the raw surface leaves its flat direction far from the minimum
    small = sf.descend(probs["raw"], 0.9 * probs["raw"].max_lr, 100)
    assert small.diverged_step is None and sf.steps_to(small, probs["raw"]) is None
    assert abs(small.w[-1, 0] - probs["raw"].w_star[0]) > 0.3


def test_view_box_is_square_and_holds_start_and_minimum():
    p = sf.make_problems(10.0)["raw"]
    path = sf.descend(p, 0.01, 50)
    (x0, x1), (y0, y1) = sf.view_box(p, path)
    assert abs((x1 - x0) - (y1 - y0)) < 1e-9
    for w in (np.zeros(2), p.w_star):
        assert x0 <= w[0] <= x1 and y0 <= w[1] <= y1
