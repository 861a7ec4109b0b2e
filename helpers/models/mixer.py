"""The two pieces CBV is made of: a coefficient vector under a constraint, and a module mixer.

``merge`` is the one formula (theta0 + alpha (theta - theta0)); ``Coefficients`` maps raw
parameters to alphas in [0, 1]; ``Mixer`` stands in for one module of a coefficient group and
blends its trainable and frozen copies in weight or output space. ``helpers.models.cbv`` puts
them together into a model.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call


def merge(alpha: torch.Tensor, theta0: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """theta0 + alpha * (theta - theta0), exact at alpha in {0, 1}; one kernel (torch.lerp)."""
    return torch.lerp(theta0, theta, alpha)


class Coefficients(nn.Module):
    """The raw coefficient vector s and its map to alphas under one constraint."""

    def __init__(
        self,
        names: list[str],
        constraint: str,
        init: float,
        dtype: torch.dtype,
        device: torch.device,
    ):
        super().__init__()
        self.names = list(names)
        self.constraint = constraint
        self.raw = nn.Parameter(torch.empty(len(names), dtype=dtype, device=device))
        self.set_(torch.full((len(names),), float(init), dtype=torch.float64))

    def values(self) -> torch.Tensor:
        """The alphas, differentiable in ``raw``."""
        return self.raw if self.constraint == "clamp" else torch.sigmoid(self.raw)

    @torch.no_grad()
    def set_(self, alphas: torch.Tensor) -> None:
        """Set raw so that the alphas equal ``alphas`` (sigmoid: s = logit(alpha), +-inf at 0/1)."""
        alphas = alphas.to(torch.float64)
        raw = alphas if self.constraint == "clamp" else torch.logit(alphas)
        self.raw.copy_(raw)

    @torch.no_grad()
    def project_(self) -> None:
        """Apply the constraint after an optimiser step (no-op for sigmoid)."""
        if self.constraint == "clamp":
            self.raw.clamp_(0.0, 1.0)
        elif self.constraint == "sum":
            a = torch.sigmoid(self.raw)
            a = a / a.sum()
            # eps keeps s finite when one alpha carries (almost) the whole sum
            self.raw.copy_(torch.logit(a, eps=torch.finfo(a.dtype).eps))


class Mixer(nn.Module):
    """Stands in for one module of a coefficient group and blends its two copies."""

    def __init__(
        self,
        trainable: nn.Module,
        frozen: nn.Module,
        coefficients: Coefficients,
        start: int,
        count: int,
        space: str,
    ):
        super().__init__()
        self.trainable = trainable
        self.frozen = frozen.eval().requires_grad_(False)
        # a plain reference, not a submodule: the wrapper owns the coefficients once
        object.__setattr__(self, "_coefficients", coefficients)
        self.start, self.count, self.space = start, count, space
        self.names = [n for n, _ in trainable.named_parameters()]
        if count not in (1, len(self.names)):
            raise ValueError(f"{count} coefficients for {len(self.names)} tensors")

    def train(self, mode: bool = True):
        super().train(mode)
        self.frozen.eval()  # the frozen branch is the source model: never dropout
        return self

    def alpha_list(self) -> list[torch.Tensor]:
        a = self._coefficients.values()[self.start : self.start + self.count]
        return list(a.unbind()) if self.count > 1 else [a[0]] * len(self.names)

    def mixed_parameters(self) -> dict[str, torch.Tensor]:
        theta = dict(self.trainable.named_parameters())
        theta0 = dict(self.frozen.named_parameters())
        return {n: merge(a, theta0[n], theta[n]) for n, a in zip(self.names, self.alpha_list())}

    def forward(self, *args, **kwargs):
        if self.space == "weight":
            return functional_call(
                self.trainable, self.mixed_parameters(), args, kwargs, tie_weights=False
            )
        alpha = self.alpha_list()[0]
        out, out0 = self.trainable(*args, **kwargs), self.frozen(*args, **kwargs)
        if isinstance(out, torch.Tensor):
            return merge(alpha, out0, out)
        if isinstance(out, tuple):  # mix the hidden states, pass the rest of the trainable's
            return (merge(alpha, out0[0], out[0]), *out[1:])
        raise TypeError(f"cannot mix outputs of type {type(out).__name__} in output space")
