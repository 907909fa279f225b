"""AdaS, the adaptive step-size optimiser paper 004 trains with (its eq. 4 and reference [15]).

Paper 004 cites Y. Eliyahu's AdasOptimizer (github.com/YanaiEliyahu/AdasOptimizer), which is not
on PyPI. PyPI's ``adas`` (1.1.3) is a different method, Hosseini and Plataniotis' adaptive
*scheduling*; it also fails on current torch (``Adas(model.parameters())`` raises TypeError:
it calls ``len()`` on the parameter generator). So this is our implementation of Eliyahu's
method, written from its description:

* every input feature of a layer has its own step size ``lr`` (shape ``param.shape[1:]``); the
  update is ``-lr * n`` with ``n`` the gradient normalised by its second moment (Adam-style,
  bias-corrected, decay ``beta_1``);
* the step sizes learn by the rule of eq. 4, s ← s + ∇F(x)·∇F(x + s∇F(x)): the derivative
  of the loss with respect to ``lr`` is the current gradient times the previous normalised
  step, summed over the output dimension, and it is approximated by the gradient times a moving
  average of the normalised steps (decay ``beta_3``); ``lr`` moves multiplicatively along that
  derivative's own normalised value at rate ``master``;
* ``master`` (one per tensor, starting at ``lr2``) learns the same way one level up (moving
  average decay ``beta_2``) at the fixed rate ``lr3``.
"""

from __future__ import annotations

import torch
from torch.optim import Optimizer


class Adas(Optimizer):
    """Adaptive step size (Eliyahu). ``lr``: initial per-feature step; ``lr2``: initial rate of the
    step sizes; ``lr3``: fixed rate of ``lr2``; ``beta_1``: second-moment decay of every normaliser;
    ``beta_2``/``beta_3``: moving-average decays of the step-size and weight derivatives."""

    def __init__(self, params, lr: float = 1e-3, lr2: float = 5e-3, lr3: float = 5e-4, beta_1: float = 0.999,
                 beta_2: float = 0.999, beta_3: float = 0.9999, eps: float = 1e-8):
        for name, value in (("lr", lr), ("lr2", lr2), ("lr3", lr3), ("eps", eps)):
            if value < 0:
                raise ValueError(f"Adas: {name} must be >= 0, not {value}")
        for name, value in (("beta_1", beta_1), ("beta_2", beta_2), ("beta_3", beta_3)):
            if not 0 <= value < 1:
                raise ValueError(f"Adas: {name} must be in [0, 1), not {value}")
        super().__init__(params, {"lr": lr, "lr2": lr2, "lr3": lr3, "beta_1": beta_1, "beta_2": beta_2, "beta_3": beta_3,
                                  "eps": eps})

    @staticmethod
    def _normalise(x: torch.Tensor, square_avg: torch.Tensor, step: int, beta_1: float, eps: float) -> torch.Tensor:
        """``x`` over the root of its bias-corrected second moment (``square_avg`` updated in place)."""
        square_avg.mul_(beta_1).addcmul_(x, x, value=1 - beta_1)
        return x * (1 - beta_1**step) ** 0.5 / (square_avg.sqrt() + eps)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            b1, eps = group["beta_1"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                state = self.state[p]
                if not state:
                    feature_shape = p.shape[1:]
                    state["step"] = 0
                    state["lr"] = torch.full(feature_shape, group["lr"], dtype=p.dtype, device=p.device)
                    state["master"] = torch.tensor(group["lr2"], dtype=torch.float32, device=p.device)
                    state["grad_sq"] = torch.zeros_like(p)
                    state["step_avg"] = torch.zeros_like(p)  # moving average of the normalised steps
                    state["lr_grad_sq"] = torch.zeros(feature_shape, dtype=p.dtype, device=p.device)
                    state["lr_step_avg"] = torch.zeros(feature_shape, dtype=p.dtype, device=p.device)
                    state["master_grad_sq"] = torch.zeros((), dtype=torch.float32, device=p.device)
                state["step"] += 1
                t = state["step"]
                # the weights
                normalised = self._normalise(grad, state["grad_sq"], t, b1, eps)
                p.sub_(state["lr"].unsqueeze(0) * normalised if p.dim() > 0 else state["lr"] * normalised)
                lr_grad = (state["step_avg"] * grad).sum(0) if p.dim() > 0 else state["step_avg"] * grad
                state["step_avg"].mul_(group["beta_3"]).add_(normalised, alpha=1 - group["beta_3"])
                # their step sizes
                lr_normalised = self._normalise(lr_grad, state["lr_grad_sq"], t, b1, eps)
                state["lr"].add_(state["master"] * state["lr"] * lr_normalised)
                master_grad = (state["lr_step_avg"] * lr_grad).sum().float()
                state["lr_step_avg"].mul_(group["beta_2"]).add_(lr_normalised, alpha=1 - group["beta_2"])
                # the step sizes' rate
                master_normalised = self._normalise(master_grad, state["master_grad_sq"], t, b1, eps)
                state["master"].add_(group["lr3"] * state["master"] * master_normalised)
        return loss
