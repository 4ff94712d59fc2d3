"""The shape of ``fit`` and of the fitted state (issue 10).

- a failed call leaves the estimator as it was, attribute for attribute,
  without the estimator copying itself: ``fit`` computes local values and
  assigns the fitted attributes together at the end; a warm start trains a
  copy of ``module_``;
- what is fitted is every attribute whose name ends in "_";
- every public estimator documents exactly its ``__init__`` parameters, in order.
"""

import copy
import inspect
import re

import numpy as np
import pytest
import torch
from _family import ESTIMATORS
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning

import skae
import skae._base

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

TINY = dict(hidden_layer_sizes=(6,), n_components=2, max_iter=2, device="cpu", random_state=0)
X = np.random.default_rng(0).random((40, 16))
#: finite in float32, but the squared error overflows: the loss becomes inf
X_OVERFLOW = X * 1e30


def assert_same_state(a, b, where="state"):
    """Recursive equality of exported states (dicts, lists, arrays, numbers)."""
    assert type(a) is type(b), where
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same_state(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_state(x, y, f"{where}/{i}")
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b, err_msg=where)
    else:
        assert a == b or (a != a and b != b), where  # NaN equals NaN here


def snapshot(est):
    """Everything the estimator holds: parameters, configuration and the
    fitted state, as plain data (weights, optimiser moments, generator)."""
    state = copy.deepcopy(est.__getstate__())
    state["module_device"] = {str(p.device) for p in est.module_.parameters()}
    state["module_identity"] = id(est.module_)
    return state


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("call", ["fit", "warm_start", "partial_fit"])
def test_a_failed_call_leaves_every_attribute_as_it_was(cls, call):
    est = cls(**TINY).fit(X)
    est.partial_fit(X)  # optimiser moments and a generator that has moved on
    if call == "warm_start":
        est.set_params(warm_start=True)
    # a fit from scratch sees X_OVERFLOW at unit scale and scores it in
    # float64, without failing: there a rate of 1e30 fails
    rate = est.learning_rate
    if call == "fit":
        est.set_params(learning_rate=1e30)
    before = snapshot(est)
    method = est.partial_fit if call == "partial_fit" else est.fit
    with pytest.raises(ValueError, match="non-finite"):
        method(X_OVERFLOW)
    assert_same_state(snapshot(est), before)
    est.set_params(learning_rate=rate)
    # and it carries on exactly as an estimator that never saw the failure
    twin = copy.deepcopy(est)
    np.testing.assert_array_equal(est.partial_fit(X).transform(X), twin.partial_fit(X).transform(X))


def test_a_failure_after_a_warm_start_device_change_leaves_the_module_on_device_(monkeypatch):
    """A warm start on another device trains a copy moved there: when the
    call fails after the move, ``module_`` is still on ``device_``. (No second
    device here: the move goes to torch's "meta" device, on which the call
    then fails creating its random generator.)"""
    est = skae.Autoencoder(**TINY, warm_start=True).fit(X)
    expected = est.transform(X)
    module = est.module_
    moved = []
    original_to = torch.nn.Module.to

    def recording_to(self, *args, **kwargs):
        moved.append(torch.device(args[0]) if args else kwargs.get("device"))
        return original_to(self, *args, **kwargs)

    monkeypatch.setattr(skae._base, "resolve_device", lambda device: torch.device("meta"))
    monkeypatch.setattr(torch.nn.Module, "to", recording_to)
    with pytest.raises(RuntimeError):
        est.fit(X)
    monkeypatch.undo()
    assert torch.device("meta") in moved  # the call did move a module before failing
    assert est.module_ is module
    assert est.device_ == torch.device("cpu")
    assert {p.device for p in est.module_.parameters()} == {est.device_}
    np.testing.assert_array_equal(est.transform(X), expected)


def test_a_fit_from_scratch_replaces_every_fitted_attribute():
    """Fitted attributes are those ending in "_"; a fit from scratch drops the
    ones the previous fit had and this one does not make."""
    est = skae.ContractiveAutoencoder(**{**TINY, "early_stopping": True}).fit(X)
    assert est.validation_scores_ is not None
    est.set_params(early_stopping=False).fit(X)
    assert est.validation_scores_ is None
    est.stale_ = "set by hand"
    est.fit(X)
    assert not hasattr(est, "stale_")


def test_warm_start_keeps_the_history_and_extends_it():
    est = skae.Autoencoder(**{**TINY, "warm_start": True}).fit(X)
    first = list(est.loss_curve_)
    with pytest.warns(ConvergenceWarning):
        est.fit(X)
    assert est.loss_curve_[: len(first)] == first
    assert est.n_iter_ == len(est.loss_curve_) == 2 * TINY["max_iter"]


def test_partial_fit_carries_the_moments_at_the_optimizer_settings_set_now():
    # a changed optimizer or weight_decay had been ignored by partial_fit
    # (which kept the last call's), while learning_rate applied
    est = skae.Autoencoder(**TINY).partial_fit(X)
    moments = copy.deepcopy(est._optimizer_.state_dict()["state"])
    est.set_params(weight_decay=0.3).partial_fit(X)
    assert isinstance(est._optimizer_, torch.optim.Adam)
    assert est._optimizer_.param_groups[0]["weight_decay"] == 0.3
    steps = [float(s["step"]) for s in est._optimizer_.state_dict()["state"].values()]
    assert steps == [2 * float(s["step"]) for s in moments.values()]  # carried over
    est.set_params(optimizer="sgd", weight_decay=0.5).partial_fit(X)
    assert isinstance(est._optimizer_, torch.optim.SGD)
    assert est._optimizer_.param_groups[0]["weight_decay"] == 0.5


# ----------------------------------------------------- documentation


def public_estimators():
    return [
        obj
        for name in skae.__all__
        if isinstance(obj := getattr(skae, name), type) and issubclass(obj, BaseEstimator)
    ]


def documented_parameters(cls):
    """The names in the numpydoc Parameters section of ``cls``'s docstring."""
    doc = inspect.getdoc(cls)
    section = re.search(r"^Parameters\n-+\n(.*?)(?=^\w[\w ]*\n-+\n|\Z)", doc, re.S | re.M)
    assert section, f"{cls.__name__} has no Parameters section"
    return re.findall(r"^(\w+) :", section.group(1), re.M)


def test_the_documentation_test_sees_every_estimator():
    assert set(ESTIMATORS) <= set(public_estimators())


@pytest.mark.parametrize("cls", public_estimators(), ids=lambda c: c.__name__)
def test_docstring_documents_exactly_the_init_parameters_in_order(cls):
    init = [
        name
        for name, p in inspect.signature(cls.__init__).parameters.items()
        if name != "self" and p.kind is not p.VAR_KEYWORD
    ]
    assert documented_parameters(cls) == init
