"""Denoise digits with a DenoisingAutoencoder, against PCA.

Both models are fitted on clean training digits. The held-out digits are then
corrupted with masking noise (a random fraction of the pixels set to zero) and
reconstructed by each model; the error is the squared error per image against
the clean digit, summed over the 64 pixels in [0, 1]. Saves a figure with the
rows noisy / denoising autoencoder / PCA / clean.

The denoising model starts from random weights (``init="random"``): early
stopping judges the reconstruction of clean held-out digits, which masking 30 %
of the pixels in training never makes better than PCA's, so from the default
PCA start the fit keeps PCA (and warns that it did), denoising no better than
PCA.

    python examples/denoise_digits.py [--noise-level 0.3] [--out docs/denoise_digits.png]
"""

import argparse
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skae import DenoisingAutoencoder
from skae.plotting import ReconstructionDisplay


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--components", type=int, default=16)
    parser.add_argument("--noise-level", type=float, default=0.3)
    parser.add_argument("--max-iter", type=int, default=200)
    parser.add_argument("--n-images", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="docs/denoise_digits.png")
    parser.add_argument(
        "--quick", action="store_true", help="few epochs and images, for a smoke test"
    )
    args = parser.parse_args(argv)
    max_iter = 5 if args.quick else args.max_iter
    n = 6 if args.quick else args.n_images

    X, y = load_digits(return_X_y=True)
    X_train, X_test = train_test_split(X / 16.0, test_size=0.25, stratify=y, random_state=args.seed)
    rng = np.random.default_rng(args.seed)
    X_noisy = np.where(rng.random(X_test.shape) < args.noise_level, 0.0, X_test)

    dae = DenoisingAutoencoder(
        n_components=args.components,
        hidden_layer_sizes=(128,),
        noise="masking",
        noise_level=args.noise_level,
        init="random",  # see the docstring: from PCA's start the fit keeps PCA
        max_iter=max_iter,
        batch_size=64,
        early_stopping=True,
        random_state=args.seed,
        device="cpu",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        dae.fit(X_train)
    pca = PCA(n_components=args.components, random_state=args.seed).fit(X_train)

    denoised = {
        "DenoisingAutoencoder": dae.inverse_transform(dae.transform(X_noisy)),
        "PCA": pca.inverse_transform(pca.transform(X_noisy)),
    }

    def error(X_rec):
        return ((X_rec - X_test) ** 2).sum(axis=1).mean()

    print(
        f"digits: {len(X_train)} training and {len(X_test)} held-out images; "
        f"{args.noise_level:.0%} of the held-out pixels masked; "
        f"{args.components} components; {dae.n_iter_} epochs"
    )
    print("squared error per image against the clean digit:")
    print(f"  noisy input           {error(X_noisy):.3f}")
    for name, X_rec in denoised.items():
        print(f"  {name:<21} {error(X_rec):.3f}")

    display = ReconstructionDisplay(
        [X_noisy[:n], denoised["DenoisingAutoencoder"][:n], denoised["PCA"][:n], X_test[:n]],
        image_shape=(8, 8),
        row_labels=["noisy", "denoising AE", f"PCA({args.components})", "clean"],
    ).plot(vmin=0.0, vmax=1.0)
    display.figure_.suptitle(
        f"held-out digits with {args.noise_level:.0%} of the pixels masked, and their "
        "reconstructions"
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    display.figure_.savefig(out, dpi=100)
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
