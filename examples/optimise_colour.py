"""The seed's colour example: walk a colour from white to red down the gradient of CIEDE2000.

The seed (a Julia blog post) runs 51 steps of ``colour = colour - η * grad`` with
``η = 0.001``, where ``grad`` is Zygote's gradient of ``colordiff(target, y)``
(Colors.jl's CIEDE2000) with respect to the ``RGB`` colour ``y``. Here:

1. the same loop, by hand, printing ``(idx, colour)`` every 5 steps as the
   seed's ``@info idx, colour`` does;
2. the same start, target, η and number of steps as one compiled
   ``tk.optimise`` loop with ``tk.Descent(η)``, on a loss that ends within
   ΔE00 < 1 of red.

The start is white, exactly grey: Lab is taken relative to sRGB's own white
(``reference_white="space"``: Lab's (Xn, Yn, Zn) is the XYZ of RGB(1, 1, 1),
not the D65 illuminant's white, the default, which differs from it in the
fourth decimal and puts white at Lab (100, 0.0077, 0.0035)), so white is
L* = 100, a* = b* = 0 exactly, where CIEDE2000 has no gradient. toolkit's
subgradient there points along the target's hue, so the first step already
leaves the grey axis.

Why the second run changes the loss. ΔE is a cone at its minimum: its gradient
does not shrink as the colour nears red, and near red ΔE00 is a narrow valley
in the red channel (slope about ±50 on either side). A fixed step η·∇ΔE00
(0.05 in red) jumps across that valley instead of settling in it. Measured
(float32, CPU): the seed's loop falls below ΔE00 = 1 at step 43 and to about
0.4 by step 50, then bounces: from step 51 on, ΔE00 jumps between about 0.01
and 2.6, above 1 about half the time, so where step 51 lands depends on float
rounding (1.71 with today's compiled gradient; 0.80, 1.08 and 1.46 with other
roundings of the same formula). That is the seed's loop, run faithfully with the correct gradient.
The second run minimises ``huber_loss(ΔE00, δ=2) / 2``: ΔE00 - 1 while
ΔE00 > 2, so the same steps as the seed until then, and ΔE00²/4 below, whose
gradient shrinks with the distance (δ = 2 keeps the step inside the valley:
δ > η·|∇ΔE00|²/2 ≈ 1.25). After the same 51 steps ΔE00 ≈ 0.70, and it keeps
falling (0.06 after 200 steps).

Writes optimise_colour.png: the colour every 5 steps (one strip while the two
runs agree, one per run from where they part), and ΔE00 per step against the
just-noticeable difference, ΔE00 = 1. Run: python examples/optimise_colour.py
"""

import time

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import toolkit as tk  # noqa: E402
from toolkit.colour import RGB, colordiff  # noqa: E402

TARGET = RGB(1.0, 0.0, 0.0)
START = RGB(1.0, 1.0, 1.0)
η = 0.001
STEPS = 51


def distance(y: RGB) -> jax.Array:
    """ΔE00 from red, with Lab relative to sRGB's white (so that white is exactly grey)."""
    return colordiff(TARGET, y, reference_white="space")


def near_quadratic(y: RGB) -> jax.Array:
    """ΔE00 - 1 far from red, ΔE00²/4 within ΔE00 < 2 of it (a Huber loss of ΔE00, halved): same steps far away."""
    return optax.huber_loss(distance(y), delta=2.0) / 2


def show(colour: RGB) -> str:
    return f"RGB({float(colour.r):.4f}, {float(colour.g):.4f}, {float(colour.b):.4f})"


def distances(path: list[RGB]) -> np.ndarray:
    return np.array([float(distance(colour)) for colour in path])


def seed_loop() -> list[RGB]:
    """The seed's loop as written: 51 plain gradient steps. Returns the start and every iterate.

    ``tk.gradient`` compiles ``distance`` on the first call and runs the cached
    program on every later one, so the plain loop needs no ``jax.jit``.
    """
    colour, path = START, [START]
    began = time.perf_counter()
    for idx in range(1, STEPS + 1):
        (grad,) = tk.gradient(distance, colour)
        colour = colour - η * grad
        path.append(colour)
        if idx % 5 == 1:
            print(f"({idx}, {show(colour)})")
    seconds = time.perf_counter() - began
    print(
        f"  {STEPS} steps in {seconds:.2f} s (the first call compiles; the others take {_per_step(colour):.0f} µs each)"
    )
    return path


def _per_step(colour: RGB, repeats: int = 200) -> float:
    """µs per step of the seed's loop once compiled (timed again, for the printout)."""
    began = time.perf_counter()
    for _ in range(repeats):
        (grad,) = tk.gradient(distance, colour)
        colour = colour - η * grad
    jax.block_until_ready(colour)
    return (time.perf_counter() - began) / repeats * 1e6


def library_run() -> tuple[tk.Result, list[RGB]]:
    """``tk.optimise`` with ``tk.Descent(η)`` on ``near_quadratic``, keeping every iterate."""
    path = [START]
    result = tk.optimise(
        near_quadratic,
        START,
        tk.Descent(η),
        steps=STEPS,
        log_every=1,
        callback=lambda step, colour, loss: path.append(colour),
    )
    return result, path


def _swatches(path: list[RGB], steps: list[int]) -> np.ndarray:
    return np.clip([[float(path[k].r), float(path[k].g), float(path[k].b)] for k in steps], 0, 1)  # display only


def _strip(ax, path: list[RGB], steps: list[int], title: str) -> None:
    ax.imshow(_swatches(path, steps)[None], aspect="auto")
    ax.set_title(title, fontsize=9, loc="left")
    ax.set_xticks(range(len(steps)), [str(k) for k in steps], fontsize=7)
    ax.set_xlabel("step", fontsize=7, labelpad=1)
    ax.set_yticks([])


def plot(runs: dict[str, list[RGB]], filename: str = "optimise_colour.png") -> None:
    """The colour every 5 steps (one strip while the runs agree, one per run after), above the ΔE00 curves."""
    shown = [0] + list(range(1, STEPS + 1, 5))
    paths = list(runs.values())
    same = [k for k in shown if all(np.allclose(_swatches(p, [k]), _swatches(paths[0], [k]), atol=1e-3) for p in paths)]
    split = next((i for i, k in enumerate(shown) if k not in same), len(shown))
    tails = [] if split == len(shown) else list(runs.items())
    figure, axes = plt.subplots(
        2 + len(tails),
        1,
        figsize=(8, 6 + len(tails) * 0.6),
        gridspec_kw={"height_ratios": [1] * (1 + len(tails)) + [3]},
    )
    figure.suptitle("white → red down the gradient of CIEDE2000", fontsize=11)
    _strip(axes[0], paths[0], shown[:split], "both runs" if tails else next(iter(runs)))
    for ax, (name, path) in zip(axes[1:], tails):
        _strip(ax, path, shown[split:], f"from step {shown[split]}: {name}")
    for name, path in runs.items():
        axes[-1].plot(distances(path), label=name)
    axes[-1].axhline(1.0, color="grey", linestyle=":", linewidth=1)
    axes[-1].annotate("ΔE00 = 1: just noticeable", (0, 1.0), xytext=(2, 3), textcoords="offset points", fontsize=8)
    axes[-1].set(xlabel="step", ylabel="ΔE00 to red", yscale="log")
    axes[-1].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(filename, dpi=100)
    plt.close(figure)


def main() -> bool:
    print(f"start {show(START)}, target {show(TARGET)}: ΔE00 = {float(distance(START)):.2f}")
    print(f"seed loop: {STEPS} steps of colour - {η} * gradient of ΔE00")
    by_hand = seed_loop()
    d = distances(by_hand)
    print(
        f"  ΔE00 after step {STEPS}: {d[-1]:.3f} (lowest {d.min():.3f}, after step {d.argmin()}); "
        f"below 1 from step {np.argmax(d < 1)}, then the fixed step bounces around red"
    )

    began = time.perf_counter()
    result, library = library_run()
    print(f"tk.optimise ran in {time.perf_counter() - began:.2f} s (trace, compile and all {STEPS} steps)")
    final = float(distance(result.params))
    print(
        f"tk.optimise, tk.Descent({η}), {result.steps} steps on huber_loss(ΔE00, 2) / 2: {show(result.params)}, ΔE00 = {final:.3f}"
    )
    print(f"ends within ΔE00 < 1 of red: {final < 1}")

    plot(
        {f"seed loop: Descent({η}) on ΔE00": by_hand, f"tk.optimise: Descent({η}) on huber_loss(ΔE00, 2) / 2": library}
    )
    print("wrote optimise_colour.png")
    return final < 1


if __name__ == "__main__":
    main()
