"""The Display objects of skae.plotting: what each draws, and the missing-matplotlib error."""

import sys
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skae import Autoencoder
from skae.plotting import (
    ComparisonDisplay,
    LatentSpaceDisplay,
    LossCurveDisplay,
    ReconstructionDisplay,
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def tiny(**params):
    params = {
        "n_components": 2,
        "hidden_layer_sizes": (16,),
        "max_iter": 4,
        "batch_size": 50,
        "random_state": 0,
        "device": "cpu",
        **params,
    }
    return Autoencoder(**params)


@pytest.fixture(scope="module")
def plt():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@pytest.fixture(autouse=True)
def close_figures():
    yield
    if "matplotlib.pyplot" in sys.modules and sys.modules["matplotlib.pyplot"] is not None:
        sys.modules["matplotlib.pyplot"].close("all")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:300] / 16, y[:300]


@pytest.fixture(scope="module")
def fitted(digits):
    return tiny(early_stopping=False).fit(digits[0])


def matplotlib_colors():
    import matplotlib.colors

    return matplotlib.colors


def span_extent(span):
    """x-extent of an axvspan: a Rectangle since matplotlib 3.9, a Polygon before."""
    if hasattr(span, "get_width"):
        return [span.get_x(), span.get_x() + span.get_width()]
    xs = np.asarray(span.get_xy())[:, 0]
    return [xs.min(), xs.max()]


def legend_texts(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


# ---------------------------------------------------------------- LossCurveDisplay


def test_loss_curve_display_training_loss_only(plt, fitted):
    display = LossCurveDisplay.from_estimator(fitted)

    assert display.ax_.get_xlabel() == "epoch"
    assert "loss" in display.ax_.get_ylabel()
    assert "Autoencoder" in display.ax_.get_title()
    assert display.figure_ is display.ax_.figure
    assert display.ax_.get_lines() == [display.line_]
    assert_array_equal(display.line_.get_xdata(), np.arange(1, fitted.n_iter_ + 1))
    assert_allclose(display.line_.get_ydata(), fitted.loss_curve_)
    # no early stopping: no validation curve; no pretraining: no phases
    assert display.validation_line_ is None
    assert display.pretraining_spans_ == [] and display.finetuning_span_ is None
    assert legend_texts(display.ax_) == ["training loss"]


def test_loss_curve_display_validation_curve_with_early_stopping(plt, digits):
    est = tiny(early_stopping=True, max_iter=5).fit(digits[0])
    display = LossCurveDisplay.from_estimator(est)

    assert len(display.ax_.get_lines()) == 2
    assert_allclose(display.validation_line_.get_ydata(), -np.asarray(est.validation_scores_))
    assert_array_equal(
        display.validation_line_.get_xdata(), np.arange(1, len(est.validation_scores_) + 1)
    )
    assert legend_texts(display.ax_) == ["training loss", "validation loss"]


def test_loss_curve_display_places_validation_after_partial_fit(plt, digits):
    # the validation loss stays at the epochs it was measured: partial_fit's
    # epochs have none and break the line
    est = tiny(early_stopping=True, max_iter=3).fit(digits[0])
    est.partial_fit(digits[0])
    est.set_params(warm_start=True).fit(digits[0])
    display = LossCurveDisplay.from_estimator(est)

    x, y = display.validation_line_.get_xdata(), display.validation_line_.get_ydata()
    assert_array_equal(x, np.arange(1, est.n_iter_ + 1))
    assert_array_equal(x[np.isnan(y)], [4])
    assert_allclose(y[[0, 1, 2, 4, 5, 6]], -np.asarray(est.validation_scores_)[[0, 1, 2, 4, 5, 6]])


def test_loss_curve_display_names_what_the_validation_line_measures(plt, digits):
    # the VAE trains on the negative ELBO and stops on the held-out
    # reconstruction error: two quantities, not one loss on two row sets;
    # MLPRegressor's validation score is R^2
    from sklearn.neural_network import MLPRegressor

    from skae import VariationalAutoencoder

    X = digits[0]
    vae = VariationalAutoencoder(n_components=2, max_iter=3, device="cpu", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae.fit(X)
        mlp = MLPRegressor(hidden_layer_sizes=(8,), early_stopping=True, max_iter=5, random_state=0)
        mlp.fit(X, X[:, 0])
    labels = legend_texts(LossCurveDisplay.from_estimator(vae).ax_)
    assert labels == ["training loss", "validation reconstruction error (posterior mean)"]
    labels = legend_texts(LossCurveDisplay.from_estimator(mlp).ax_)
    assert labels == ["training loss", "validation score, negated"]


def test_loss_curve_display_marks_pretraining_phases(plt, digits):
    est = tiny(hidden_layer_sizes=(16, 8), pretraining="greedy", early_stopping=True, max_iter=3)
    est.fit(digits[0])
    lengths = [len(curve) for curve in est.pretraining_loss_curves_]
    assert len(lengths) == 3  # one per layer: 64-16, 16-8, 8-2
    display = LossCurveDisplay.from_estimator(est)

    assert len(display.pretraining_spans_) == len(lengths)
    edges = np.cumsum([0, *lengths]) + 0.5
    for span, start, stop in zip(display.pretraining_spans_, edges[:-1], edges[1:], strict=True):
        assert_allclose(span_extent(span), [start, stop])
    assert_allclose(span_extent(display.finetuning_span_), [edges[-1], len(est.loss_curve_) + 0.5])
    assert legend_texts(display.ax_) == [
        "pretraining layer 1",
        "pretraining layer 2",
        "pretraining layer 3",
        "fine-tuning",
        "training loss",
        "validation loss",
    ]
    # the line breaks between phases and the validation curve starts after them
    y = display.line_.get_ydata()
    assert np.isnan(y).sum() == len(lengths)
    assert_allclose(y[~np.isnan(y)], est.loss_curve_)
    assert display.validation_line_.get_xdata()[0] == sum(lengths) + 1


def test_loss_curve_display_plot_on_given_axes(plt, fitted):
    fig, (ax1, ax2) = plt.subplots(1, 2)
    display = LossCurveDisplay.from_estimator(fitted, ax=ax2, name="mine", color="k")

    assert display.ax_ is ax2 and display.figure_ is fig
    assert len(ax2.get_lines()) == 1 and len(ax1.get_lines()) == 0
    assert display.ax_.get_title() == "mine: loss per epoch"
    assert display.line_.get_color() == "k"


def test_loss_curve_display_needs_a_loss_curve(plt, digits):
    with pytest.raises(ValueError, match="PCA has no loss_curve_"):
        LossCurveDisplay.from_estimator(PCA(2).fit(digits[0]))


# ------------------------------------------------------------- LatentSpaceDisplay


def test_latent_space_display_with_classes(plt, fitted, digits):
    X, y = digits
    display = LatentSpaceDisplay.from_estimator(fitted, X, y)

    assert list(display.ax_.collections) == [display.scatter_]
    assert_allclose(display.scatter_.get_offsets(), fitted.transform(X))
    assert (display.ax_.get_xlabel(), display.ax_.get_ylabel()) == (
        "autoencoder0",
        "autoencoder1",
    )
    assert legend_texts(display.ax_) == [str(c) for c in range(10)]
    assert display.colorbar_ is None
    # each class gets its own colour, the one its legend entry shows
    display.figure_.canvas.draw()
    colors = display.scatter_.get_facecolors()[:, :3]
    assert len(np.unique(colors, axis=0)) == 10
    handles = display.legend_.legend_handles
    for label in range(10):
        expected = matplotlib_colors().to_rgb(handles[label].get_color())
        assert_allclose(colors[y == label], np.tile(expected, ((y == label).sum(), 1)))


def test_latent_space_display_continuous_target_gets_colorbar(plt, fitted, digits):
    X, _ = digits
    target = X.sum(axis=1)
    display = LatentSpaceDisplay.from_estimator(fitted, X, target)

    assert display.legend_ is None and display.ax_.get_legend() is None
    assert display.colorbar_ is not None
    assert len(display.figure_.axes) == 2  # the scatter and the colorbar


def test_latent_space_display_integer_target_with_many_values_gets_colorbar(plt, fitted, digits):
    # an integer target is continuous too when it has many values (it got a
    # legend of every one of them)
    X, _ = digits
    target = (X.sum(axis=1) * 10).astype(int)
    assert len(np.unique(target)) > 20
    display = LatentSpaceDisplay.from_estimator(fitted, X, target)
    assert display.legend_ is None and display.colorbar_ is not None


def test_latent_space_display_without_labels(plt, fitted, digits):
    display = LatentSpaceDisplay.from_estimator(fitted, digits[0])

    assert display.legend_ is None and display.colorbar_ is None
    assert display.ax_.get_legend() is None


def test_latent_space_display_names_labels_of_mixed_types(plt, fitted, digits):
    # a missing label (None) among strings raised numpy's "'<' not supported"
    X, _ = digits
    y = np.array(["a", "b", None] * (len(X) // 3) + ["a"] * (len(X) % 3), dtype=object)
    with pytest.raises(TypeError, match=r"all numbers or all strings.*\['NoneType', 'str'\]"):
        LatentSpaceDisplay.from_estimator(fitted, X, y)


def test_latent_space_display_projections_of_a_wider_code(plt, digits):
    X, y = digits
    est = tiny(n_components=4).fit(X)
    codes = est.transform(X)

    first = LatentSpaceDisplay.from_estimator(est, X, y)
    assert_allclose(first.scatter_.get_offsets(), codes[:, :2])
    assert first.ax_.get_xlabel() == "autoencoder0"

    fig, ax = plt.subplots()
    pca = LatentSpaceDisplay.from_estimator(est, X, y, projection="pca", ax=ax)
    assert pca.ax_ is ax
    assert_allclose(pca.scatter_.get_offsets(), PCA(n_components=2).fit_transform(codes))
    assert pca.ax_.get_xlabel().startswith("PC 1")
    assert "autoencoder3" in pca.ax_.get_xlabel()

    with pytest.raises(ValueError, match="projection"):
        LatentSpaceDisplay.from_estimator(est, X, projection="tsne")


def test_latent_space_display_needs_two_components(plt, digits):
    est = PCA(n_components=1).fit(digits[0])
    with pytest.raises(ValueError, match="at least 2 components"):
        LatentSpaceDisplay.from_estimator(est, digits[0])


# ---------------------------------------------------------- ReconstructionDisplay


def test_reconstruction_display_rows_of_images(plt, fitted, digits):
    X, _ = digits
    display = ReconstructionDisplay.from_estimator(fitted, X, image_shape=(8, 8), n_images=5)

    assert display.images_.shape == display.axes_.shape == (2, 5)
    assert len(display.figure_.axes) == 10
    expected = [X[:5], fitted.inverse_transform(fitted.transform(X[:5]))]
    for row in range(2):
        for j in range(5):
            image = display.images_[row, j]
            assert image.get_array().shape == (8, 8)
            assert_allclose(image.get_array(), expected[row][j].reshape(8, 8))
            assert image.origin == "upper"
            ax = display.axes_[row, j]
            # upright: the first pixel row at the top; not mirrored left-right
            bottom, top = ax.get_ylim()
            left, right = ax.get_xlim()
            assert bottom > top and left < right
            assert len(ax.get_xticks()) == 0 and len(ax.get_yticks()) == 0
    assert display.images_[0, 0].get_cmap().name == "gray_r"
    assert [ax.get_ylabel() for ax in display.axes_[:, 0]] == ["original", "reconstruction"]
    assert "Autoencoder" in display.figure_.get_suptitle()
    # one colour scale for all images: the originals' range
    assert display.images_[1, 3].get_clim() == (X[:5].min(), X[:5].max())


def test_reconstruction_display_infers_square_image_shape(plt, fitted, digits):
    display = ReconstructionDisplay.from_estimator(fitted, digits[0], n_images=3)
    assert display.images_[0, 0].get_array().shape == (8, 8)
    with pytest.raises(ValueError, match="image_shape"):
        ReconstructionDisplay.from_estimator(fitted, digits[0], image_shape=(4, 8))


def test_reconstruction_display_takes_frames_and_sparse_rows(plt, fitted, digits):
    # the rows reach the estimator as given: a frame with its column names
    # (no feature-name warning), a sparse matrix (it raised IndexError)
    import scipy.sparse as sp

    pd = pytest.importorskip("pandas")
    X = digits[0]
    frame = pd.DataFrame(X, columns=[f"p{i}" for i in range(X.shape[1])])
    named = tiny().fit(frame)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        display = ReconstructionDisplay.from_estimator(named, frame, n_images=3)
    assert_allclose(display.images_[0, 1].get_array(), X[1].reshape(8, 8))
    display = ReconstructionDisplay.from_estimator(fitted, sp.csr_matrix(X), n_images=3)
    assert_allclose(display.images_[0, 2].get_array(), X[2].reshape(8, 8))


def test_reconstruction_display_refuses_several_channels_by_name(plt, digits):
    from skae import ConvolutionalAutoencoder

    est = ConvolutionalAutoencoder(n_components=2, image_shape=(4, 4, 4), max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(digits[0])
    with pytest.raises(ValueError, match="one-channel images; these have 4 channels"):
        ReconstructionDisplay.from_estimator(est, digits[0])


def test_reconstruction_display_plot_on_given_axes(plt, digits):
    X = digits[0][:6]
    rows = [X[:3], X[3:6], 1 - X[:3]]
    labels = ["a", "b", "c"]

    fig, ax = plt.subplots()
    display = ReconstructionDisplay(rows, image_shape=(8, 8), row_labels=labels).plot(ax=ax)
    assert display.ax_ is ax and display.figure_ is fig
    assert display.images_.shape == (3, 3)
    assert not ax.axison
    assert len(ax.child_axes) == 9
    assert all(cell in ax.child_axes for cell in display.axes_.ravel())
    assert [a.get_ylabel() for a in display.axes_[:, 0]] == labels

    fig, axes = plt.subplots(3, 3)
    display = ReconstructionDisplay(rows, image_shape=(8, 8)).plot(ax=axes)
    assert display.ax_ is None
    assert_array_equal(display.axes_, axes)
    assert_allclose(display.images_[2, 1].get_array(), (1 - X[1]).reshape(8, 8))
    with pytest.raises(ValueError, match="Expected 9 axes"):
        ReconstructionDisplay(rows, image_shape=(8, 8)).plot(ax=axes[:2])


# --------------------------------------------------------------- ComparisonDisplay


def test_comparison_display_matches_independent_numbers(plt, digits):
    X, y = digits
    X_train, X_test, y_train, y_test = X[:200], X[200:], y[:200], y[200:]
    estimators = {"pca": PCA(n_components=3), "ae": tiny(n_components=3)}
    display = ComparisonDisplay.from_estimators(estimators, X_train, X_test, y_train, y_test)

    assert [r["name"] for r in display.results] == ["pca", "ae"]
    assert not hasattr(estimators["ae"], "module_")  # the caller's estimators stay unfitted
    for result, est in zip(display.results, estimators.values(), strict=True):
        est = est.__class__(**est.get_params()).fit(X_train)
        codes_train, codes_test = est.transform(X_train), est.transform(X_test)
        error = ((est.inverse_transform(codes_test) - X_test) ** 2).sum(axis=1).mean()
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        accuracy = clf.fit(codes_train, y_train).score(codes_test, y_test)
        assert result["n_components"] == 3
        assert result["reconstruction_error"] == pytest.approx(error, rel=1e-6)
        assert result["accuracy"] == pytest.approx(accuracy)
        assert set(display.estimators_) == {"pca", "ae"}

    error_ax, accuracy_ax = display.axes_
    assert len(display.error_bars_) == len(display.accuracy_bars_) == 2
    assert_allclose(
        [bar.get_width() for bar in display.error_bars_],
        [r["reconstruction_error"] for r in display.results],
    )
    assert_allclose(
        [bar.get_width() for bar in display.accuracy_bars_],
        [r["accuracy"] for r in display.results],
    )
    assert [t.get_text() for t in error_ax.get_yticklabels()] == ["pca", "ae"]
    assert "reconstruction error" in error_ax.get_title()
    assert "accuracy" in accuracy_ax.get_xlabel()
    assert "error" in error_ax.get_xlabel()


def test_comparison_display_list_and_given_axes(plt, digits):
    X, y = digits
    fig, axes = plt.subplots(2, 1)
    display = ComparisonDisplay.from_estimators(
        [PCA(n_components=2), PCA(n_components=3)],
        X[:200],
        X[200:],
        y[:200],
        y[200:],
        ax=axes,
        title="two PCAs",
    )
    assert [r["name"] for r in display.results] == ["PCA", "PCA (2)"]
    assert display.figure_ is fig
    assert_array_equal(display.axes_, axes)
    assert fig.get_suptitle() == "two PCAs"
    # the larger code reconstructs better
    assert display.results[1]["reconstruction_error"] < display.results[0]["reconstruction_error"]


def test_comparison_display_takes_a_bar_colour(plt, digits):
    # its own colours were passed beside **kwargs: color= was a TypeError
    X, y = digits
    display = ComparisonDisplay.from_estimators(
        [PCA(n_components=2)], X[:200], X[200:], y[:200], y[200:], color="k"
    )
    for bars in (display.error_bars_, display.accuracy_bars_):
        assert matplotlib_colors().to_rgb(bars[0].get_facecolor()) == (0.0, 0.0, 0.0)


def test_an_empty_name_draws_no_title(plt, fitted, digits):
    # "" titled the plots ": codes", ": loss per epoch", ": reconstructions"
    X, y = digits
    latent = LatentSpaceDisplay.from_estimator(fitted, X, y, name="")
    assert latent.ax_.get_title() == ""
    curve = LossCurveDisplay.from_estimator(fitted, name="")
    assert curve.ax_.get_title() == ""
    images = ReconstructionDisplay.from_estimator(fitted, X[:3], name="")
    assert images.figure_.get_suptitle() == ""


def test_more_than_twenty_named_classes_get_a_colour_each(plt, fitted, digits):
    # tab20 repeated its colours past 20 string labels
    X, _ = digits
    labels = np.array([f"class {i}" for i in range(25)])[np.arange(len(X)) % 25]
    display = LatentSpaceDisplay.from_estimator(fitted, X, labels)
    handles = display.legend_.legend_handles
    assert len(handles) == 25
    assert len({matplotlib_colors().to_rgb(h.get_color()) for h in handles}) == 25


def test_comparison_display_refuses_results_with_different_scores(plt):
    # a classifier's accuracy beside a regressor's R^2 is no one axis (it
    # raised KeyError: 'r2')
    results = [
        {"name": "on classes", "reconstruction_error": 1.0, "accuracy": 0.9},
        {"name": "on a target", "reconstruction_error": 2.0, "r2": 0.5},
    ]
    with pytest.raises(ValueError, match=r"the same score on the codes.*'on a target': \['r2'\]"):
        ComparisonDisplay(results).plot()


# ------------------------------------------------------------ missing matplotlib


class FitFails(PCA):
    def fit(self, X, y=None):
        raise AssertionError("fitted before checking for matplotlib")

    fit_transform = fit


def test_missing_matplotlib_names_the_extra(monkeypatch, fitted, digits):
    X, y = digits
    loss = LossCurveDisplay(loss_curve=[1.0, 0.5])
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    calls = [
        loss.plot,
        lambda: LossCurveDisplay.from_estimator(fitted),
        lambda: LatentSpaceDisplay.from_estimator(fitted, X, y),
        lambda: ReconstructionDisplay.from_estimator(fitted, X),
        lambda: ReconstructionDisplay([X[:2]], image_shape=(8, 8)).plot(),
        lambda: ComparisonDisplay.from_estimators([FitFails()], X, X, y, y),
        lambda: ComparisonDisplay([]).plot(),
    ]
    for call in calls:
        with pytest.raises(ImportError, match=r'pip install "skae\[plot\]"'):
            call()
