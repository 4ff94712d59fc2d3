"""Every script in examples/ runs in its quick mode and prints what it promises."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

#: Extra arguments per script (default: ``--quick``); ``{out}`` becomes a PNG in tmp_path.
ARGS = {
    "compare_pca_digits.py": ["--quick", "--figures", "figures"],
    "denoise_digits.py": ["--quick", "--out", "{out}"],
    "vae_sample_digits.py": ["--quick", "--out", "{out}"],
    "features_gridsearch.py": ["--quick"],
    "onnx_deploy.py": ["--quick"],
    "outliers_digits.py": ["--quick", "--out", "{out}", "--out-abnormal", "abnormal.png"],
    "dask_cluster.py": ["--quick"],
    "text_and_onehot.py": ["--quick"],
    "impute_digits.py": ["--quick", "--out", "{out}"],
}

#: Patterns the output must match, per script.
EXPECTED = {
    "compare_pca_digits.py": [
        r"\| 2 \| PCA \| \d+\.\d{3} \| 0\.\d{3} \|",
        r"\| 2 \| ConvolutionalAutoencoder \| \d+\.\d{3} \| 0\.\d{3} \|",
    ],
    "denoise_digits.py": [
        r"noisy input +\d+\.\d{3}",
        r"DenoisingAutoencoder +\d+\.\d{3}",
        r"PCA +\d+\.\d{3}",
    ],
    "vae_sample_digits.py": [
        r"held-out ELBO per image: -?\d+\.\d{2}",
        r"sampled 12 digits",
    ],
    "features_gridsearch.py": [
        r"\| 1 \| \w+ \| 8 \| 0\.\d{3} \|",
        r"\| \d \| PCA \| 8 \|",
        r"\| \d \| Autoencoder \| 8 \|",
        r"\| \d \| DenoisingAutoencoder \| 8 \|",
        r"held-out accuracy of the best pipeline: 0\.\d{3}",
    ],
    "onnx_deploy.py": [
        r"max \|onnxruntime - skae\| on codes: \d\.\d{2}e[-+]\d{2}",
        r"pipeline labels identical on (\d+)/\1 held-out digits",
        r"on probabilities: (0\.00e\+00|\d\.\d{2}e-(0[5-9]|[1-9]\d))",
        r"reloaded labels identical: True",
    ],
    "outliers_digits.py": [
        r"ROC AUC AutoencoderOutlierDetector +0\.\d{3}",
        r"ROC AUC PCA\(\d+\) reconstruction +0\.\d{3}",
        r"flagged as outliers: \d+\.\d% of the other digits",
        r"most abnormal \(index:label\):( \d+:\d){6}",
    ],
    "dask_cluster.py": [
        r"dask cluster: 2 workers",
        r"Incremental: 2 passes over 5 blocks of 1347 rows on the cluster",
        r"codes of 450 held-out digits: shape \(450, 8\)",
        # other BLAS libraries may round by block height: below 1e-5, not 0
        r"max \|cluster - local\| on codes: (0\.00e\+00|\d\.\d\de-(0[6-9]|[1-9]\d))",
        # the blocks' scores summed on the cluster, one sum locally: they had
        # been asked to print alike to 3 decimals, which rounding can split
        r"held-out score \(cluster\): -?\d+\.\d{3}, \(local\): -?\d+\.\d{3}",
        r"relative score difference: (0\.00e\+00|\d\.\d\de-(0[6-9]|[1-9]\d))",
    ],
    "impute_digits.py": [
        r"KNNImputer +RMSE of the filled pixels 0\.\d{3}, accuracy 0\.\d{3}",
        r"AutoencoderImputer +RMSE of the filled pixels 0\.\d{3}, accuracy 0\.\d{3}",
    ],
    "text_and_onehot.py": [
        r"tf-idf is a csr_matrix \d+ x \d+",
        r"\| TfidfVectorizer -> DenoisingAutoencoder\(16\) -> LogisticRegression \| 0\.\d{3} \|",
        r"the ColumnTransformer gives a sparse \d+ x 20 matrix",
        r"\| ColumnTransformer -> Autoencoder\(8\) -> LogisticRegression \| 0\.\d{3} \|",
    ],
}

#: Figures a script saves into tmp_path with its arguments above.
FIGURES = {
    "compare_pca_digits.py": [
        f"figures/{name}.png"
        for name in ("comparison", "loss_curve", "latent_space", "reconstruction")
    ],
    "outliers_digits.py": ["abnormal.png"],
}

SCRIPTS = sorted(path.name for path in EXAMPLES.glob("*.py"))


def run(script, tmp_path):
    out = tmp_path / "figure.png"
    args = [a.format(out=out) for a in ARGS.get(script, ["--quick"])]
    env = {**os.environ, "MPLBACKEND": "Agg"}
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        check=True,
        timeout=120,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    return completed.stdout, out if "{out}" in ARGS.get(script, []) else None


def test_every_example_is_known():
    # a new example must say how to run it quickly and what it prints
    assert set(SCRIPTS) == set(ARGS) == set(EXPECTED)


@pytest.mark.slow  # each script in its own Python process
@pytest.mark.parametrize("script", SCRIPTS)
def test_example_runs(script, tmp_path):
    if "{out}" in ARGS.get(script, []) or script in FIGURES:
        pytest.importorskip("matplotlib")
    stdout, figure = run(script, tmp_path)
    for pattern in EXPECTED.get(script, []):
        assert re.search(pattern, stdout), f"{pattern!r} not in the output:\n{stdout}"
    if figure is not None:
        assert f"saved {figure}" in stdout
        with open(figure, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        assert figure.stat().st_size > 10_000
    for name in FIGURES.get(script, []):
        assert f"saved {name}" in stdout
        with open(tmp_path / name, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
