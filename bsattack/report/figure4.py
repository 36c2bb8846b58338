"""Figure 4 of the paper: transformed inputs x' (top row) and their adversarial examples
(bottom row), each titled with its L∞ distance."""
import numpy as np

from bsattack.outputs import save_figure


def pick_examples(result, count=8):
    """Indices of up to ``count`` attacked images, successes at α·ε first, then at ε."""
    order = [np.flatnonzero(result.success_alpha_eps),
             np.flatnonzero(result.success_eps & ~result.success_alpha_eps),
             np.flatnonzero(result.correct & ~result.success_eps)]
    return np.concatenate(order)[:count]


def figure4(result, path, count=8, header=()):
    """Save the figure for a :class:`bsattack.experiment.BlindspotResult` to ``path`` (a PNG
    carries ``header`` as its Description)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = pick_examples(result, count)
    cols = max(len(chosen), 1)
    fig, axes = plt.subplots(2, cols, figsize=(1.6 * cols, 3.6), squeeze=False)
    height, width, channels = result.spec.image_shape
    for col in range(cols):
        for row in range(2):
            axes[row, col].axis("off")
        if col >= len(chosen):
            continue
        i = chosen[col]
        for row, image in enumerate((result.transformed[i], result.adversarial[i])):
            picture = np.reshape(image, (height, width, channels)) + 0.5
            axes[row, col].imshow(picture[..., 0] if channels == 1 else np.clip(picture, 0, 1),
                                  cmap="gray", vmin=0, vmax=1)
        axes[0, col].set_title(f"#{result.index[i]} y={result.label[i]}", fontsize=7)
        found = np.isfinite(result.linf[i])
        axes[1, col].text(0.5, -0.04, f"L∞={result.linf[i]:.3f} → {result.adv_prediction[i]}"
                          if found else "not found", fontsize=7, ha="center", va="top",
                          transform=axes[1, col].transAxes)
    fig.suptitle(f"{result.spec.name}: α={result.alpha:g}, β={result.beta:g}, "
                 f"ε={result.eps:g} ({result.attack})", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, header, dpi=120)
    plt.close(fig)
    return path
