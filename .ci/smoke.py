"""Smoke test of an installed skae wheel, run from outside the source tree.

Import, fit, transform, skae.save / skae.load, and to_onnx with the onnx extra.
"""

import sys
import tempfile
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

import skae
from skae import Autoencoder

assert "site-packages" in skae.__file__, f"skae imported from the source tree: {skae.__file__}"
X = load_digits().data.astype(np.float32) / 16
model = Autoencoder(n_components=4, max_iter=3, random_state=0).fit(X)
Z = model.transform(X)
assert Z.shape == (len(X), 4) and Z.dtype == np.float32 and np.isfinite(Z).all()
with tempfile.TemporaryDirectory() as tmp:
    path = Path(tmp) / "model.skae"
    skae.save(model, path)
    np.testing.assert_array_equal(skae.load(path).transform(X), Z)
try:
    import onnxruntime
except ImportError:
    print("onnx extra not installed: to_onnx skipped")
else:
    from skae.onnx import to_onnx

    session = onnxruntime.InferenceSession(to_onnx(model).SerializeToString())
    (Z_onnx,) = session.run(None, {"X": X})
    np.testing.assert_allclose(Z_onnx, Z, atol=1e-5 * float(np.abs(Z).max()))
    print("to_onnx: onnxruntime matches transform")
skae.show_versions()
print(f"smoke test passed: skae {skae.__version__} from {skae.__file__}", file=sys.stderr)
