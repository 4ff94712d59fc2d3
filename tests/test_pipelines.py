"""The pipelines people write before a classifier, end to end and
cross-validated: tf-idf text features (sparse) and one-hot encoded categories
beside scaled numbers (sparse, from a ColumnTransformer), each through an
autoencoder into a LogisticRegression.
"""

import importlib.util
from pathlib import Path

import pytest
import scipy.sparse as sp
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skae import Autoencoder, DenoisingAutoencoder

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.usefixtures("one_torch_thread"),
]

CV = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)


def load_example():
    """examples/text_and_onehot.py, whose data the tests share: a text corpus
    available offline (docstrings labelled by their package) and a DataFrame
    of categories and numbers."""
    path = Path(__file__).resolve().parents[1] / "examples" / "text_and_onehot.py"
    spec = importlib.util.spec_from_file_location("text_and_onehot", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


example = load_example()


def test_text_pipeline_tfidf_denoising_autoencoder_logistic_regression():
    texts, labels = example.package_docstrings(per_package=60)
    assert sp.issparse(TfidfVectorizer().fit_transform(texts))
    pipe = make_pipeline(
        TfidfVectorizer(max_features=1000, sublinear_tf=True),
        DenoisingAutoencoder(
            n_components=8,
            hidden_layer_sizes=(32,),
            activation="tanh",
            learning_rate=1e-2,
            batch_size=16,
            max_iter=20,
            device="cpu",
            random_state=0,
        ),
        LogisticRegression(max_iter=1000),
    )
    scores = cross_val_score(pipe, texts, labels, cv=CV)
    # three balanced classes: chance is 1/3 (0.96 here)
    assert scores.mean() > 0.85, scores


def one_hot_pipeline(classifier):
    encode = ColumnTransformer(
        [
            ("categories", OneHotEncoder(handle_unknown="ignore"), ["colour", "city"]),
            ("numbers", StandardScaler(), ["size", "weight"]),
        ]
    )
    autoencoder = Autoencoder(
        n_components=8,
        hidden_layer_sizes=(32,),
        activation="tanh",
        max_iter=60,
        device="cpu",
        random_state=0,
    )
    return make_pipeline(encode, autoencoder, classifier)


def test_one_hot_pipeline_column_transformer_autoencoder_classifier():
    frame, labels = example.customers(n_samples=300, seed=0)
    pipe = one_hot_pipeline(LogisticRegression(max_iter=1000))
    # the ColumnTransformer's output is sparse (density below its 0.3 threshold)
    assert sp.issparse(pipe[0].fit_transform(frame))
    scores = cross_val_score(pipe, frame, labels, cv=CV)
    # the majority class is 0.53; LogisticRegression on the 20 encoded
    # columns themselves reaches 0.90, on these 8-dim codes 0.80
    assert scores.mean() > 0.7, scores
    fitted = pipe.fit(frame, labels)
    names = fitted[:-1].get_feature_names_out()
    assert list(names) == [f"autoencoder{i}" for i in range(8)]
