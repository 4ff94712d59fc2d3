"""Pure torch modules: integers in, tensors through ``forward``.

Nothing here knows scikit-learn. Every autoencoder module exposes the same three
entry points, which the estimators and the training losses rely on:

- ``encode(x)`` -> the code (for the variational module, the posterior mean);
- ``decode(z)`` -> the reconstruction in data space (output activation applied);
- ``forward(x)`` -> the decoder's pre-activation output (the loss takes logits,
  which keeps binary cross-entropy numerically stable).
"""

import torch
from torch import nn

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


def mlp(sizes, activation, *, activate_last=False):
    """Linear layers through ``sizes`` with ``activation`` between them.

    The last layer is linear unless ``activate_last``; ``sizes`` of length one
    gives the identity map.
    """
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2 or activate_last:
            layers.append(make_activation(activation))
    return nn.Sequential(*layers)


class AutoencoderModule(nn.Module):
    """MLP encoder ``n_features -> hidden -> n_components`` and its mirror.

    The code layer is linear (as in Hinton & Salakhutdinov 2006); hidden layers
    use ``activation``; the decoder's output goes through ``output_activation``
    only in :meth:`decode`.
    """

    def __init__(
        self,
        n_features,
        n_components,
        hidden_layer_sizes=(),
        activation="relu",
        output_activation="identity",
    ):
        super().__init__()
        hidden = list(hidden_layer_sizes)
        self.encoder = mlp([n_features, *hidden, n_components], activation)
        self.decoder = mlp([n_components, *hidden[::-1], n_features], activation)
        self.output_activation = make_activation(output_activation)

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.output_activation(self.decoder(z))

    def forward(self, x):
        return self.decoder(self.encoder(x))


class VariationalModule(nn.Module):
    """Gaussian encoder q(z|x) = N(mu(x), diag(exp(log_var(x)))) and a decoder.

    ``encode`` returns the posterior mean, ``encode_distribution`` returns
    ``(mu, log_var)``. The decoder mirrors the encoder's hidden layers. The
    buffer ``noise_variance`` holds the shared variance of a Gaussian decoder
    p(x|z) = N(decode(z), noise_variance * I), set by the training loss (NaN
    until then; a Bernoulli decoder does not use it).
    """

    def __init__(
        self,
        n_features,
        n_components,
        hidden_layer_sizes=(),
        activation="relu",
        output_activation="identity",
    ):
        super().__init__()
        hidden = list(hidden_layer_sizes)
        self.body = mlp([n_features, *hidden], activation, activate_last=True)
        width = hidden[-1] if hidden else n_features
        self.mean = nn.Linear(width, n_components)
        self.log_var = nn.Linear(width, n_components)
        self.decoder = mlp([n_components, *hidden[::-1], n_features], activation)
        self.output_activation = make_activation(output_activation)
        self.register_buffer("noise_variance", torch.tensor(float("nan")))

    def encode_distribution(self, x):
        h = self.body(x)
        return self.mean(h), self.log_var(h)

    def encode(self, x):
        return self.mean(self.body(x))

    def decode(self, z):
        return self.output_activation(self.decoder(z))

    def forward(self, x):
        return self.decoder(self.encode(x))
