"""Pure torch modules: integers in, tensors through ``forward``.

Nothing here knows scikit-learn. Every autoencoder module exposes the same three
entry points, which the estimators and the training losses rely on:

- ``encode(x)`` -> the code (for the variational module, the posterior mean);
- ``decode(z)`` -> the reconstruction in data space (output activation applied);
- ``forward(x)`` -> the decoder's pre-activation output (the loss takes logits,
  which keeps binary cross-entropy numerically stable); ``output(z)`` gives
  the same from a code.

All three work in the data's units; the layers see the data divided by the
module's ``input_scale`` (see :class:`EncoderDecoder`).

A module built with ``linear_path=True`` adds a linear map beside its
non-linear encoder and decoder (:meth:`EncoderDecoder.add_linear_path`):
``code = A u + a * g(u)`` and ``reconstruction = B code + b * h(code)``, where
``g`` and ``h`` are the non-linear paths and the gates ``a`` and ``b`` start at
zero. :meth:`EncoderDecoder.start_at_pca` puts PCA's components in ``A`` and
``B``, so that the untrained module *is* PCA: the same codes and the same
reconstructions.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._activations import has_written_derivative
from ._losses import (
    BATCH_TOTALS,
    jacobian_norm,
    one_hidden_layer_jacobian_norm,
    sigmoid_jacobian_norm,
    squared_error,
)

ACTIVATIONS = {
    "identity": nn.Identity,
    "logistic": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "softplus": nn.Softplus,
}


def make_activation(name):
    """Return a fresh activation module from its scikit-learn-style name."""
    return ACTIVATIONS[name]()


def mlp(sizes, activation, *, last_activation="identity"):
    """Linear layers through ``sizes``, ``activation`` between them and
    ``last_activation`` after the last; ``sizes`` of length one gives the
    identity map."""
    layers = []
    n_layers = len(sizes) - 1
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(n_in, n_out))
        name = activation if i < n_layers - 1 else last_activation
        if name != "identity":
            layers.append(make_activation(name))
    return nn.Sequential(*layers)


class TiedLinear(nn.Module):
    """A linear map whose weight is the transpose of another ``nn.Linear``'s.

    The weight is the same ``Parameter`` object (shared storage); only the bias
    is this layer's own.
    """

    def __init__(self, linear):
        super().__init__()
        self.weight = linear.weight
        self.bias = nn.Parameter(torch.zeros(linear.in_features))

    def forward(self, x):
        return F.linear(x, self.weight.t(), self.bias)


def _linear_layers(sequential):
    return [m for m in sequential if isinstance(m, (nn.Linear, TiedLinear))]


class EncoderDecoder(nn.Module):
    """The entry points over ``encoder``, ``decoder`` and ``output_activation``
    submodules, which subclasses set, and the scale of the data.

    The layers see the data divided by the buffer ``input_scale`` and the
    decoder's output is multiplied back by it, so that data of any magnitude
    (pixels in 0-255, TF-IDF values near 0.02) reaches the first layer at unit
    scale, while :meth:`encode`, :meth:`output`, :meth:`decode` and
    :meth:`forward` take and give data in its own units. One number for all
    features keeps their relative weights, as PCA does. It is 1 until
    :meth:`set_input_scale` and is saved and exported with the weights.
    """

    def __init__(self, input_scale=None):
        super().__init__()
        self.register_buffer("input_scale", torch.ones(()) if input_scale is None else input_scale)
        # the linear path, when add_linear_path builds one
        self.linear_encoder = self.linear_decoder = None
        self.encoder_gate = self.decoder_gate = None
        self.register_buffer("code_scale", None)

    def add_linear_path(self, n_features, n_components, *, tied=False, code_scale=True):
        """Add a linear encoder and decoder beside the non-linear paths, and the
        scalar gates (starting at zero) through which those paths add to it.

        ``tied``: the linear decoder uses the transposed weight of the linear
        encoder. ``code_scale``: codes are multiplied by the buffer
        ``code_scale`` on the way out of :meth:`encode` and divided by it on
        the way into :meth:`output`, so that :meth:`start_at_pca` gives PCA's
        codes in the data's units (the variational module keeps its codes in
        the prior's units and passes False).
        """
        self.linear_encoder = nn.Linear(n_features, n_components)
        if tied:
            self.linear_decoder = TiedLinear(self.linear_encoder)
        else:
            self.linear_decoder = nn.Linear(n_components, n_features)
        self.encoder_gate = nn.Parameter(torch.zeros(()))
        self.decoder_gate = nn.Parameter(torch.zeros(()))
        if code_scale:
            self.code_scale = torch.ones(())
        return self

    @property
    def has_linear_path(self):
        return self.linear_encoder is not None

    def linear_path_parameters(self):
        """The linear path's parameters, each once (tied weights share the
        encoder's); none without a linear path."""
        if self.linear_encoder is None:
            return []
        paths = (self.linear_encoder, self.linear_decoder)
        return list({id(p): p for path in paths for p in path.parameters()}.values())

    def start_at_pca(self, mean, components, residual_variance=None):
        """Become PCA: the linear path holds ``components`` (``(r, n_features)``,
        orthonormal rows, ``r <= n_components``; code units beyond ``r`` start
        at zero) around ``mean``, both in the data's units, and the gates of
        the non-linear paths are closed (zero). ``residual_variance`` (PCA's
        mean squared error per value) is for modules with a noise model."""
        if not self.has_linear_path:
            raise ValueError("start_at_pca needs a module built with a linear path.")
        encoder = self.linear_encoder
        scale = float(self.input_scale)
        weight = torch.zeros_like(encoder.weight)
        components = torch.as_tensor(components, dtype=weight.dtype, device=weight.device)
        weight[: components.shape[0]] = components
        mean = torch.as_tensor(mean, dtype=weight.dtype, device=weight.device) / scale
        with torch.no_grad():
            encoder.weight.copy_(weight)
            encoder.bias.copy_(-(weight @ mean))
            if isinstance(self.linear_decoder, nn.Linear):
                self.linear_decoder.weight.copy_(weight.t())
            self.linear_decoder.bias.copy_(mean)
            self.encoder_gate.zero_()
            self.decoder_gate.zero_()
            if self.code_scale is not None:
                self.code_scale.fill_(scale)
        return self

    @property
    def learns_input_scale(self):
        """Whether training should set :attr:`input_scale`: only for an
        unbounded output; a logistic one (bce, bernoulli) needs the data as
        it is."""
        return isinstance(self.output_activation, nn.Identity)

    @property
    def loss_scale(self):
        """What the training loss (in the layers' units: :class:`FoldedLoss`)
        is multiplied by to be reported in X's units: a squared error in X's
        units is ``input_scale**2`` times the same error in the layers'."""
        return float(self.input_scale) ** 2

    def set_input_scale(self, value):
        """Use ``value`` (a positive number) as :attr:`input_scale`."""
        with torch.no_grad():
            self.input_scale.fill_(float(value))
        return self

    def scaled(self, x):
        """Rows in the units the layers work in."""
        return x / self.input_scale

    def nonlinear_embed(self, u):
        """The non-linear path's code of rows in the layers' units."""
        return self.encoder(u)

    def linear_plus_gated(self, u, code):
        """``code`` (the non-linear path's) added through the gate to the
        linear path's code of ``u``; ``code`` itself without a linear path."""
        if self.linear_encoder is None:
            return code
        return self.linear_encoder(u) + self.encoder_gate * code

    def embed(self, u):
        """The code of rows already in the layers' units (:meth:`scaled`)."""
        return self.linear_plus_gated(u, self.nonlinear_embed(u))

    def encode(self, x):
        return self.unscaled_code(self.embed(self.scaled(x)))

    def encode_parts(self, x):
        """``(code, nonlinear_code)``: :meth:`encode`'s code and the non-linear
        path's own code (the same tensor without a linear path), which the
        penalties of the sparse and contractive models act on."""
        code, nonlinear = self.embed_parts(self.scaled(x))
        return self.unscaled_code(code), nonlinear

    def embed_parts(self, u):
        """:meth:`encode_parts` of rows already in the layers' units, with the
        code in theirs (:meth:`embed`)."""
        nonlinear = self.nonlinear_embed(u)
        return self.linear_plus_gated(u, nonlinear), nonlinear

    def folded_squared_error(self, x, weight=1.0):
        """Per-row squared error of the reconstruction of ``x``, in the data's
        units, times ``weight``: computed in the layers' units as
        :class:`FoldedLoss` computes it (``s^2 |u - D(E(u))|^2`` with ``u = x /
        s``), three operations fewer than through :meth:`forward`. The scale
        stays a tensor: reading it as a number would wait on the device every
        block."""
        scale = self.input_scale
        u = x / scale
        error = F.mse_loss(self.decode_layers(self.embed(u)), u, reduction="none").sum(dim=1)
        # in float64: a float32 scale squared overflows above ~1e19 and
        # underflows to 0 below ~1e-19 (early stopping then saw only zeros)
        return error.double() * (weight * scale.double()) * scale.double()

    def folded_loss(self, reconstruction):
        """A batch loss of ``reconstruction`` (a per-sample loss of
        :mod:`skae._losses`) with the scales folded out of the training step
        (:class:`FoldedLoss`), or None when it would not be the same loss: the
        loss must be homogeneous (``loss(s a, s b) = s^2 loss(a, b)``, as
        squared error is) unless :attr:`input_scale` is 1."""
        scale = float(self.input_scale)
        if scale != 1.0 and reconstruction is not squared_error:
            return None
        return FoldedLoss(self, BATCH_TOTALS[reconstruction], scale)

    def unscaled_code(self, code):
        return code if self.code_scale is None else code * self.code_scale

    def decode_layers(self, v):
        """The decoder's output in the layers' units from a code in theirs."""
        out = self.decoder(v)
        if self.linear_decoder is None:
            return out
        return self.linear_decoder(v) + self.decoder_gate * out

    def output(self, z):
        """The decoder's pre-activation output (the loss takes logits), in the
        data's units."""
        if self.code_scale is not None:
            z = z / self.code_scale
        return self.decode_layers(z) * self.input_scale

    def decode(self, z):
        return self.output_activation(self.output(z))

    def forward(self, x):
        return self.output(self.encode(x))

    def encoder_jacobian_norm(self, x, code=None):
        """Per-sample squared Frobenius norm of the Jacobian of the non-linear
        path (:meth:`nonlinear_embed`; the whole encoder without a linear path) at
        the rows of ``x``, with respect to the layers' input ``x /
        input_scale`` (so that it measures the network itself, whatever the
        units of the data; a penalty on it still weighs against a
        reconstruction loss in X's units): the closed form of Rifai et al.
        (2011) for a single logistic layer (from ``code``, when given, the
        codes of ``x``), :func:`~skae._losses.one_hidden_layer_jacobian_norm`
        for linear, activation, linear, activation, exact autodiff otherwise.
        Differentiable with respect to the parameters."""
        layers = list(self.encoder)
        if (
            len(layers) == 2
            and isinstance(layers[0], nn.Linear)
            and isinstance(layers[1], nn.Sigmoid)
        ):
            code = self.nonlinear_embed(self.scaled(x)) if code is None else code
            return sigmoid_jacobian_norm(code, layers[0].weight)
        if (one_hidden := _one_hidden_layer(layers)) is not None:
            return one_hidden_layer_jacobian_norm(self.scaled(x), *one_hidden)
        return jacobian_norm(self.nonlinear_embed, self.scaled(x))


def _one_hidden_layer(layers):
    """``(first, activation, second, code_activation)`` when ``layers`` are
    linear, elementwise activation (or none), linear, elementwise activation
    (or none): the encoders whose Jacobian norm has a closed form; else None."""
    parts, rest = [], list(layers)
    for _ in range(2):
        if not rest or type(rest[0]) is not nn.Linear:
            return None
        linear = rest.pop(0)
        activation = rest.pop(0) if rest and has_written_derivative(rest[0]) else None
        parts += [linear, activation]
    return None if rest else tuple(parts)


#: Below this input scale a corrupted batch is scored in X's units: absolute
#: noise (the denoising model's ``noise_level``) on data that small would square
#: past float32 in the layers' units.
UNFOLDED_NOISE_SCALE = 1e-10


class FoldedLoss:
    """``loss(x, x_in=None) -> (mean loss, nonlinear_code)``: the mean over the
    batch of ``total(module.output(code of x_in), x)`` in the layers' units
    (divided by ``s^2``, the module's :attr:`~EncoderDecoder.loss_scale`) and
    the non-linear path's code. The optimiser steps on this loss, whose
    gradients have the same size at every data scale (as SGD's rate, weight
    decay and Adam's epsilon assume); the engine reports it times ``s^2``.

    With ``u = x / s``, the reconstruction in the data's units is
    ``s D(E(u))`` (the code scale multiplied on the way out of the encoder is
    divided on the way in to the decoder), so ``total(s D(E(u)), x) = s^2
    total(D(E(u)), u)`` for a homogeneous total: the step runs neither the code
    scale's operations nor the output's product with ``s``. A corruption
    ``x_in`` of ``x`` (in the data's units) is folded alike, but for ``s``
    below :data:`UNFOLDED_NOISE_SCALE`, where the step runs in the data's
    units and is then divided by ``s^2``: noise far larger than ``s``
    (absolute noise on tiny data) would overflow the square in the layers'.
    """

    def __init__(self, module, total, scale):
        self.module, self.total = module, total
        self.scale = None if scale == 1.0 else scale

    def __call__(self, x, x_in=None):
        module, scale = self.module, self.scale
        corrupted = x_in is not None and x_in is not x
        if scale is not None and corrupted and scale < UNFOLDED_NOISE_SCALE:
            # in double: the squares of differences this small fall below
            # float32's normal numbers, and their gradients times 1 / s^2 past
            # its largest; a loss past 1e30 (noise far larger than s) is held
            # there (no step), so that the epoch's float32 sum stays finite
            code, nonlinear = module.encode_parts(x_in)
            loss = self.total(module.output(code).double(), x.double())
            loss = loss / (scale * scale * x.shape[0])
            return loss.clamp(max=1e30).to(x.dtype), nonlinear
        u = x if scale is None else x / scale
        u_in = x_in if not corrupted or scale is None else x_in / scale
        code, nonlinear = module.embed_parts(u_in if corrupted else u)
        return self.total(module.decode_layers(code), u) / x.shape[0], nonlinear


class Shallow(EncoderDecoder):
    """One layer pair of a deeper autoencoder seen as a shallow autoencoder,
    for greedy layer-wise pretraining. It shares the parameters of the layers
    it wraps, so training it trains them in place; the outermost pair shares
    the module's ``input_scale``, inner pairs (on hidden activations) have 1."""

    def __init__(self, encoder, decoder, output_activation, input_scale):
        super().__init__(input_scale)
        self.encoder = encoder
        self.decoder = decoder
        self.output_activation = output_activation


class AutoencoderModule(EncoderDecoder):
    """MLP encoder ``n_features -> hidden -> n_components`` and its mirror.

    Hidden layers use ``activation``; the code layer uses ``code_activation``
    (linear by default, as in Hinton & Salakhutdinov 2006); the decoder's output
    goes through ``output_activation`` only in :meth:`decode`. With
    ``tied_weights`` each decoder layer uses the transposed weight of its mirror
    in the encoder (and the linear path's decoder that of its encoder). With
    ``linear_path`` the MLPs are the non-linear paths beside a linear one (see
    the module docstring).
    """

    def __init__(
        self,
        n_features,
        n_components,
        hidden_layer_sizes=(),
        activation="relu",
        output_activation="identity",
        code_activation="identity",
        tied_weights=False,
        linear_path=False,
    ):
        super().__init__()
        hidden = list(hidden_layer_sizes)
        self.encoder = mlp(
            [n_features, *hidden, n_components], activation, last_activation=code_activation
        )
        if tied_weights:
            layers = []
            for i, linear in enumerate(reversed(_linear_layers(self.encoder))):
                layers.append(TiedLinear(linear))
                if i < len(hidden) and activation != "identity":
                    layers.append(make_activation(activation))
            self.decoder = nn.Sequential(*layers)
        else:
            self.decoder = mlp([n_components, *hidden[::-1], n_features], activation)
        self.output_activation = make_activation(output_activation)
        if linear_path:
            self.add_linear_path(n_features, n_components, tied=tied_weights)

    def layer_pairs(self):
        """The shallow autoencoders of greedy layer-wise pretraining, from the
        input inwards: pair ``l`` encodes the activations of layer ``l - 1``
        (the input for ``l = 0``) and decodes them back. The outermost pair keeps
        this module's output activation; an inner pair's decoder ends with the
        hidden activation, so that its loss (on ``decode_layers``) is on them."""
        encoder_steps = _steps(self.encoder)
        decoder_steps = _steps(self.decoder)[::-1]
        pairs = []
        for depth, (enc, dec) in enumerate(zip(encoder_steps, decoder_steps, strict=True)):
            decoder = dec[0] if depth == 0 else nn.Sequential(*dec)
            output = self.output_activation if depth == 0 else nn.Identity()
            # inner pairs work on hidden activations, at scale 1 (a buffer of
            # the module's dtype and device, which data-parallel training
            # broadcasts like the module's own)
            scale = self.input_scale if depth == 0 else torch.ones_like(self.input_scale)
            pairs.append(Shallow(nn.Sequential(*enc), decoder, output, scale))
        return pairs


def _steps(sequential):
    """Split a Sequential into [linear, its activation(s)...] groups."""
    steps = []
    for module in sequential:
        if isinstance(module, (nn.Linear, TiedLinear)):
            steps.append([module])
        else:
            steps[-1].append(module)
    return steps


#: The posterior log-variance a PCA-started variational module begins with
#: (a standard deviation of 0.14 in the layers' units: small, so that the
#: first samples decode close to PCA's reconstruction).
START_LOG_VARIANCE = -4.0
#: The smallest decoder noise variance a PCA start sets (PCA can reconstruct
#: some data exactly; a variance of zero would make its likelihood infinite).
MIN_NOISE_VARIANCE = 1e-8


class VariationalModule(EncoderDecoder):
    """Gaussian encoder q(z|x) = N(mu(x), diag(exp(log_var(x)))) and a decoder.

    ``encode`` returns the posterior mean, ``encode_distribution`` returns
    ``(mu, log_var)``. The decoder mirrors the encoder's hidden layers. The
    buffer ``noise_variance`` holds the shared variance of a Gaussian decoder
    p(x|z) = N(decode(z), noise_variance * I), set by the training loss (NaN
    until then; a Bernoulli decoder does not use it).
    """

    #: The Gaussian likelihood divides by the batch's own variance (and the
    #: Bernoulli's data is unscaled): its loss is the same at every data scale.
    loss_scale = 1.0

    def __init__(
        self,
        n_features,
        n_components,
        hidden_layer_sizes=(),
        activation="relu",
        output_activation="identity",
        linear_path=False,
    ):
        super().__init__()
        hidden = list(hidden_layer_sizes)
        self.body = mlp([n_features, *hidden], activation, last_activation=activation)
        width = hidden[-1] if hidden else n_features
        self.mean = nn.Linear(width, n_components)
        self.log_var = nn.Linear(width, n_components)
        self.decoder = mlp([n_components, *hidden[::-1], n_features], activation)
        self.output_activation = make_activation(output_activation)
        self.register_buffer("noise_variance", torch.tensor(float("nan")))
        if linear_path:  # codes stay in the prior's units
            self.add_linear_path(n_features, n_components, code_scale=False)

    def linear_path_parameters(self):
        """The linear encoder's parameters alone: the linear decoder of a VAE
        at the full step gave its codes more accuracy than at a shortened one."""
        return [] if self.linear_encoder is None else list(self.linear_encoder.parameters())

    def encode_distribution(self, x):
        u = self.scaled(x)
        h = self.body(u)
        return self.linear_plus_gated(u, self.mean(h)), self.log_var(h)

    def nonlinear_embed(self, u):
        return self.mean(self.body(u))

    def start_at_pca(self, mean, components, residual_variance=None):
        """PCA's posterior mean and decoder (see :meth:`EncoderDecoder.start_at_pca`;
        the codes are PCA's divided by ``input_scale``), a small constant
        posterior variance, ``exp(START_LOG_VARIANCE)``, and the noise variance
        training estimates (at least :meth:`noise_variance_floor`): the error of
        decoded posterior draws, PCA's ``residual_variance`` plus their spread."""
        super().start_at_pca(mean, components)
        with torch.no_grad():
            self.log_var.weight.zero_()
            self.log_var.bias.fill_(START_LOG_VARIANCE)
            if residual_variance is not None:
                r, n = components.shape  # orthonormal rows: r codes' spread, over n values
                spread = float(self.input_scale) ** 2 * math.exp(START_LOG_VARIANCE) * r / n
                largest = torch.finfo(self.noise_variance.dtype).max
                variance = max(float(residual_variance) + spread, self.noise_variance_floor())
                self.noise_variance.fill_(min(variance, largest))
        return self

    def noise_variance_floor(self):
        """The least decoder noise variance: ``MIN_NOISE_VARIANCE`` times the
        square of the input scale (in X's units, as the data's scale is), held
        within the variance's dtype (not 0 at 1e-20, nor inf at 1e30). It
        keeps the likelihood bounded where rows are reconstructed exactly."""
        limits = torch.finfo(self.noise_variance.dtype)
        floor = MIN_NOISE_VARIANCE * float(self.input_scale) ** 2
        return min(max(floor, limits.tiny), limits.max)


class ConvolutionalModule(EncoderDecoder):
    """Convolutional encoder and transposed-convolutional decoder over flat rows.

    Each row of length ``prod(image_shape)`` is viewed as an image of shape
    ``(channels, height, width)`` (2-D convolutions) or ``(channels, length)``
    (1-D). Each conv layer halves the spatial size (stride 2, padding
    ``kernel_size // 2``); dense layers of widths ``hidden_layer_sizes`` (none
    by default: one linear map) take the flattened last feature map to the code.
    The decoder mirrors it with transposed convolutions whose output padding
    restores every intermediate size exactly, so any input size works.
    """

    def __init__(
        self,
        image_shape,
        n_components,
        channels=(16, 32),
        kernel_size=3,
        hidden_layer_sizes=(),
        activation="relu",
        output_activation="identity",
        linear_path=False,
    ):
        super().__init__()
        self.image_shape = tuple(int(s) for s in image_shape)
        spatial = self.image_shape[1:]
        conv = nn.Conv2d if len(spatial) == 2 else nn.Conv1d
        deconv = nn.ConvTranspose2d if len(spatial) == 2 else nn.ConvTranspose1d
        padding = kernel_size // 2
        sizes = [spatial]
        for _ in channels:
            sizes.append(tuple((s + 2 * padding - kernel_size) // 2 + 1 for s in sizes[-1]))
        widths = [self.image_shape[0], *channels]

        encoder = []
        for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
            encoder += [conv(c_in, c_out, kernel_size, stride=2, padding=padding)]
            encoder += [make_activation(activation)]
        self.feature_shape = (widths[-1], *sizes[-1])
        n_flat = widths[-1] * math.prod(sizes[-1])  # plain ints: the module may be built on "meta"
        hidden = list(hidden_layer_sizes)
        dense_in = mlp([n_flat, *hidden, n_components], activation)
        self.encoder = nn.Sequential(*encoder, nn.Flatten(), *dense_in)
        dense_out = mlp(
            [n_components, *hidden[::-1], n_flat], activation, last_activation=activation
        )
        decoder = [*dense_out, nn.Unflatten(1, self.feature_shape)]
        for i in range(len(channels), 0, -1):
            out_size = sizes[i - 1]
            natural = tuple((s - 1) * 2 - 2 * padding + kernel_size for s in sizes[i])
            extra = tuple(o - n for o, n in zip(out_size, natural, strict=True))
            decoder.append(
                deconv(
                    widths[i],
                    widths[i - 1],
                    kernel_size,
                    stride=2,
                    padding=padding,
                    output_padding=extra,
                )
            )
            if i > 1:
                decoder.append(make_activation(activation))
        decoder.append(nn.Flatten())
        self.decoder = nn.Sequential(*decoder)
        self.output_activation = make_activation(output_activation)
        if linear_path:  # from the flattened image, beside the convolutions
            n_features = math.prod(self.image_shape)
            self.add_linear_path(n_features, n_components)

    def nonlinear_embed(self, u):
        return self.encoder(u.reshape(u.shape[0], *self.image_shape))
