"""Fully connected networks whose infinite-width or small-init limits theory solves exactly.

- :class:`MLP`: a deep fully connected net in the NTK or standard parameterization; its random
  kernels converge to :func:`piami.theory.kernels.nngp_ntk`.
- :class:`DeepLinearNet`: ``y = W_D ... W_1 x``, with the balanced initialization aligned to a
  teacher's singular vectors under which Saxe et al.'s mode equations are exact.
- :class:`TwoLayerNet`: ``f(x) = scale * sum_i a_i phi(w_i . x + b_i)``; ``scale = 1/(gamma0 N)``
  is the mean-field parameterization of Bordelon & Pehlevan, ``scale = 1/N`` that of Abbe et al.

Their training loops run under :func:`piami.models.limit_threads` ``(1)``: on a shared machine,
torch's thread pool costs far more than these tiny matrix products (measured here: 30x per step).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import torch
from torch import nn

from piami.errors import PiamiShapeError, PiamiValueError

__all__ = ["MLP", "DeepLinearNet", "TwoLayerNet", "activation_fn"]


_ACTS = {
    "relu": torch.relu,
    "erf": torch.erf,
    "tanh": torch.tanh,
    "linear": lambda z: z,
}


def activation_fn(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The elementwise activation called ``name`` (relu, erf, tanh, linear)."""
    try:
        return _ACTS[name]
    except (KeyError, TypeError):
        raise PiamiValueError(f"unknown activation {name!r}; valid: {', '.join(_ACTS)}") from None


def _count(name: str, v: object, minimum: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise PiamiValueError(f"{name} must be an integer >= {minimum}, got {v!r}")
    return v


def _randn(shape, generator, dtype, device) -> torch.Tensor:
    return torch.randn(*shape, generator=generator, dtype=dtype).to(device)


class MLP(nn.Module):
    """Deep fully connected network with ``depth`` hidden layers of equal ``width``.

    NTK parameterization (``parameterization="ntk"``, Jacot et al. 2018): parameters ``N(0, 1)``,
    ``h = sigma_w / sqrt(fan_in) W x + sigma_b b``. Standard: ``W ~ N(0, sigma_w^2 / fan_in)``,
    ``b ~ N(0, sigma_b^2)``, ``h = W x + b``. Same function at init; different tangent kernels.

    Args:
        d_in: input size.
        width: hidden width ``n``.
        depth: hidden layers ``L >= 1``.
        d_out: output size.
        activation: relu, erf, tanh or linear.
        sigma_w: weight scale; sigma_b: bias scale.
        parameterization: ``"ntk"`` or ``"standard"``.
        generator: torch generator for the initialization (CPU); dtype, device: as usual.

    Shapes: ``forward(x: (batch, d_in)) -> (batch, d_out)``.
    """

    def __init__(
        self,
        d_in: int,
        width: int,
        depth: int,
        *,
        d_out: int = 1,
        activation: str = "relu",
        sigma_w: float = math.sqrt(2.0),
        sigma_b: float = 0.0,
        parameterization: str = "ntk",
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> None:
        super().__init__()
        dims = [_count("d_in", d_in), *[_count("width", width)] * _count("depth", depth)]
        dims.append(_count("d_out", d_out))
        if parameterization not in ("ntk", "standard"):
            raise PiamiValueError(
                f"parameterization must be 'ntk' or 'standard', got {parameterization!r}"
            )
        if not (sigma_w > 0 and sigma_b >= 0):
            raise PiamiValueError(f"need sigma_w > 0, sigma_b >= 0, got {sigma_w}, {sigma_b}")
        self.act_name, self.act = activation, activation_fn(activation)
        self.sigma_w, self.sigma_b, self.parameterization = sigma_w, sigma_b, parameterization
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in itertools.pairwise(dims):
            w = _randn((fan_out, fan_in), generator, dtype, device)
            b = _randn((fan_out,), generator, dtype, device)
            if parameterization == "standard":
                w, b = w * sigma_w / math.sqrt(fan_in), b * sigma_b
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(b))

    def _layer(self, k: int, h: torch.Tensor) -> torch.Tensor:
        w, b = self.weights[k], self.biases[k]
        if self.parameterization == "ntk":
            return self.sigma_w / math.sqrt(w.shape[1]) * h @ w.T + self.sigma_b * b
        return h @ w.T + b

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Post-activations of the last hidden layer, shape ``(batch, width)``."""
        if x.ndim != 2 or x.shape[1] != self.weights[0].shape[1]:
            raise PiamiShapeError(
                f"x must have shape (batch, {self.weights[0].shape[1]}), got {tuple(x.shape)}"
            )
        h = x
        for k in range(len(self.weights) - 1):
            h = self.act(self._layer(k, h))
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._layer(len(self.weights) - 1, self.features(x))


class DeepLinearNet(nn.Module):
    """``y = W_D ... W_1 x`` with layer sizes ``dims = (d_in, h_1, ..., d_out)``.

    Shapes: ``forward(x: (batch, d_in)) -> (batch, d_out)``; ``product() -> (d_out, d_in)``.
    """

    def __init__(
        self,
        dims: tuple[int, ...],
        *,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str = "cpu",
    ) -> None:
        super().__init__()
        if len(dims) < 3:
            raise PiamiValueError(f"dims needs at least (d_in, hidden, d_out), got {dims!r}")
        dims = tuple(_count("dims entry", int(d) if not isinstance(d, bool) else d) for d in dims)
        self.dims = dims
        self.weights = nn.ParameterList(
            nn.Parameter(torch.zeros(o, i, dtype=dtype, device=device))
            for i, o in itertools.pairwise(dims)
        )

    @property
    def depth(self) -> int:
        """Number of weight layers ``D``."""
        return len(self.weights)

    @torch.no_grad()
    def init_balanced_aligned(
        self, U: torch.Tensor, V: torch.Tensor, u0: float, *, generator: torch.Generator
    ) -> DeepLinearNet:
        """Balanced small initialization aligned with a teacher's modes (Saxe et al. 2014).

        ``W_1 = c R_1 V^T``, ``W_l = c R_l R_(l-1)^T``, ``W_D = c U R_(D-1)^T`` with random
        orthonormal ``R_l`` (hidden width ``x`` modes) and ``c = u0^(1/D)``: the end-to-end map is
        ``u0 U V^T`` and every layer carries each mode with the same strength (``W_l^T W_l`` equal
        to ``W_(l-1) W_(l-1)^T``). Modes then evolve independently under gradient flow.

        Args:
            U: ``(d_out, n_modes)`` orthonormal columns; V: ``(d_in, n_modes)``.
            u0: initial strength of every mode (> 0).
            generator: draws the hidden-space rotations.
        """
        if U.shape[0] != self.dims[-1] or V.shape[0] != self.dims[0] or U.shape[1] != V.shape[1]:
            raise PiamiShapeError(
                f"U must be ({self.dims[-1]}, m) and V ({self.dims[0]}, m), got "
                f"{tuple(U.shape)} and {tuple(V.shape)}"
            )
        m = U.shape[1]
        if min(self.dims[1:-1]) < m:
            raise PiamiValueError(f"hidden widths {self.dims[1:-1]} must be >= n_modes={m}")
        if not u0 > 0:
            raise PiamiValueError(f"u0 must be > 0, got {u0}")
        dt, dev = self.weights[0].dtype, self.weights[0].device
        c = float(u0) ** (1.0 / self.depth)
        rots = []
        for h in self.dims[1:-1]:
            q, _ = torch.linalg.qr(torch.randn(h, m, generator=generator, dtype=torch.float64))
            rots.append(q.to(dtype=dt, device=dev))
        U, V = U.to(dtype=dt, device=dev), V.to(dtype=dt, device=dev)
        left = [*rots, U]
        right = [V, *rots]
        for w, lo, ri in zip(self.weights, left, right, strict=True):
            w.copy_(c * lo @ ri.T)
        return self

    def product(self) -> torch.Tensor:
        """The end-to-end map ``W_D ... W_1``."""
        p = self.weights[0]
        for w in self.weights[1:]:
            p = w @ p
        return p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for w in self.weights:
            x = x @ w.T
        return x

    @torch.no_grad()
    def gd_step(self, sigma_yx: torch.Tensor, sigma_xx: torch.Tensor, lr: float) -> None:
        """One full-batch gradient step on ``1/2 mean ||y - W x||^2`` from the data's moments.

        The gradient of layer ``l`` is
        ``-(W_D..W_(l+1))^T (Sigma_yx - W Sigma_xx) (W_(l-1)..W_1)^T`` (Saxe et al. 2014, eq. 2),
        computed from ``Sigma_yx = Y^T X / n`` ``(d_out, d_in)`` and ``Sigma_xx = X^T X / n``
        ``(d_in, d_in)``; equal to autograd's (tested) at a fraction of its overhead.
        """
        ws = list(self.weights)
        below = [None] * len(ws)  # below[l] = W_(l-1) ... W_1 (None for l = 0)
        acc = None
        for k, w in enumerate(ws):
            below[k] = acc
            acc = w if acc is None else w @ acc
        err = sigma_yx - acc @ sigma_xx
        above = None  # W_D ... W_(l+1)
        grads = [None] * len(ws)
        for k in range(len(ws) - 1, -1, -1):
            g = err if above is None else above.T @ err
            grads[k] = g if below[k] is None else g @ below[k].T
            above = ws[k] if above is None else above @ ws[k]
        for w, g in zip(ws, grads, strict=True):
            w.add_(g, alpha=lr)


class TwoLayerNet(nn.Module):
    """``f(x) = scale * sum_i a_i phi(w_i . x + b_i)`` with ``w_i ~ N(0, w_std^2 I)``,
    ``a_i ~ N(0, a_std^2)``.

    Args:
        d_in: input size.
        width: number of hidden units ``N``.
        scale: output multiplier (``1/(gamma0 N)``: mean-field DMFT; ``1/N``: Abbe et al.).
        activation: relu, erf, tanh or linear.
        w_std: initial scale of the first-layer weights ``w_i``.
        a_std: initial scale of the second-layer weights ``a_i``.
        bias_std: initial bias scale (0 means no bias parameter).
        symmetric: draw units in pairs ``(a, w, b)`` and ``(-a, w, b)`` so that ``f = 0`` at
            initialization exactly (needs an even width).
        generator: draws the initial weights (None: torch's global generator).
        dtype: parameter dtype.
        device: parameter device.

    Shapes: ``forward(x: (batch, d_in)) -> (batch,)``.
    """

    def __init__(
        self,
        d_in: int,
        width: int,
        *,
        scale: float,
        activation: str = "linear",
        w_std: float = 1.0,
        a_std: float = 1.0,
        bias_std: float = 0.0,
        symmetric: bool = False,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> None:
        super().__init__()
        d_in, width = _count("d_in", d_in), _count("width", width)
        if symmetric and width % 2:
            raise PiamiValueError(f"symmetric initialization needs an even width, got {width}")
        if not (scale > 0 and w_std > 0 and a_std >= 0 and bias_std >= 0):
            raise PiamiValueError("need scale > 0, w_std > 0, a_std >= 0, bias_std >= 0")
        self.act_name, self.act, self.scale = activation, activation_fn(activation), float(scale)
        n = width // 2 if symmetric else width
        w = _randn((n, d_in), generator, dtype, device) * w_std
        a = _randn((n,), generator, dtype, device) * a_std
        b = _randn((n,), generator, dtype, device) * bias_std
        if symmetric:
            w, a, b = torch.cat([w, w]), torch.cat([a, -a]), torch.cat([b, b])
        self.w = nn.Parameter(w)
        self.a = nn.Parameter(a)
        self.b = nn.Parameter(b) if bias_std > 0 else None

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """Post-activations ``phi(w_i . x + b_i)``, shape ``(batch, width)``."""
        if x.ndim != 2 or x.shape[1] != self.w.shape[1]:
            raise PiamiShapeError(
                f"x must have shape (batch, {self.w.shape[1]}), got {tuple(x.shape)}"
            )
        z = x @ self.w.T
        if self.b is not None:
            z = z + self.b
        return self.act(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * self.hidden(x) @ self.a
