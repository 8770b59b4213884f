"""Gaussian-distance losses of oriented boxes in plain torch (formulas: csrc/math/gaussian_distance.h):
the rows the op takes and the raw op fastloss::gaussian_distance over them — each pair's invariants,
then mmrotate 0.3.4's losses (gwd/kld/jd/kld_symmax/kld_symmin, kfiou) of them.

xywhr boxes are compared in each other's axes (see the header): the same functions as mmrotate's,
without the cancellations that make its NaN."""

import torch

KINDS = ("gwd", "kld", "jd", "kld_symmax", "kld_symmin", "kfiou")
FUNS = ("none", "log1p", "sqrt", "ln", "exp")
REPRESENTATIONS = ("xy_wh_r", "xy_stddev_pearson")


def _frames(rows):
    x, y, w, h, co, si = rows.unbind(-1)
    w, h = 0.5 * w.clamp(1e-7, 1e7), 0.5 * h.clamp(1e-7, 1e7)
    norm = (co * co + si * si).sqrt()
    return x, y, w * w, h * h, co / norm, si / norm


def invariants(pred, target, representation):
    """The pair's invariants (see the header): m1, m2, t1, t2, tr Σp, tr Σt, tr(ΣpΣt), det Σp, det Σt,
    dx, dy — from each box's axes (xywhr rows) or from [[a, c], [c, b]] (Pearson rows)."""
    if representation == 0:
        (xp, yp, Ap, Bp, cp, sp), (xt, yt, At, Bt, ct, st) = _frames(pred), _frames(target)
        c, s = cp * ct + sp * st, cp * st - sp * ct
        c2, s2 = c * c, s * s
        a1, b1, a2, b2 = c2 * At + s2 * Bt, s2 * At + c2 * Bt, c2 * Ap + s2 * Bp, s2 * Ap + c2 * Bp
        dx, dy = xp - xt, yp - yt
        u1, v1, u2, v2 = cp * dx + sp * dy, cp * dy - sp * dx, ct * dx + st * dy, ct * dy - st * dx
        return (
            u1 * u1 / Ap + v1 * v1 / Bp,
            u2 * u2 / At + v2 * v2 / Bt,
            a1 / Ap + b1 / Bp,
            a2 / At + b2 / Bt,
            Ap + Bp,
            At + Bt,
            Ap * a1 + Bp * b1,
            Ap * Bp,
            At * Bt,
            dx,
            dy,
        )

    def gaussian(rows):
        x, y, sx, sy, rho = rows.unbind(-1)
        rho = rho.clamp(1e-7 - 1, 1 - 1e-7)
        a, b = sx * sx, sy * sy
        return x, y, a, b, rho * (sx * sy), a * b * ((1 - rho) * (1 + rho))

    (xp, yp, ap, bp, cp, dp), (xt, yt, at, bt, ct, dt) = gaussian(pred), gaussian(target)
    dx, dy = xp - xt, yp - yt
    return (
        (bp * dx * dx - 2 * cp * dx * dy + ap * dy * dy) / dp,
        (bt * dx * dx - 2 * ct * dx * dy + at * dy * dy) / dt,
        (bp * at - 2 * cp * ct + ap * bt) / dp,
        (bt * ap - 2 * ct * cp + at * bp) / dt,
        ap + bp,
        at + bt,
        ap * at + 2 * cp * ct + bp * bt,
        dp,
        dt,
        dx,
        dy,
    )


def _sqrt(v):
    return v.clamp(1e-7).sqrt()


def kld(inv, alpha, forward=True):
    """KLD(p‖t) (forward) or KLD(t‖p) before its square root."""
    m1, m2, t1, t2, _, _, _, dp, dt, _, _ = inv
    m, t, logs = (m1, t1, dp.log() - dt.log()) if forward else (m2, t2, dt.log() - dp.log())
    return 0.5 * (m / (alpha * alpha) + t) + 0.5 * logs - 1


def gwd(inv, alpha, normalize):
    _, _, _, _, trp, trt, tpt, dp, dt, dx, dy = inv
    root = _sqrt(dp * dt)
    whr = trp + trt - 2 * _sqrt(tpt + 2 * root)
    dist = _sqrt(dx * dx + dy * dy + alpha * alpha * whr)
    if normalize:
        dist = dist / (2 * _sqrt(_sqrt(root)).clamp(1e-7))
    return dist


def postprocess(d, fun, tau):
    if fun == "log1p":
        d = torch.log1p(d)
    elif fun == "sqrt":
        d = _sqrt(d)
    return 1 - 1 / (tau + d) if tau >= 1.0 else d


def _smooth_l1(d, beta):
    d = d.abs()
    return torch.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta)


def kfiou(inv, fun, beta, eps):
    _, _, t1, _, _, _, _, dp, dt, dx, dy = inv
    xy = _smooth_l1(dx, beta) + _smooth_l1(dy, beta)
    vp, vt = 4 * dp.sqrt(), 4 * dt.sqrt()
    vb = 4 * (dp * dt / (dp * (1 + t1) + dt)).sqrt()
    k = vb / (vp + vt - vb + eps)
    f = -torch.log(k + eps) if fun == "ln" else torch.exp(1 - k) - 1 if fun == "exp" else 1 - k
    return (xy + f).clamp(0)


def gaussian_distance_op(pred, target, representation, kind, fun, tau, alpha, beta, eps, flag):
    """fastloss::gaussian_distance: rows (N, 6) or (N, 5) → the loss of each aligned pair (N,)."""
    inv = invariants(pred, target, representation)
    kind, fun = KINDS[kind], FUNS[fun]
    if kind == "kfiou":
        return kfiou(inv, fun, beta, eps)
    if kind == "gwd":
        d = gwd(inv, alpha, flag)
    elif kind == "kld":
        d = kld(inv, alpha)
        d = _sqrt(d) if flag else d
    elif kind == "jd":
        d = 0.5 * (kld(inv, alpha) + kld(inv, alpha, False))
        d = _sqrt(d) if flag else d
    else:
        kpt, ktp = kld(inv, alpha), kld(inv, alpha, False)
        if flag:
            kpt, ktp = _sqrt(kpt), _sqrt(ktp)
        d = torch.maximum(kpt, ktp) if kind == "kld_symmax" else torch.minimum(kpt, ktp)
    return postprocess(d, fun, tau)
