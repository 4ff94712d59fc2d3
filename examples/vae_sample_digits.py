"""Generate new digits with a VariationalAutoencoder.

Fits a VAE on scikit-learn's bundled digits (pixels scaled to [0, 1]), prints
the ELBO per held-out image, then decodes draws from the prior N(0, I) with
``sample`` and saves them as a grid, under a row of real held-out digits for
comparison.

    python examples/vae_sample_digits.py [--components 8] [--out docs/vae_samples.png]
"""

import argparse
import warnings
from pathlib import Path

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skae import VariationalAutoencoder
from skae.plotting import ReconstructionDisplay


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--components", type=int, default=8)
    parser.add_argument("--loss", choices=["bernoulli", "gaussian"], default="gaussian")
    parser.add_argument("--max-iter", type=int, default=300)
    parser.add_argument("--rows", type=int, default=6)
    parser.add_argument("--columns", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="docs/vae_samples.png")
    parser.add_argument(
        "--quick", action="store_true", help="few epochs and images, for a smoke test"
    )
    args = parser.parse_args(argv)
    max_iter = 5 if args.quick else args.max_iter
    n_rows, n_columns = (2, 6) if args.quick else (args.rows, args.columns)

    X, y = load_digits(return_X_y=True)
    X_train, X_test = train_test_split(X / 16.0, test_size=0.25, stratify=y, random_state=args.seed)
    vae = VariationalAutoencoder(
        n_components=args.components,
        hidden_layer_sizes=(256, 128),
        loss=args.loss,
        max_iter=max_iter,
        batch_size=64,
        early_stopping=True,
        n_iter_no_change=20,
        random_state=args.seed,
        device="cpu",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        vae.fit(X_train)

    samples = vae.sample(n_rows * n_columns, random_state=args.seed)
    print(
        f"VariationalAutoencoder({args.components} components, {args.loss} likelihood): "
        f"{vae.n_iter_} epochs on {len(X_train)} digits"
    )
    print(f"held-out ELBO per image: {vae.score(X_test):.2f}")
    print(
        f"sampled {samples.shape[0]} digits, pixel range [{samples.min():.2f}, {samples.max():.2f}]"
    )

    rows = [X_test[:n_columns]] + [
        samples[i * n_columns : (i + 1) * n_columns] for i in range(n_rows)
    ]
    display = ReconstructionDisplay(
        rows,
        image_shape=(8, 8),
        row_labels=["real"] + ["sampled"] + [""] * (n_rows - 1),
    ).plot(vmin=0.0, vmax=1.0)
    display.figure_.suptitle(
        f"top row: real held-out digits; below: digits decoded from draws of a VAE's "
        f"prior ({args.components}-d code, {args.loss} likelihood)"
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    display.figure_.savefig(out, dpi=100)
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
