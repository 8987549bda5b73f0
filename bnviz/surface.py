"""Feature scaling and the error surface: a two-weight linear model, its loss contours and the
path of gradient descent, for inputs on very different scales and for standardized inputs.

Lecture 003's example: y = w1·x1 + w2·x2 + b, loss L = mean((y − ŷ)²)/2. x1 lies in [0, 1] and
x2 in [0, s] (lecture 004: "0 to 1 vs 1 to 1,000"); the targets are ŷ = 2·x1 + 3·x2/s + noise, so
both features matter equally. The loss is quadratic, L(w) = ½ wᵀHw − gᵀw + c with H = XᵀX/n:
its contours are ellipses whose axes are H's eigenvectors, stretched by √(λ_max/λ_min), and
gradient descent is stable only for lr < 2/λ_max. Standardized inputs make H ≈ I: round contours.
Raw inputs are fitted without b (the data has no intercept); standardized inputs need b = mean(ŷ),
which is exactly optimal whatever w is (the features are centred), so the (w1, w2) plane is the
whole story in both cases. NumPy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TRUE_W = (2.0, 3.0)  # ŷ = 2·x1 + 3·x2/s: each feature moves ŷ by about as much


@dataclass(frozen=True, eq=False)
class Problem:
    """One least-squares problem in two weights."""

    x: np.ndarray  # (n, 2) the features the model sees
    y: np.ndarray  # (n,) targets
    bias: float  # b, fixed at its optimum (0 raw, mean(y) standardized)
    label: str

    @property
    def hessian(self) -> np.ndarray:
        return self.x.T @ self.x / len(self.y)

    @property
    def w_star(self) -> np.ndarray:
        """The minimum: solves H w = Xᵀ(y − b)/n."""
        return np.linalg.solve(self.hessian, self.x.T @ (self.y - self.bias) / len(self.y))

    @property
    def eigenvalues(self) -> np.ndarray:
        return np.linalg.eigvalsh(self.hessian)  # ascending

    @property
    def condition(self) -> float:
        """λ_max / λ_min: how stretched the contours are (squared axis ratio)."""
        lo, hi = self.eigenvalues
        return float(hi / lo)

    @property
    def max_lr(self) -> float:
        """Gradient descent converges only for lr < 2/λ_max."""
        return float(2.0 / self.eigenvalues[-1])


def make_problems(scale: float, n: int = 200, noise: float = 0.1, seed: int = 0) -> dict:
    """{"raw": …, "standardized": …}: the same data (x2 on [0, scale]), raw or standardized."""
    rng = np.random.default_rng(seed)
    x = np.stack([rng.uniform(0, 1, n), rng.uniform(0, scale, n)], axis=1)
    y = TRUE_W[0] * x[:, 0] + TRUE_W[1] * x[:, 1] / scale + noise * rng.standard_normal(n)
    z = (x - x.mean(0)) / x.std(0)
    return {
        "raw": Problem(x, y, 0.0, f"raw: x1 in [0, 1], x2 in [0, {scale:g}]"),
        "standardized": Problem(z, y, float(y.mean()), "standardized: both mean 0, std 1"),
    }


def loss(p: Problem, w: np.ndarray) -> np.ndarray:
    """L at weights w (..., 2), by the definition (a mean over the data)."""
    w = np.asarray(w, dtype=np.float64)
    pred = w @ p.x.T + p.bias  # (..., n)
    return 0.5 * ((pred - p.y) ** 2).mean(-1)


def gradient(p: Problem, w: np.ndarray) -> np.ndarray:
    """∇L at w (2,): Xᵀ(Xw + b − y)/n."""
    return p.x.T @ (p.x @ w + p.bias - p.y) / len(p.y)


def loss_grid(p: Problem, w1: np.ndarray, w2: np.ndarray) -> np.ndarray:
    """L on the grid (len(w2), len(w1)), from the quadratic form (exact, no loop over data)."""
    h = p.hessian
    r = p.y - p.bias
    g = p.x.T @ r / len(r)
    c = 0.5 * float(r @ r) / len(r)
    a, b = np.meshgrid(w1, w2)
    return 0.5 * (h[0, 0] * a * a + 2 * h[0, 1] * a * b + h[1, 1] * b * b) - g[0] * a - g[1] * b + c


@dataclass(frozen=True)
class Path:
    """Gradient descent from w0: the weights and the loss after each step."""

    w: np.ndarray  # (steps + 1, 2), cut at divergence
    losses: np.ndarray  # (steps + 1,)
    diverged_step: int | None  # first step whose loss exceeded 1e6 × the start (None: never)


def descend(p: Problem, lr: float, steps: int, w0: tuple[float, float] = (0.0, 0.0)) -> Path:
    """Plain gradient descent w ← w − lr·∇L(w) for `steps` steps."""
    w = np.asarray(w0, dtype=np.float64)
    ws, losses = [w], [float(loss(p, w))]
    limit = 1e6 * max(losses[0], 1e-12)
    for t in range(1, steps + 1):
        w = w - lr * gradient(p, w)
        cur = float(loss(p, w))
        if not np.isfinite(cur) or cur > limit:
            return Path(np.array(ws), np.array(losses), t)
        ws.append(w)
        losses.append(cur)
    return Path(np.array(ws), np.array(losses), None)


def steps_to(path: Path, p: Problem, within: float = 0.01) -> int | None:
    """First step whose loss is within `within` (relative) of the minimum's; None if never."""
    best = float(loss(p, p.w_star))
    for t, v in enumerate(path.losses):
        if v <= best * (1 + within) + 1e-12:
            return t
    return None


def view_box(p: Problem, path: Path, w0=(0.0, 0.0), margin: float = 0.25) -> tuple:
    """Axis ranges ((w1 lo, hi), (w2 lo, hi)) holding the start, the minimum and the path (up to
    3× that box), square in data units so that round contours look round."""
    pts = np.vstack([np.asarray(w0)[None], p.w_star[None]])
    core_lo, core_hi = pts.min(0), pts.max(0)
    span = float(max((core_hi - core_lo).max(), 1e-3))
    lo = np.maximum(np.minimum(core_lo, path.w.min(0)), core_lo - span)
    hi = np.minimum(np.maximum(core_hi, path.w.max(0)), core_hi + span)
    half = (1 + 2 * margin) * float((hi - lo).max()) / 2
    mid = (lo + hi) / 2
    return (mid[0] - half, mid[0] + half), (mid[1] - half, mid[1] + half)
