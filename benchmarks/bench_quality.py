"""Quality of skae's estimators on data training never saw.

Main table, for each estimator in ``ESTIMATORS`` and n_components in {2, 8, 30},
on digits (scaled by 1/16, a stratified 25 % held-out split) and on MNIST
(train 50,000 / held-out X_valid 10,000):

- reconstruction error on the held-out rows: squared error per image summed
  over pixels (``inverse_transform(transform(X))``; the VAE decodes its
  posterior mean);
- accuracy of ``LogisticRegression`` fitted on the training rows' codes and
  scored on the held-out codes;

with PCA at the same n_components and logistic regression on raw pixels as
references. Every skae model here trains with Adam 1e-3 on all its training
rows, without early stopping (skae's defaults when the results were measured,
spelled out: ``TRAINING`` for the main tables). Then the published
comparisons, each its own section:

(a) Hinton & Salakhutdinov (2006): a deep 784-1000-500-250-30 Autoencoder,
    held-out error against their 3.00 and PCA(30)'s 13.87 (``--hinton-model``
    for a denoising or convolutional one, ``--hinton-params`` for regularisers
    such as weight decay or greedy pretraining);
(b) PyTorch's VAE example (784-400-20, Bernoulli, batch 128, Adam 1e-3,
    10 epochs): held-out negative ELBO in nats per image, both skae's
    ``score_samples`` (reconstruction at z = mu) and the usual single-sample
    reparameterised estimate computed here from ``est.module_``; and the same
    model with a batch of 200 (skae's former default) and more epochs;
(c) the best LogisticRegression accuracy on skae codes against PCA(50) codes
    and raw pixels (target 98 %): codes of whole images, and the codes of a
    SparseAutoencoder fitted on 6x6 image patches, sum-pooled over each
    image's quarters (Coates, Lee & Ng, 2011).

    .venv/bin/python benchmarks/bench_quality.py --quick
    .venv/bin/python benchmarks/bench_quality.py
"""

import json
import math
import time
import warnings

import _common as C
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skae import (
    Autoencoder,
    ConvolutionalAutoencoder,
    DenoisingAutoencoder,
    SparseAutoencoder,
    VariationalAutoencoder,
)
from skae._evaluation import evaluate, reconstruction_error, score_codes
from skae._registry import AUTOENCODERS

#: Parameters of some members of the family (skae._registry.AUTOENCODERS) beyond
#: those of the data set's configuration (hidden layers, ...). A value given as a
#: dict keyed by data set ("digits", "mnist") is chosen per data set.
EXTRA_PARAMS = {
    DenoisingAutoencoder: {"noise": "masking", "noise_level": 0.2},
    ConvolutionalAutoencoder: {
        "channels": (16, 32),
        "image_shape": {"digits": (8, 8), "mnist": (28, 28)},
    },
}
#: The family, name -> (class, extra parameters), in the registry's order.
ESTIMATORS = {cls.__name__: (cls, EXTRA_PARAMS.get(cls, {})) for cls in AUTOENCODERS}
N_COMPONENTS = (2, 8, 30)
#: How the main tables train (skae's defaults when they were measured, spelled
#: out so that they do not follow later changes of the defaults): random
#: weights (the stored tables predate init="pca"), Adam 1e-3, and stopping on
#: the training loss (tol 1e-4, n_iter_no_change 10) on every training row, no
#: held-out split. The training loop itself is today's: a rerun does not repeat
#: the stored figures exactly.
TRAINING = {
    "init": "random",
    "learning_rate": 1e-3,
    "early_stopping": False,
    "n_iter_no_change": 10,
}


def fit_quiet(est, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        est.fit(X)
        return time.perf_counter() - t0


def logistic(max_iter):
    """The classifier on the codes (skae._evaluation's, at ``max_iter``)."""
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter))


def logistic_accuracy(Z_train, y_train, Z_valid, y_valid, max_iter=500):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        acc = score_codes(Z_train, y_train, Z_valid, y_valid, model=logistic(max_iter))
    return acc, time.perf_counter() - t0


def codes_accuracy(est, data, max_iter):
    """Held-out accuracy of LogisticRegression fitted on ``est``'s codes of the
    training rows."""
    Z_train, Z_valid = est.transform(data["X_train"]), est.transform(data["X_valid"])
    return logistic_accuracy(Z_train, data["y_train"], Z_valid, data["y_valid"], max_iter)[0]


def fit_and_judge(est, data, max_iter_lr):
    """skae's evaluation protocol (skae._evaluation.evaluate) on the held-out
    rows, warnings silenced, in this benchmark's keys."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = evaluate(
            est,
            data["X_train"],
            data["y_train"],
            data["X_valid"],
            data["y_valid"],
            model=logistic(max_iter_lr),
        )
    return {
        "fit_seconds": result["fit_seconds"],
        "recon_error": result["error"],
        "train_recon_error": reconstruction_error(est, data["X_train"][:10000]),
        "logreg_accuracy": result["accuracy"],
        "logreg_seconds": result["score_seconds"],
    }


def family_table(dataset, data, cfg, lr_iter):
    rows = []
    for k in N_COMPONENTS:
        pca = PCA(n_components=k, random_state=0)
        rows.append(
            {
                "dataset": dataset,
                "model": "PCA",
                "n_components": k,
                **fit_and_judge(pca, data, lr_iter),
            }
        )
        print(f"  {dataset} PCA({k}): {rows[-1]['recon_error']:.3f}", flush=True)
        for name, (cls, extra) in ESTIMATORS.items():
            params = (
                {} if cls is ConvolutionalAutoencoder else {"hidden_layer_sizes": cfg["hidden"]}
            )
            params.update({p: v[dataset] if isinstance(v, dict) else v for p, v in extra.items()})
            est = cls(
                n_components=k,
                max_iter=cfg["epochs"],
                batch_size=cfg["batch_size"],
                random_state=0,
                device="cpu",
                **{**TRAINING, **params},
            )
            record = fit_and_judge(est, data, lr_iter)
            rows.append(
                {
                    "dataset": dataset,
                    "model": name,
                    "n_components": k,
                    "fit_seconds": record.pop("fit_seconds"),
                    "epochs_run": est.n_iter_,
                    **record,
                }
            )
            print(
                f"  {dataset} {name}({k}): {rows[-1]['recon_error']:.3f} "
                f"acc {rows[-1]['logreg_accuracy']:.4f} ({rows[-1]['fit_seconds']:.0f}s)",
                flush=True,
            )
    acc, t = logistic_accuracy(
        data["X_train"], data["y_train"], data["X_valid"], data["y_valid"], lr_iter
    )
    rows.append(
        {
            "dataset": dataset,
            "model": "raw pixels (no reduction)",
            "n_components": data["X_train"].shape[1],
            "recon_error": 0.0,
            "logreg_accuracy": acc,
            "logreg_seconds": t,
        }
    )
    return rows


def vae_single_sample_neg_elbo(est, X, seed=0, block=4096):
    """Mean over rows of -(log p(x|z) - KL) with one z ~ q(z|x) per row
    (Bernoulli decoder), as PyTorch's VAE example reports its test loss."""
    module = est.module_
    gen = torch.Generator().manual_seed(seed)
    total = 0.0
    with torch.inference_mode():
        for i in range(0, X.shape[0], block):
            x = torch.from_numpy(np.ascontiguousarray(X[i : i + block], dtype=np.float32))
            mu, log_var = module.encode_distribution(x)
            z = mu + torch.exp(0.5 * log_var) * torch.randn(mu.shape, generator=gen)
            nll = F.binary_cross_entropy_with_logits(module.output(z), x, reduction="none").sum(1)
            kl = 0.5 * (mu.square() + log_var.exp() - 1.0 - log_var).sum(1)
            total += float((nll + kl).sum())
    return total / X.shape[0]


#: Side of the square image patches the patch-code model of section (c) learns.
PATCH_SIZE = 6
#: Code units of that model (4 pooled quarters give 4x as many features).
PATCH_UNITS = 400


def random_patches(X, size, n, rng):
    """``n`` random ``size`` x ``size`` patches of the square images in the rows of X."""
    side = math.isqrt(X.shape[1])
    images = X.reshape(-1, side, side)
    windows = np.lib.stride_tricks.sliding_window_view(images, (size, size), axis=(1, 2))
    idx = rng.integers(0, len(images), n)
    r, c = rng.integers(0, side - size + 1, (2, n))
    return np.ascontiguousarray(windows[idx, r, c].reshape(n, size * size))


def pooled_patch_codes(est, X, size, chunk=100):
    """``est``'s codes of every ``size`` x ``size`` patch of each image (stride 1),
    summed over the four quarters of the grid of patch positions: 4 *
    n_components features per row. An odd grid splits unevenly (11 and 12
    positions for 6x6 patches of 28x28 images), and patches near the middle
    overlap pixels of the neighbouring quarter."""
    side = math.isqrt(X.shape[1])
    images = X.reshape(-1, side, side)
    grid = side - size + 1
    half = grid // 2
    out = np.empty((len(images), 4 * est.n_components), dtype=np.float32)
    for start in range(0, len(images), chunk):
        windows = np.lib.stride_tricks.sliding_window_view(
            images[start : start + chunk], (size, size), axis=(1, 2)
        )
        codes = est.transform(np.ascontiguousarray(windows.reshape(-1, size * size)))
        codes = codes.reshape(-1, grid, grid, est.n_components)
        quarters = [
            codes[:, rows, cols].sum(axis=(1, 2))
            for rows in (slice(None, half), slice(half, None))
            for cols in (slice(None, half), slice(half, None))
        ]
        out[start : start + chunk] = np.concatenate(quarters, axis=1)
    return out


def add_arguments(p):
    """This benchmark's own arguments (see _common.parse_args for the rest)."""
    p.add_argument("--mnist", default=str(C.DEFAULT_MNIST), help="path to mnist_trainval.npz")
    p.add_argument("--mnist-rows", type=int, default=None, help="MNIST training rows used")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument(
        "--family-epochs", type=int, default=None, help="epochs for the MNIST family table"
    )
    p.add_argument("--hinton-epochs", type=int, default=None)
    p.add_argument(
        "--hinton-model",
        choices=["deep", "deep-denoising", "conv"],
        default="deep",
        help="the published 784-1000-500-250-30 MLP (an Autoencoder, or a DenoisingAutoencoder "
        "trained on corrupted input), or a convolutional one",
    )
    p.add_argument(
        "--hinton-params",
        default=None,
        help="JSON of further parameters of the section (a) model, over its settings: for "
        'example \'{"weight_decay": 1e-5}\', \'{"pretraining": "greedy"}\' or, with '
        '--hinton-model deep-denoising, \'{"noise": "gaussian", "noise_level": 0.1}\'',
    )
    p.add_argument(
        "--hinton-pretrain-epochs",
        type=int,
        default=None,
        help="greedy layer-wise pretraining, this many epochs per layer (and as many end to "
        "end), then the rest of --hinton-epochs warm-started",
    )
    p.add_argument(
        "--hinton-anneal-epochs",
        type=int,
        default=0,
        help="then this many more epochs at a tenth of the learning rate "
        "(set_params(learning_rate=1e-4, warm_start=True), a step decay through the public API)",
    )
    p.add_argument(
        "--hinton-schedule",
        choices=["constant", "cosine", "plateau"],
        default="constant",
        help="learning_rate_schedule of the deep (or conv) autoencoder's fit",
    )
    p.add_argument("--vae-epochs-more", type=int, default=None)
    p.add_argument(
        "--vae-record-epochs", type=int, default=None, help="most epochs of the 100-nat run"
    )
    p.add_argument("--vae-record-step", type=int, default=None, help="epochs between scores")
    p.add_argument(
        "--vae-record-draws",
        type=int,
        default=None,
        help="importance samples per image for the record's -log p(x) at every score",
    )
    p.add_argument(
        "--vae-record-check-draws",
        type=int,
        default=None,
        help="importance samples per image at 10 epochs and where the target is first reached",
    )
    p.add_argument("--sections", default="digits,mnist,hinton,vae,vae-record,accuracy")
    p.add_argument(
        "--name",
        default="bench_quality",
        help="results file name (to keep a partial run, e.g. --sections hinton, apart)",
    )


def main():
    args = C.parse_args(
        __doc__, add_arguments, quick_help="digits + a small MNIST subset, few epochs"
    )
    q = args.quick
    args.mnist_rows = args.mnist_rows or (3000 if q else 50000)
    args.family_epochs = args.family_epochs or (3 if q else 8)
    args.hinton_epochs = args.hinton_epochs or (2 if q else 15)
    args.vae_epochs_more = args.vae_epochs_more or (3 if q else 20)
    args.vae_record_epochs = args.vae_record_epochs or (2 if q else 100)
    args.vae_record_step = args.vae_record_step or (1 if q else 5)
    args.vae_record_draws = args.vae_record_draws or (5 if q else 100)
    args.vae_record_check_draws = args.vae_record_check_draws or (10 if q else 1000)
    if args.threads:
        torch.set_num_threads(args.threads)
    sections_wanted = args.sections.split(",")
    hardware = C.start()
    lr_iter = 100 if q else 300
    payload = {
        "args": vars(args),
        "estimators": {k: [v[0].__name__, v[1]] for k, v in ESTIMATORS.items()},
        "training": TRAINING,
    }
    sections = []
    cols = ["model", "n_components", "recon_error", "logreg_accuracy", "fit_seconds", "epochs_run"]
    heads = [
        "model",
        "n_components",
        "held-out sq. error / image",
        "LogReg accuracy (held-out)",
        "fit s",
        "epochs",
    ]

    def save():
        C.write_results(args.name, q, payload, sections, hardware, folder=args.results_dir)

    # ------------------------------------------------------------ digits
    if "digits" in sections_wanted:
        digits = C.load_digits_split()
        cfg = {"hidden": (64,), "epochs": 40 if q else 300, "batch_size": 64}
        rows = family_table("digits", digits, cfg, lr_iter)
        payload["digits"] = {
            "config": cfg,
            "n_train": len(digits["X_train"]),
            "n_valid": len(digits["X_valid"]),
            "rows": rows,
        }
        sections.append(
            (
                "digits (held-out 25 %)",
                (
                    f"{len(digits['X_train'])} training rows, {len(digits['X_valid'])} held out; hidden "
                    f"{cfg['hidden']}, batch {cfg['batch_size']}, Adam 1e-3, max_iter {cfg['epochs']} (stop "
                    "on the training loss, tol 1e-4, n_iter_no_change 10; no early_stopping), other "
                    "parameters at skae's defaults.\n\n" + C.markdown_table(rows, cols, heads)
                ),
            )
        )
        save()

    need_mnist = any(
        s in sections_wanted for s in ("mnist", "hinton", "vae", "vae-record", "accuracy")
    )
    if need_mnist:
        full = C.load_mnist(args.mnist)
        mnist = {
            "X_train": np.ascontiguousarray(full["X_train"][: args.mnist_rows]),
            "y_train": full["y_train"][: args.mnist_rows],
            "X_valid": full["X_valid"],
            "y_valid": full["y_valid"],
        }
        payload["mnist_source"] = full["source"]

    # ------------------------------------------------------------- MNIST
    if "mnist" in sections_wanted:
        cfg = {"hidden": (256,), "epochs": args.family_epochs, "batch_size": 128}
        rows = family_table("mnist", mnist, cfg, lr_iter)
        payload["mnist"] = {"config": cfg, "n_train": len(mnist["X_train"]), "rows": rows}
        sections.append(
            (
                "MNIST (held-out X_valid, 10,000 rows)",
                (
                    f"{len(mnist['X_train'])} training rows; hidden {cfg['hidden']}, batch "
                    f"{cfg['batch_size']}, Adam 1e-3, max_iter {cfg['epochs']}, no early_stopping, other "
                    "parameters at skae's defaults.\n\n" + C.markdown_table(rows, cols, heads)
                ),
            )
        )
        save()

    # ----------------------------------------------- (a) Hinton & Salakhutdinov
    if "hinton" in sections_wanted:
        pca30 = PCA(n_components=30, random_state=0).fit(mnist["X_train"])
        pca_err = reconstruction_error(pca30, mnist["X_valid"])
        settings = {
            "n_components": 30,
            "activation": "relu",
            "optimizer": "adam",
            "learning_rate": 1e-3,
            "batch_size": 128,
            "max_iter": args.hinton_epochs,
            "learning_rate_schedule": args.hinton_schedule,
            "tol": 0.0,
            "n_iter_no_change": 10**6,
            "early_stopping": False,
        }
        if args.hinton_model == "conv":
            settings.update(channels=(32, 64), image_shape=(28, 28))
            cls, label = ConvolutionalAutoencoder, "skae ConvolutionalAutoencoder (32, 64) -> 30"
        else:
            settings.update(hidden_layer_sizes=(1000, 500, 250))
            cls = DenoisingAutoencoder if args.hinton_model == "deep-denoising" else Autoencoder
            label = f"skae {cls.__name__} 784-1000-500-250-30"
        if args.hinton_params:
            extra = json.loads(args.hinton_params)
            settings.update(extra)
            label += f" with {extra}"
        pretrain = args.hinton_pretrain_epochs
        if pretrain:
            # greedy layer-wise pretraining at this many epochs per layer (fit's
            # max_iter, which then also runs as many end-to-end epochs), then the
            # rest of the epochs warm-started: the whole run at max_iter per layer
            # would cost about four times as much
            settings.update(pretraining="greedy")
            label += f", greedy pretraining {pretrain} epochs per layer"
            est = cls(**{**settings, "max_iter": pretrain}, random_state=0, device="cpu")
            t = fit_quiet(est, mnist["X_train"])
            if args.hinton_epochs > pretrain:
                est.set_params(max_iter=args.hinton_epochs - pretrain, warm_start=True)
                t += fit_quiet(est, mnist["X_train"])
        else:
            est = cls(**settings, random_state=0, device="cpu")
            t = fit_quiet(est, mnist["X_train"])
        err = reconstruction_error(est, mnist["X_valid"])
        annealed = None
        if args.hinton_anneal_epochs:
            before_anneal = err
            est.set_params(
                learning_rate=settings["learning_rate"] / 10,
                max_iter=args.hinton_anneal_epochs,
                warm_start=True,
            )
            t += fit_quiet(est, mnist["X_train"])
            err = reconstruction_error(est, mnist["X_valid"])
            annealed = {
                "epochs": args.hinton_anneal_epochs,
                "learning_rate": settings["learning_rate"] / 10,
                "recon_error_before": before_anneal,
            }
        payload["hinton"] = {
            "settings": settings,
            "fit_seconds": t,
            "epochs": est.n_iter_,
            "loss_curve": est.loss_curve_,
            "recon_error": err,
            "train_recon_error": reconstruction_error(est, mnist["X_train"][:10000]),
            "pca30_recon_error": pca_err,
            "published_deep": 3.00,
            "published_pca": 13.87,
            "n_train": len(mnist["X_train"]),
            "anneal": annealed,
            "pretrain_epochs_per_layer": pretrain,
        }
        h = payload["hinton"]
        h["logreg_accuracy"] = codes_accuracy(est, mnist, lr_iter)
        sections.append(
            (
                "(a) Hinton & Salakhutdinov 2006: deep autoencoder, 30-dim code",
                "\n".join(
                    [
                        f"Settings: `{settings}`, random_state=0, trained on {len(mnist['X_train'])} rows "
                        f"({t:.0f} s).",
                        "",
                        "| model | held-out squared error per image | published |",
                        "|---|---|---|",
                        f"| {label} | {err:.2f} (train {h['train_recon_error']:.2f}) | 3.00 |",
                        f"| PCA(30) (scikit-learn) | {pca_err:.2f} | 13.87 |",
                        "",
                        f"- skae / PCA error ratio {err / pca_err:.3f} (published deep / PCA: {3.00 / 13.87:.3f})",
                        f"- final training loss {est.loss_curve_[-1]:.3f} after {est.n_iter_} epochs",
                        (
                            f"- the last {annealed['epochs']} epochs at learning_rate "
                            f"{annealed['learning_rate']:g} (warm_start): held-out error "
                            f"{annealed['recon_error_before']:.2f} before them"
                            if annealed
                            else f"- learning_rate_schedule={args.hinton_schedule!r} over the "
                            f"{args.hinton_epochs} epochs"
                        ),
                        f"- LogisticRegression on these 30-dim codes: {h['logreg_accuracy']:.4f}",
                    ]
                ),
            )
        )
        save()

    # ------------------------------------------------------ (b) VAE example
    if "vae" in sections_wanted:
        vrows = []
        for label, batch, epochs in [
            ("PyTorch example settings", 128, 1 if q else 10),
            ("batch 200 (skae's former 'auto'), more epochs", 200, args.vae_epochs_more),
        ]:
            settings = {
                "n_components": 20,
                "hidden_layer_sizes": (400,),
                "loss": "bernoulli",
                "batch_size": batch,
                "learning_rate": 1e-3,
                "max_iter": epochs,
                "tol": 0.0,
                "n_iter_no_change": 10**6,
                "early_stopping": False,
            }
            est = VariationalAutoencoder(**settings, random_state=0, device="cpu")
            t = fit_quiet(est, mnist["X_train"])
            vrows.append(
                {
                    "run": label,
                    "settings": settings,
                    "epochs": est.n_iter_,
                    "fit_seconds": t,
                    "neg_elbo_at_mu": -est.score(mnist["X_valid"]),
                    "neg_elbo_single_sample": vae_single_sample_neg_elbo(est, mnist["X_valid"]),
                    "neg_elbo_single_sample_mean_of_5": float(
                        np.mean(
                            [
                                vae_single_sample_neg_elbo(est, mnist["X_valid"], seed=s)
                                for s in range(5)
                            ]
                        )
                    ),
                    "train_loss_last_epoch": est.loss_curve_[-1],
                }
            )
            print(f"  VAE {label}: {vrows[-1]}", flush=True)
        payload["vae"] = {
            "rows": vrows,
            "published": "about 104-106 nats after 10 epochs (60k training images)",
            "n_train": len(mnist["X_train"]),
        }
        sections.append(
            (
                "(b) PyTorch's VAE example: 784-400-20, Bernoulli, Adam 1e-3",
                "\n".join(
                    [
                        f"Trained on {len(mnist['X_train'])} rows, scored on the 10,000 held-out rows; "
                        "PyTorch's example reports about 104-106 nats (negative ELBO per test image, one "
                        "reparameterised sample) after 10 epochs on 60,000 images.",
                        "",
                        C.markdown_table(
                            vrows,
                            [
                                "run",
                                "epochs",
                                "neg_elbo_single_sample",
                                "neg_elbo_single_sample_mean_of_5",
                                "neg_elbo_at_mu",
                                "train_loss_last_epoch",
                                "fit_seconds",
                            ],
                            [
                                "run",
                                "epochs",
                                "-ELBO, 1 sample (nats)",
                                "-ELBO, 1 sample, mean of 5 seeds",
                                "-score (z = mu)",
                                "train loss last epoch",
                                "fit s",
                            ],
                        ),
                        "",
                        "- `-score` evaluates the reconstruction at z = mu (skae's deterministic score_samples), "
                        "not at a sampled z, so only the 1-sample columns compare like with like with the "
                        "published figure.",
                    ]
                ),
            )
        )
        save()

    # ------------------------------------- (b2) the VAE's 100-nat record
    if "vae-record" in sections_wanted:
        settings = {
            "n_components": 20,
            "hidden_layer_sizes": (400,),
            "loss": "bernoulli",
            "batch_size": 128,
            "learning_rate": 1e-3,
            "early_stopping": False,
        }
        est = VariationalAutoencoder(**settings, random_state=0, device="cpu")
        target, curve, seconds = 100.0, [], 0.0
        X_score = mnist["X_valid"]
        draws, check_draws = args.vae_record_draws, args.vae_record_check_draws

        def iw_nats(n_draws):
            """-log p(x) per held-out image, importance-weighted (skae's log_likelihood)."""
            return -float(
                np.mean(est.log_likelihood(X_score, n_importance_samples=n_draws, random_state=0))
            )

        iw_epochs = None  # the first checkpoint whose importance-weighted estimate reaches target
        for epoch in range(1, args.vae_record_epochs + 1):
            t0 = time.perf_counter()
            est.partial_fit(mnist["X_train"])  # one epoch, Adam's moments kept
            seconds += time.perf_counter() - t0
            if epoch % args.vae_record_step and epoch != args.vae_record_epochs:
                continue
            nats = float(
                np.mean([vae_single_sample_neg_elbo(est, X_score, seed=s) for s in range(5)])
            )
            point = {"epochs": epoch, "neg_elbo_mean_of_5": nats, "fit_seconds": seconds}
            if iw_epochs is None:
                point["neg_log_likelihood_iw"] = iw_nats(draws)
                if point["neg_log_likelihood_iw"] <= target:
                    iw_epochs = epoch
            # the paper's 10 epochs and the first reaching checkpoint, with more draws
            if check_draws != draws and epoch in (10, iw_epochs):
                point["neg_log_likelihood_iw_check"] = iw_nats(check_draws)
            curve.append(point)
            print(f"  VAE record: {curve[-1]}", flush=True)
            if nats <= target:
                break
        reached = curve[-1]["neg_elbo_mean_of_5"] <= target
        payload["vae_record"] = {
            "settings": settings,
            "curve": curve,
            "reached": reached,
            "importance_samples": draws,
            "check_importance_samples": check_draws,
            "importance_weighted_reached_at_epoch": iw_epochs,
        }
        iw_line = (
            f"The importance-weighted estimate first reaches {target:.0f} nats at {iw_epochs} epochs."
            if iw_epochs is not None
            else f"The importance-weighted estimate does not reach {target:.0f} nats."
        )
        sections.append(
            (
                "(b2) The VAE with PyTorch's example settings, epochs until 100 nats",
                "\n".join(
                    [
                        "784-400-20, Bernoulli, Adam 1e-3, batch 128, one `partial_fit` epoch at a "
                        f"time on {len(mnist['X_train'])} rows, scored on {len(X_score)} held-out "
                        f"rows every {args.vae_record_step} epochs: the negative ELBO per image "
                        "(one reparameterised sample, mean of 5 seeds; the figure PyTorch's example "
                        "prints), and -log p(x) estimated by importance sampling "
                        f"(`VariationalAutoencoder.log_likelihood`, {draws} draws per image, until "
                        f"it reaches {target:.0f}"
                        + (
                            f"; {check_draws} draws at 10 epochs and where it first reaches it"
                            if check_draws != draws
                            else ""
                        )
                        + "; the estimator published VAE likelihoods use, with "
                        "5,000 draws in Burda et al. 2016). Like the example, the data are grey "
                        "levels, not binarised, so both are in the units of the Bernoulli "
                        "cross-entropy the example trains on, comparable with its figures but "
                        "not with published likelihoods of binarised MNIST. "
                        "Training stops when the ELBO reaches "
                        f"{target:.0f} nats or after {args.vae_record_epochs} epochs. "
                        + ("ELBO: reached. " if reached else "ELBO: not reached. ")
                        + iw_line,
                        "",
                        C.markdown_table(
                            curve,
                            [
                                "epochs",
                                "neg_elbo_mean_of_5",
                                "neg_log_likelihood_iw",
                                *(["neg_log_likelihood_iw_check"] if check_draws != draws else []),
                                "fit_seconds",
                            ],
                            [
                                "epochs",
                                "-ELBO, 1 sample, mean of 5 seeds (nats)",
                                f"-log p(x), {draws} draws (nats)",
                                *(
                                    [f"-log p(x), {check_draws} draws (nats)"]
                                    if check_draws != draws
                                    else []
                                ),
                                "fit s",
                            ],
                        ),
                    ]
                ),
            )
        )
        save()

    # ------------------------------------------------- (c) best accuracy
    if "accuracy" in sections_wanted:
        arows = []
        pca50 = PCA(n_components=50, random_state=0).fit(mnist["X_train"])
        acc = codes_accuracy(pca50, mnist, lr_iter)
        arows.append({"codes": "PCA(50)", "dim": 50, "logreg_accuracy": acc})
        raw = [r for r in payload.get("mnist", {}).get("rows", []) if r["model"].startswith("raw")]
        if raw:
            acc = raw[0]["logreg_accuracy"]
        else:
            acc, _ = logistic_accuracy(
                mnist["X_train"], mnist["y_train"], mnist["X_valid"], mnist["y_valid"], lr_iter
            )
        arows.append({"codes": "raw pixels", "dim": 784, "logreg_accuracy": acc})
        if "hinton" in sections_wanted:
            arows.append(
                {
                    "codes": "Autoencoder 784-1000-500-250-30 (section a)",
                    "dim": 30,
                    "logreg_accuracy": payload["hinton"]["logreg_accuracy"],
                }
            )
        for name, rows_key in [("mnist", "rows")]:
            for r in payload.get(name, {}).get(rows_key, []):
                if r["model"] in ESTIMATORS:
                    arows.append(
                        {
                            "codes": f"{r['model']} (256,)->{r['n_components']} (main table)",
                            "dim": r["n_components"],
                            "logreg_accuracy": r["logreg_accuracy"],
                        }
                    )
        fixed = dict(
            learning_rate=1e-3,
            batch_size=128,
            tol=0.0,
            n_iter_no_change=10**6,
            early_stopping=False,
            random_state=0,
            device="cpu",
        )
        code_models = [
            (
                "DenoisingAutoencoder 784-1000-256, masking 0.3",
                DenoisingAutoencoder(
                    n_components=256,
                    hidden_layer_sizes=(1000,),
                    noise="masking",
                    noise_level=0.3,
                    max_iter=2 if q else 8,
                    **fixed,
                ),
            ),
            (
                # an over-complete sparse code: 2000 logistic units held to a
                # mean activation of 0.05 (the UFLDL sparse autoencoder's KL).
                # 1000 units at 0.1 gave 0.967 here; scratch runs of the same
                # protocol (not kept) gave 0.971 for 2000 at 0.02, 0.973 for
                # 4000 at 0.05 or 20 epochs, 0.967 for KL weight 3 and 0.927
                # for ReLU units under L1 (weight 0.01)
                "SparseAutoencoder 784-2000, KL to 0.05 (weight 1)",
                SparseAutoencoder(
                    n_components=2000,
                    hidden_layer_sizes=(),
                    sparsity="kl",
                    sparsity_target=0.05,
                    sparsity_weight=1.0,
                    max_iter=2 if q else 10,
                    **fixed,
                ),
            ),
        ]
        for label, model in code_models:
            t = fit_quiet(model, mnist["X_train"])
            arows.append(
                {
                    "codes": f"{label}, {model.n_iter_} epochs",
                    "dim": model.n_components,
                    "logreg_accuracy": codes_accuracy(model, mnist, lr_iter),
                    "fit_seconds": t,
                }
            )
        # the codes of image patches, sum-pooled: a SparseAutoencoder fitted on
        # random 6x6 patches of the training images encodes every patch of an
        # image, and the codes are summed over each quarter of the image (the
        # single-layer feature learning of Coates, Lee & Ng, 2011)
        patch_model = SparseAutoencoder(
            n_components=PATCH_UNITS,
            hidden_layer_sizes=(),
            sparsity="kl",
            sparsity_target=0.05,
            sparsity_weight=1.0,
            max_iter=2 if q else 10,
            **fixed,
        )
        patches = random_patches(
            mnist["X_train"], PATCH_SIZE, 20_000 if q else 200_000, np.random.default_rng(0)
        )
        t = fit_quiet(patch_model, patches)
        t0 = time.perf_counter()
        F_train = pooled_patch_codes(patch_model, mnist["X_train"], PATCH_SIZE)
        F_valid = pooled_patch_codes(patch_model, mnist["X_valid"], PATCH_SIZE)
        encode_seconds = time.perf_counter() - t0
        acc, _ = logistic_accuracy(F_train, mnist["y_train"], F_valid, mnist["y_valid"], lr_iter)
        arows.append(
            {
                "codes": (
                    f"SparseAutoencoder {PATCH_SIZE}x{PATCH_SIZE}-{PATCH_UNITS} on "
                    f"{len(patches)} patches, KL to 0.05, {patch_model.n_iter_} epochs; "
                    "codes of every patch summed over each image quarter "
                    f"(encoding {encode_seconds:.0f} s)"
                ),
                "dim": F_train.shape[1],
                "logreg_accuracy": acc,
                "fit_seconds": t,
            }
        )
        best = max(
            (r for r in arows if r["codes"] not in ("PCA(50)", "raw pixels")),
            key=lambda r: r["logreg_accuracy"],
        )
        payload["accuracy"] = {
            "rows": arows,
            "best_skae": best,
            "target": 0.98,
            "target_met": best["logreg_accuracy"] >= 0.98,
            "published_pca50": 0.91,
            "published_raw": 0.926,
        }
        sections.append(
            (
                "(c) LogisticRegression accuracy on codes (MNIST, held-out)",
                "\n".join(
                    [
                        C.markdown_table(
                            arows,
                            ["codes", "dim", "logreg_accuracy", "fit_seconds"],
                            ["features", "dim", "held-out accuracy", "AE fit s"],
                        ),
                        "",
                        f"- best skae codes: {best['codes']} -> {best['logreg_accuracy']:.4f}; target 0.98: "
                        f"{'MET' if best['logreg_accuracy'] >= 0.98 else 'NOT MET'}",
                        "- LogisticRegression = StandardScaler + LogisticRegression(max_iter="
                        f"{lr_iter}) fitted on the training rows' codes; references ~0.91 (PCA(50)) and ~0.926 (raw).",
                    ]
                ),
            )
        )
        save()
    save()
    for heading, body in sections:
        print(f"\n## {heading}\n{body}")


if __name__ == "__main__":
    main()
