"""Deploy an autoencoder with ONNX: one estimator, then a whole Pipeline.

Fits a Pipeline StandardScaler -> Autoencoder -> LogisticRegression on the
digits, then

1. exports the autoencoder's ``transform`` and ``inverse_transform`` with
   ``skae.onnx.to_onnx`` and runs them in onnxruntime, against skae;
2. converts the whole Pipeline with ``skl2onnx.to_onnx`` (after
   ``skae.onnx.register_converters()``) and compares its labels and
   probabilities with scikit-learn's;
3. saves the pipeline's ``.onnx`` file (to ``--out``; else to a temporary
   folder, reloaded and then removed), which onnxruntime serves from C++, C#,
   Java or JavaScript without Python.

Needs the onnx extra: ``pip install "skae[onnx]"``.

    python examples/onnx_deploy.py [--out skae_pipeline.onnx]
"""

import argparse
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import skl2onnx
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skae import Autoencoder
from skae.onnx import register_converters, to_onnx


def session(model):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--components", type=int, default=16)
    parser.add_argument("--max-iter", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="where to save the pipeline's .onnx file")
    parser.add_argument("--quick", action="store_true", help="few epochs, for a smoke test")
    args = parser.parse_args(argv)
    max_iter = 5 if args.quick else args.max_iter

    X, y = load_digits(return_X_y=True)
    # float32 end to end: the graphs compute in float32, as skl2onnx usually does
    X_train, X_test, y_train, y_test = train_test_split(
        (X / 16).astype(np.float32), y, test_size=0.25, stratify=y, random_state=args.seed
    )
    autoencoder = Autoencoder(
        n_components=args.components,
        hidden_layer_sizes=(64,),
        max_iter=max_iter,
        batch_size=64,
        random_state=args.seed,
        device="cpu",
    )
    pipe = make_pipeline(StandardScaler(), autoencoder, LogisticRegression(max_iter=2000))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe.fit(X_train, y_train)
    X_scaled = pipe[0].transform(X_test)

    # 1. one estimator: its encoder and its decoder
    encoder = to_onnx(autoencoder, method="transform")
    decoder = to_onnx(autoencoder, method="inverse_transform")
    (codes,) = session(encoder).run(None, {"X": X_scaled})
    (reconstructions,) = session(decoder).run(None, {"Z": codes})
    expected_codes = autoencoder.transform(X_scaled)
    expected_reconstructions = autoencoder.inverse_transform(expected_codes)
    print(
        f"to_onnx(Autoencoder, method='transform'): input X [N, {X_scaled.shape[1]}] -> "
        f"output Z [N, {codes.shape[1]}], {encoder.ByteSize() / 1024:.1f} KB"
    )
    print(
        "max |onnxruntime - skae| on codes: "
        f"{np.abs(codes - expected_codes).max():.2e} "
        f"(codes up to {np.abs(expected_codes).max():.2f})"
    )
    print(
        "max |onnxruntime - skae| on reconstructions: "
        f"{np.abs(reconstructions - expected_reconstructions).max():.2e}"
    )

    # 2. the whole Pipeline through skl2onnx
    register_converters()
    model = skl2onnx.to_onnx(pipe, X_train[:1], options={LogisticRegression: {"zipmap": False}})
    labels, probabilities = session(model).run(None, {"X": X_test})
    same = int((labels == pipe.predict(X_test)).sum())
    print(f"pipeline labels identical on {same}/{len(X_test)} held-out digits")
    print(
        "max |onnxruntime - scikit-learn| on probabilities: "
        f"{np.abs(probabilities - pipe.predict_proba(X_test)).max():.2e}"
    )
    print(f"held-out accuracy (onnxruntime): {(labels == y_test).mean():.3f}")

    # 3. the file to ship
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.out) if args.out else Path(tmp) / "skae_pipeline.onnx"
        path.write_bytes(model.SerializeToString())
        reloaded = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (reloaded_labels, _) = reloaded.run(None, {"X": X_test})
        where = f"saved {path}" if args.out else f"wrote {path.name} to a temporary folder"
        print(
            f"{where} ({path.stat().st_size / 1024:.1f} KB); reloaded labels "
            f"identical: {bool((reloaded_labels == labels).all())}"
        )


if __name__ == "__main__":
    main()
