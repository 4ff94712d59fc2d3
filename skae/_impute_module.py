"""The torch module of :class:`skae.AutoencoderImputer`: a mask-aware
denoising autoencoder. Pure torch, no scikit-learn.

A row goes in with NaN where values are missing. The module standardises it
per column (the training rows' observed means and standard deviations, held
as buffers), fills the missing entries with 0 (the mean) and hands the
network the filled row next to its mask of observed entries, so that a
missing value and an observed mean are told apart. The network's output is
mapped back to the data's units.
"""

import warnings

import torch
from torch import nn

from ._warnings import user_stacklevel
from .nn import mlp


class MaskedImputerModule(nn.Module):
    """``2 * n_features -> hidden_layer_sizes -> n_features``: the
    standardised, mean-filled row and its observed mask in, the whole row
    (standardised) out.

    Parameters
    ----------
    n_features : int
        Width of the rows.
    hidden_layer_sizes : tuple of int
        Widths of the hidden layers.
    activation : str
        A name of :data:`skae.nn.ACTIVATIONS`, between the layers.
    variance : bool, default=False
        Add a head that reads the last hidden layer and gives the log
        variance of each restored entry (:meth:`restore_with_variance`).
    """

    #: the base's input-scale step does not apply: the module holds per-column
    #: statistics instead (:meth:`set_statistics`)
    learns_input_scale = False

    def __init__(self, n_features, hidden_layer_sizes, activation, variance=False):
        super().__init__()
        self.register_buffer("center", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))
        self.net = mlp([2 * n_features, *hidden_layer_sizes, n_features], activation)
        # the head reads the last hidden layer (the input, without one)
        width = hidden_layer_sizes[-1] if hidden_layer_sizes else 2 * n_features
        self.log_variance = nn.Linear(width, n_features) if variance else None

    def hidden_layers(self):
        """The linear layers before the output layer (what "auto" rates read)."""
        return [layer for layer in self.net if isinstance(layer, nn.Linear)][:-1]

    def set_statistics(self, center, scale):
        """Per-column means and standard deviations (tensors of shape
        ``(n_features,)``) of the training rows' observed values."""
        self.center.copy_(center)
        self.scale.copy_(scale)

    @torch.no_grad()
    def ignore_columns(self, columns):
        """Start blind to ``columns`` (a boolean tensor of shape
        ``(n_features,)``): the weights that read them and their masks, and
        those that restore them, at zero. A column no training row observes
        gives them no gradient, so they stay there: a value of it at
        ``transform`` changes nothing (in its raw units it had swung the
        other columns' fills far outside their range)."""
        first, last, inputs = self.net[0], self.net[-1], torch.cat([columns, columns])
        first.weight[:, inputs] = 0.0
        last.weight[columns] = 0.0
        last.bias[columns] = 0.0
        if self.log_variance is not None and len(self.net) == 1:  # it reads the input
            self.log_variance.weight[:, inputs] = 0.0

    def standardize(self, x):
        """``(z, observed)``: ``x`` in the layers' units with its missing
        (NaN) entries at 0, and the boolean mask of its observed entries."""
        observed = ~torch.isnan(x)
        z = (x - self.center) / self.scale  # a constant column's scale is 0: z at 0
        return torch.where(observed & (self.scale > 0), z, torch.zeros_like(z)), observed

    def restore(self, z, observed):
        """The network's standardised row from a filled row and its mask."""
        return self.net(torch.cat([z, observed.to(z.dtype)], dim=1))

    def restore_with_variance(self, z, observed):
        """``(restored, log_variance)``: the standardised row, as
        :meth:`restore`, and the log variance of each of its entries, read
        from the last hidden layer with its gradient stopped (the variance
        head learns beside the network and does not change it)."""
        *layers, last = self.net  # no new Sequential per training step
        hidden = torch.cat([z, observed.to(z.dtype)], dim=1)
        for layer in layers:
            hidden = layer(hidden)
        return last(hidden), self.log_variance(hidden.detach())

    def forward(self, x):
        """Every entry of ``x`` (NaN where missing) as the network restores
        it, in the data's units."""
        z, observed = self.standardize(x)
        return self.restore(z, observed) * self.scale + self.center

    def _passes(self, x, groups):
        """The inputs of the passes over ``x``: pass ``k`` hides, beside the
        missing entries, the observed entries of the columns whose
        ``groups`` is ``k``; yields ``(filled row, its mask)`` pairs."""
        z, observed = self.standardize(x)
        for k in range(max(int(groups.max()) + 1, 1)):  # groups of -1: one plain pass
            seen = observed & (groups != k)
            yield torch.where(seen, z, torch.zeros_like(z)), seen

    def averaged(self, x, groups):
        """Every entry of ``x`` restored as the mean of one pass per column
        group: pass ``k`` also hides the observed entries of the columns
        whose ``groups`` (an integer tensor of shape ``(n_features,)``) is
        ``k``, as training hides a share of them. In the data's units."""
        restored = [self.restore(z, seen) for z, seen in self._passes(x, groups)]
        return torch.stack(restored).mean(0) * self.scale + self.center

    def averaged_with_std(self, x, groups):
        """``(mean, std)`` of every entry of ``x``: the mean as
        :meth:`averaged`, the standard deviation from the variance head
        (the mean over the passes of its variance). In the data's units."""
        passes = [self.restore_with_variance(z, seen) for z, seen in self._passes(x, groups)]
        mean = torch.stack([restored for restored, _ in passes]).mean(0)
        variance = torch.stack([log_variance.exp() for _, log_variance in passes]).mean(0)
        return mean * self.scale + self.center, variance.sqrt() * self.scale


def masked_errors(module, z, observed, draw, *, hide_fraction, observed_weight, per_row=False):
    """Hide the observed entries of ``z`` (standardised rows, 0 where missing)
    whose ``draw`` falls below ``hide_fraction``, restore the rows with
    ``module`` and score the squared errors: the training loss (the hidden
    entries' mean error plus ``observed_weight`` times the seen ones', and
    with a variance head the Gaussian likelihood of the hidden errors), or
    (``per_row``) each row's sum of errors on the hidden entries over the
    number expected."""
    hidden = observed & (draw < hide_fraction)
    seen = observed & ~hidden
    filled = torch.where(seen, z, torch.zeros_like(z))
    if module.log_variance is None or per_row:
        restored, log_variance = module.restore(filled, seen), None
    else:
        restored, log_variance = module.restore_with_variance(filled, seen)
    errors = (restored - z).square()
    if per_row:
        return (errors * hidden).sum(1) / (hide_fraction * z.shape[1])
    n_hidden = hidden.sum().clamp(min=1)
    hidden_error = (errors * hidden).sum() / n_hidden
    seen_error = (errors * seen).sum() / seen.sum().clamp(min=1)
    loss = hidden_error + observed_weight * seen_error
    if log_variance is not None:  # the Gaussian NLL of the hidden errors, stopped
        nll = log_variance + errors.detach() * torch.exp(-log_variance)
        # where, not a product: 0 * inf (exp of a very negative log-variance
        # on a seen entry) is NaN, which would reach the head's gradient
        nll = torch.where(hidden.bool(), nll, torch.zeros_like(nll))
        loss = loss + 0.5 * nll.sum() / n_hidden
    return loss


#: Rows (at most) that :func:`calibrate_variance` reads, the share of their
#: observed entries it hides (few: the rows ``transform`` fills have only their
#: own holes), its hiding patterns (4 per ``CALIBRATION_ROWS`` rows' worth, at
#: most ``CALIBRATION_MAX_PATTERNS``), the fewest hidden entries it acts on,
#: and its shrinkage: each column's factor counts this many entries at the mean.
CALIBRATION_ROWS, CALIBRATION_HIDDEN = 4096, 0.05
CALIBRATION_PATTERNS, CALIBRATION_MAX_PATTERNS = 4, 32
CALIBRATION_MIN_ENTRIES, CALIBRATION_PRIOR = 200, 10


@torch.no_grad()
def calibrate_variance(module, rows, groups, generator):
    """Rescale the variance head so that its deviations match the errors of
    the fills ``transform`` makes (the mean of its passes over ``groups``)
    on observed entries of ``rows`` (a row source) hidden at random: each
    column's variances times the sum of its squared errors over the sum of
    its variances, shrunk towards all columns' (``CALIBRATION_PRIOR``). The
    head learns beside the network, at its rate, and stops with it:
    uncalibrated, the draws of a column its neighbours determine had spread
    ten times wider than its fills erred. Rows too few to hide
    ``CALIBRATION_MIN_ENTRIES`` entries (a small ``partial_fit`` chunk) leave
    the head as it is. ``generator`` must be the same on every
    data-parallel rank, so that their heads stay equal."""
    device = module.center.device
    x = rows.take(slice(0, CALIBRATION_ROWS)).to(device)
    observed = ~torch.isnan(x) & (module.scale > 0)  # not the constant columns
    per_rows = -(-CALIBRATION_ROWS // max(len(x), 1))
    n_patterns = min(CALIBRATION_MAX_PATTERNS, CALIBRATION_PATTERNS * per_rows)
    if n_patterns * CALIBRATION_HIDDEN * observed.sum() < CALIBRATION_MIN_ENTRIES:
        return
    errors = torch.zeros(x.shape[1], dtype=torch.float64, device=device)
    variances, count = torch.zeros_like(errors), torch.zeros_like(errors)
    zero = torch.zeros_like(x, dtype=torch.float64)
    for _ in range(n_patterns):
        draw = torch.rand(x.shape, generator=generator, device=device)
        hidden = observed & (draw < CALIBRATION_HIDDEN)
        mean, std = module.averaged_with_std(torch.where(hidden, torch.nan, x), groups)
        errors += torch.where(hidden, (mean - x).double().square(), zero).sum(0)
        variances += torch.where(hidden, std.double().square(), zero).sum(0)
        count += hidden.sum(0)
    if count.sum() == 0:
        return
    overall = errors.sum() / variances.sum()
    prior = CALIBRATION_PRIOR * variances / count.clamp(min=1)
    factor = torch.where(count > 0, (errors + overall * prior) / (variances + prior), overall)
    module.log_variance.bias += factor.log().to(module.log_variance.bias.dtype)


#: Training rows (at most) that :func:`warn_if_no_better_than_means` reads, and
#: the share of the column means' error a fit must beat: an untrained network
#: fills within a few % of them either way (0.98-1.01 over seeds)
MEAN_FILL_ROWS, MEAN_FILL_MARGIN = 2048, 0.98


@torch.no_grad()
def mean_fill_ratio(module, rows, hide_fraction, device):
    """The squared error of ``module``'s fills of entries hidden from its
    training ``rows`` (a row source; the first ``MEAN_FILL_ROWS``, a fixed
    ``hide_fraction`` of their observed entries) over that of their column
    means (0 in standard deviations); None when nothing is hidden."""
    x = rows.take(slice(0, min(len(rows), MEAN_FILL_ROWS))).to(device)
    z, observed = module.standardize(x)
    generator = torch.Generator(device=z.device).manual_seed(0)
    hidden = observed & (torch.rand(z.shape, generator=generator, device=z.device) < hide_fraction)
    seen = observed & ~hidden
    restored = module.restore(torch.where(seen, z, torch.zeros_like(z)), seen)
    error = float(((restored - z).square() * hidden).sum())
    mean_fill = float((z.square() * hidden).sum())
    return error / mean_fill if mean_fill > 0 else None


@torch.no_grad()
def keep_means_unless_beaten(module, setup, history, rows, hide_fraction):
    """Keep the column means, with a warning, where the trained ``module``
    fills worse than they do: on the held-out rows (``setup``'s
    ``validation_score`` on its ``device``, ``history``'s best being the
    network's; the output layer at zero restores every entry to its mean; a
    tie, as when nothing could be hidden there, keeps the network), or on
    entries hidden from its training ``rows`` (:func:`mean_fill_ratio` above
    1); ``history``'s best score becomes the means'. A fit that beats the
    means by less than ``MEAN_FILL_MARGIN`` warns. So transform is never
    worse than the training rows' means where either judged: on columns
    that do not predict one another a network had filled worse. Not judged:
    one column, which has no other to fill from (the warning had sent users
    tuning). Returns whether the means were kept."""
    if rows.n_features < 2:
        return False
    validation_score = setup.validation_score
    ratio = mean_fill_ratio(module, rows, hide_fraction, setup.device)
    last, best = module.net[-1], history.best_validation_score
    weight, bias = last.weight.clone(), last.bias.clone()
    last.weight.zero_()
    last.bias.zero_()
    means = validation_score() if validation_score is not None and best is not None else None
    if means is not None and best < means:
        how = f"the held-out rows (score {best:.7g} against the means' {means:.7g})"
    elif ratio is not None and ratio > 1:
        how = f"its training rows (squared error {ratio:.3g} times the means')"
    else:
        last.weight.copy_(weight)
        last.bias.copy_(bias)
        if ratio is not None and ratio >= MEAN_FILL_MARGIN:
            _warn_of_means(
                f"no better than their column means (squared error {ratio:.3g} "
                f"times the means'; under {MEAN_FILL_MARGIN:g} counts as better)"
            )
        return False
    if means is not None:  # the kept model's score, as for any kept weights
        history.best_validation_score = means
    _warn_of_means(
        f"worse than their column means on {how}; the fit keeps the means "
        "(statistics_): every missing entry is filled with its column's mean (drawn "
        "around it with sample_posterior=True)"
    )
    return True


def _warn_of_means(what):
    warnings.warn(
        f"AutoencoderImputer: the fitted network fills hidden entries {what}. Causes seen: "
        "columns that do not predict one another (the means are then the best fill), a "
        "learning rate too small or too large, too few epochs, or a network too narrow.",
        UserWarning,
        stacklevel=user_stacklevel(),
    )
