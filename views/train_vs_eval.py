"""Train mode vs eval mode: one trained BN net, scored the right way and the wrong ways."""

import numpy as np
import streamlit as st

from bnviz import mechanics as mx
from bnviz import mechanics_charts as mc
from bnviz import pitfalls as pf
from bnviz.data import load_arrays
from dashboard import lesson_page


@st.cache_resource(show_spinner="Training a 2×64 BN net on digits (well under a second)…")
def trained() -> tuple[pf.Net, np.ndarray, np.ndarray]:
    """The net (SGD lr 0.1, batch 32, 5 epochs) and the test set, shared by every session."""
    xtr, ytr, xte, yte = load_arrays("digits")
    return pf.train_net(xtr.astype(np.float64), ytr), xte.astype(np.float64), yte


@st.cache_data(show_spinner=False)
def scores() -> tuple[list, list]:
    net, x, y = trained()

    def acc(pred: np.ndarray) -> float:
        return float((pred == y).mean())

    forgotten = [("eval(): running statistics", acc(pf.predict(net, x)))]
    forgotten += [
        (f"train mode, test batches of {b}", acc(pf.predict_train_mode(net, x, b)))
        for b in (256, 8, 1)
    ]
    forgotten.append(
        ("train mode, one class per batch", pf.accuracy_on_batches(net, x, y, pf.class_sorted(y)))
    )
    polluted = pf.pollute(net, x, pf.class_sorted(y))
    lag = [(f"eval(), momentum {m}", acc(pf.predict(net, x, m))) for m in pf.MOMENTA]
    lag.append(("eval() after class-sorted train-mode passes", acc(pf.predict(polluted, x))))
    return forgotten, lag


lesson = lesson_page.header("train_vs_eval")
net, x_test, y_test = trained()
forgotten, lag = scores()
left, right = st.columns([2, 3], gap="large")
with left:
    lesson_page.text(lesson)
with right:
    wrong, mates, one, running = lesson_page.tabs(
        ["Forgotten eval()", "Batch-mates", "Batch size 1", "Running statistics"], "tve-tab"
    )

if wrong.open:
    with wrong:
        lesson_page.plot(mc.accuracy_bars(forgotten, "Test accuracy of one trained net"), "tve-acc")
        st.caption(
            "Train mode normalizes each test batch with its own μ_B and σ²_B — what a forgotten "
            "`model.eval()` does, and what `track_running_stats=False` does even in eval mode. "
            "A batch of one class loses what that class has in common; a batch of one is all β."
        )


@st.fragment
def batch_mates() -> None:
    c1, c2 = st.columns(2)
    target = c1.number_input("test example", 0, len(y_test) - 1, 0, key="tve-example")
    size = c2.select_slider("batch size", [2, 4, 8, 16, 64], value=8, key="tve-size")
    rng = np.random.default_rng(int(target))
    others = np.delete(np.arange(len(y_test)), target)
    label = int(y_test[target])
    sets = [rng.choice(others, size - 1, replace=False) for _ in range(4)]
    names = [f"random batch {k + 1}" for k in range(4)]
    for k in (label, (label + 1) % 10):
        pool = others[y_test[others] == k]
        # A class has 29–42 test digits: a batch larger than that repeats some (and says so).
        short = len(pool) < size - 1
        sets.append(rng.choice(pool, size - 1, replace=short))
        repeated = f" ({len(pool)} digits, repeated)" if short else ""
        names.append(f"batch-mates all {k}s{repeated}")
    probs = pf.with_batch_mates(net, x_test, int(target), sets)
    logits = pf.forward(net, x_test[[target]], "eval")[0]
    e = np.exp(logits - logits.max())
    probs = np.vstack([e / e.sum(), probs])
    lesson_page.plot(mc.mates_heatmap(probs, ["eval()", *names], label), "tve-mates")


if mates.open:
    with mates:
        batch_mates()

if one.open:
    with one:
        s = mx.normalize(x_test[:1] @ net.weights[0].T + net.biases[0], net.gammas[0], net.betas[0])
        dx, _, _ = mx.backward(s, np.ones_like(s.x))
        st.markdown(
            f"With one sample, μ_B is that sample, so x − μ_B = 0: x̂ = 0 for all "
            f"{s.x.shape[1]} units (max |x̂| = {np.abs(s.xhat).max():.2g}) and y = β whatever the "
            f"input. The gradient through the statistics is zero too (max |dL/dx| = "
            f"{np.abs(dx).max():.2g}): nothing below the layer can learn. PyTorch refuses: "
            "`ValueError: Expected more than 1 value per channel when training`. The same "
            "holds after global pooling to 1×1 (one value per channel); in eval mode a batch "
            "of one is fine."
        )
        one_acc = next(a for n, a in forgotten if n.endswith(" 1"))
        st.markdown(
            f"Scored in train mode one example at a time, this net predicts the same class "
            "for every "
            f"test digit: **{100 * one_acc:.1f} %** (chance is 10 %)."
        )

if running.open:
    with running:
        lesson_page.plot(
            mc.accuracy_bars(lag, "Eval mode with each momentum's running statistics"), "tve-lag"
        )
        st.caption(
            f"One training ({net.steps} steps) kept running statistics for every momentum: they "
            "never affect training. With momentum 0.001 the running mean still holds ≈ "
            f"{100 * 0.999**net.steps:.0f} % of its start value 0 (and the variance of its "
            "start 1)."
        )
