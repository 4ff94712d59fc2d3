"""The base of the MLP family (plain, denoising, sparse, contractive):
hidden layers mirrored in the decoder, tied weights, a corruption of the
training input, a penalty on the code and greedy layer-wise pretraining."""

import math
import warnings
from dataclasses import replace
from numbers import Integral

from ._base import BaseAutoencoder
from ._engine import History, StopReason
from ._losses import BATCH_TOTALS, RECONSTRUCTION_LOSSES, squared_error
from ._progress import INTERRUPTED
from ._validation import SizeInterval, StrOptions, positive_ints
from ._warnings import user_stacklevel
from .nn import AutoencoderModule

__all__ = ["BaseMLPAutoencoder"]


def penalty_weight(weight, module):
    """A penalty's ``weight`` in the training loss's units (the layers': the
    reconstruction is divided by ``module.loss_scale``, and so is the
    penalty, which keeps its weight against it), at most 1e30 (float32 holds
    it; data near float32's smallest numbers)."""
    return min(weight / module.loss_scale, 1e30)


class BaseMLPAutoencoder(BaseAutoencoder):
    """The MLP family: hidden layers mirrored in the decoder, tied weights, a
    corruption of the training input, a penalty on the code and greedy
    layer-wise pretraining. Not for direct use.

    A member overrides ``_corrupt``, ``_penalty`` or ``_code_activation``.
    """

    _parameter_constraints: dict = {
        **BaseAutoencoder._parameter_constraints,
        "hidden_layer_sizes": ["array-like", SizeInterval(Integral, 1, None, closed="left")],
        "tied_weights": ["boolean"],
        "pretraining": [StrOptions({"greedy"}), None],
    }

    #: Activation of the code layer; members with a bounded or non-negative
    #: code override it.
    _code_activation = "identity"

    def _corrupt(self, x, generator, units=1.0):
        """The training input made from a clean batch (identity here);
        ``units``: the size in ``x``'s units of one of X's (``1 / input_scale``
        for an inner layer pair, whose rows are hidden activations in the
        layers' units), by which a noise level in X's units is multiplied."""
        return x

    def _penalty(self, module, x, code):
        """A regulariser on the code of a clean batch (the non-linear path's,
        beside a linear path), added to the mean loss; None for none (not 0:
        adding it would cost an operation in every step and its backward)."""
        return None

    def _check_data(self, X):
        super()._check_data(X)
        positive_ints(self.hidden_layer_sizes, "hidden_layer_sizes")

    def _build_module(self, n_features):
        return AutoencoderModule(
            n_features,
            self.n_components,
            positive_ints(self.hidden_layer_sizes, "hidden_layer_sizes"),
            self.activation,
            output_activation=RECONSTRUCTION_LOSSES[self.loss][1],
            code_activation=self._code_activation,
            tied_weights=self.tied_weights,
            linear_path=self.init == "pca",
        )

    def _training_loss(
        self, module, generator, *, reconstruction=None, penalize=True, noise_units=1.0
    ):
        """``batch_loss(x) -> 0-d tensor`` for the engine: the reconstruction of
        the clean batch from its corruption, plus the penalty.

        ``reconstruction`` replaces the loss chosen by ``loss`` (greedy
        pretraining of inner layers reconstructs hidden activations with squared
        error); ``penalize=False`` leaves out :meth:`_penalty`; ``noise_units``
        as :meth:`_corrupt`'s ``units``.
        """
        reconstruction = reconstruction or RECONSTRUCTION_LOSSES[self.loss][0]
        total, scale = BATCH_TOTALS[reconstruction], module.loss_scale  # the engine's factor
        folded = self._fold_input_scale and module.folded_loss(reconstruction)

        def batch_loss(x):
            # the penalty sees the non-linear path's code (the whole code
            # without a linear path)
            if folded:
                loss, nonlinear_code = folded(x, self._corrupt(x, generator, noise_units))
            else:
                corrupted = self._corrupt(x, generator, noise_units)
                code, nonlinear_code = module.encode_parts(corrupted)
                loss = total(module.output(code), x) / (x.shape[0] * scale)
            penalty = self._penalty(module, x, nonlinear_code) if penalize else None
            return loss if penalty is None else loss + penalty

        return batch_loss

    def _train_module(self, module, X, setup, *, optimizer, fresh, incremental):
        """Greedy pretraining first when asked (a fit from scratch), then the
        end-to-end training; the pretraining epochs lead the loss curve."""
        if not fresh:
            return super()._train_module(
                module, X, setup, optimizer=optimizer, fresh=fresh, incremental=incremental
            )
        curves, interrupted = [], False
        if self.pretraining == "greedy" and not incremental:
            curves, interrupted = self._pretrain(module, X, setup)
            setup = replace(setup, desc=f"{type(self).__name__} fine-tuning")
        if interrupted:  # Ctrl-C: no fine-tuning; the held-out score as it stands
            score = None if setup.validation_score is None else setup.validation_score()
            history = History(
                loss_curve=[loss for curve in curves for loss in curve],
                best_loss=min(curves[-1], default=math.inf),  # the layer it stopped in
                best_validation_score=-math.inf if score is None else score,
                stop_reason=StopReason.INTERRUPTED,
                start_score=score,
                best_epoch=None if score is None else 0,
            )
            return history, {"pretraining_loss_curves_": curves}
        setup = replace(setup, previous_epochs=setup.previous_epochs + sum(map(len, curves)))
        history, attributes = super()._train_module(
            module, X, setup, optimizer=optimizer, fresh=fresh, incremental=incremental
        )
        history.loss_curve[:0] = [loss for curve in curves for loss in curve]
        return history, {**attributes, "pretraining_loss_curves_": curves}

    def _pretrain(self, module, X, setup):
        """Train each layer pair of ``module`` as a shallow autoencoder on the
        codes of the layer below (with no held-out score: ``setup``'s is the
        whole network's); returns one loss curve per layer, and whether
        Ctrl-C stopped it."""
        pairs = module.layer_pairs()
        curves = []
        for depth, pair in enumerate(pairs):
            batch_loss = self._training_loss(
                pair,
                setup.loss_generator,
                reconstruction=None if depth == 0 else squared_error,
                penalize=depth == len(pairs) - 1,
                # the inner pairs' rows are hidden activations, in the layers' units
                noise_units=1.0 if depth == 0 else 1.0 / float(module.input_scale),
            )
            optimizer = self._new_optimizer(pair, setup.device, setup.learning_rate)
            layer_setup = replace(
                setup,
                validation_score=None,
                scheduler=self._new_scheduler(optimizer, self.max_iter),
                previous_epochs=setup.previous_epochs + sum(map(len, curves)),
                desc=f"{type(self).__name__} pretraining layer {depth + 1}/{len(pairs)}",
            )
            history = self._train(
                pair, batch_loss, X, layer_setup, optimizer=optimizer, max_iter=self.max_iter
            )
            curves.append(history.loss_curve)
            if history.stop_reason is StopReason.INTERRUPTED:
                return curves, True
            # the next layer learns to reconstruct this layer's codes
            try:
                X = self._map_rows(pair, lambda m, x: m.encode(x), X).to(setup.device)
            except KeyboardInterrupt:  # Ctrl-C between layers: the layers done stay
                warnings.warn(INTERRUPTED, stacklevel=user_stacklevel())
                return curves, True
        return curves, False
