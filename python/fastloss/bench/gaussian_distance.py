"""Benchmark cases of the Gaussian-distance losses of oriented boxes: mmrotate's GDLoss (KLD and GWD,
its DOTA configs' settings) and KFLoss on 1,000,000 aligned pairs, forward + backward, mean-reduced.
The peers are mmrotate 0.3.4's own loss files (from its wheel: scripts/bench_peers.py), eager and
under torch.compile; the reference is fastloss's pure-torch formula."""

import math

import torch

from ..mmrotate import GDLoss, KFLoss
from ..reference import gaussian_distance as reference
from ..reference.oriented import xywhr_rows
from . import Case, register

PAIRS = 1_000_000


def pair_inputs(decoded=False):
    def make(device, dtype, small):
        n = 64 if small else PAIRS
        g = torch.Generator().manual_seed(0)

        def boxes(spread):
            xy = torch.rand(n, 2, generator=g) * spread
            wh = torch.rand(n, 2, generator=g) * 60 + 4
            r = (torch.rand(n, 1, generator=g) - 0.5) * math.pi
            return torch.cat([xy, wh, r], -1).to(device=device, dtype=dtype)

        pred, target = boxes(16), boxes(16)
        if not decoded:
            return {"pred": pred.requires_grad_(), "target": target}
        return {
            "pred": pred[:, :2].contiguous().requires_grad_(),
            "target": target[:, :2].contiguous(),
            "pred_decode": pred.requires_grad_(),
            "targets_decode": target,
        }

    return make


def _reference_loss(kind, fun, tau, flag):
    def loss(pred, target):
        rows = xywhr_rows
        return reference.gaussian_distance_op(
            rows(pred),
            rows(target),
            0,
            reference.KINDS.index(kind),
            reference.FUNS.index(fun),
            tau,
            1.0,
            1 / 9,
            1e-6,
            flag,
        ).mean()

    return loss


def _reference_kf(pred, target, pred_decode, targets_decode):
    p = torch.cat((pred, xywhr_rows(pred_decode)[:, 2:]), -1)
    t = torch.cat((target, xywhr_rows(targets_decode)[:, 2:]), -1)
    return reference.gaussian_distance_op(p, t, 0, 5, 0, 0.0, 1.0, 1 / 9, 1e-6, False).mean()


for kind in ("kld", "gwd"):
    register(
        Case(
            name=f"GDLoss {kind} {PAIRS}",
            make_inputs=pair_inputs(),
            grad=("pred",),
            fastloss=GDLoss(kind, fun="log1p", tau=1.0),
            reference=_reference_loss(kind, "log1p", 1.0, True),
            dtypes=(torch.float32, torch.float64),
        )
    )
register(
    Case(
        name=f"KFLoss {PAIRS}",
        make_inputs=pair_inputs(decoded=True),
        grad=("pred", "pred_decode"),
        fastloss=KFLoss(),
        reference=_reference_kf,
        dtypes=(torch.float32, torch.float64),
    )
)
