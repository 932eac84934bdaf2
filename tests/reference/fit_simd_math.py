"""Derives the polynomial coefficients of include/fiber/backend/cpu/simd_math.hpp.

Not a fixture writer: it prints the float32 coefficients (hex) that the header holds, and the
error each fit reaches in double and in float arithmetic. Lawson's iteratively reweighted least
squares approaches the minimax fit; float rounding of the evaluation dominates either way.
"""
import numpy as np


def fit_exp():
    """exp(r) = 1 + r + r^2 q(r) on |r| <= ln(2)/2, q of degree 4, minimising relative error."""
    a = np.log(2) / 2
    r = np.cos(np.linspace(0, np.pi, 4001)) * a
    r = r[np.abs(r) > 1e-6]
    target = (np.exp(r) - 1 - r) / r**2
    A = np.vander(r, 5, increasing=True)
    scale = r**2 / np.exp(r)
    w = np.ones_like(r)
    for _ in range(200):
        W = np.sqrt(w) * scale
        c, *_ = np.linalg.lstsq(A * W[:, None], target * W, rcond=None)
        err = np.abs((A @ c - target) * scale)
        w = w * err
        w /= w.sum()
    print(f"exp: relative error {err.max():.2e} (double)")
    return c.astype(np.float32)


def fit_tanh(m=6, n=3, X=9.0):
    """tanh(x) = x P(x^2) / Q(x^2) on [0, X], Q(0) = 1, minimising relative error (Loeb + Lawson)."""
    x = np.concatenate([np.linspace(1e-4, X, 20000), np.geomspace(1e-6, 0.5, 2000)])
    x.sort()
    t = np.tanh(x)
    s = x * x / (X * X)  # scaled variable keeps the system well conditioned
    A = np.concatenate([np.stack([x * s**i for i in range(m + 1)], 1),
                        np.stack([-t * s**j for j in range(1, n + 1)], 1)], 1)
    w = np.ones_like(x)
    q_prev = np.ones_like(x)
    best = None
    for _ in range(300):
        W = np.sqrt(w) / (t * q_prev)
        c, *_ = np.linalg.lstsq(A * W[:, None], t * W, rcond=None)
        a, b = c[:m + 1], np.concatenate([[1.0], c[m + 1:]])
        P = sum(a[i] * s**i for i in range(m + 1)) * x
        Q = sum(b[j] * s**j for j in range(n + 1))
        err = np.abs(P / Q / t - 1)
        if best is None or err.max() < best[0]:
            best = (err.max(), a.copy(), b.copy())
        q_prev = Q
        w = w * np.sqrt(err)
        w /= w.sum()
    e, a, b = best
    print(f"tanh: relative error {e:.2e} (double)")
    a = a / (X * X) ** np.arange(m + 1)  # back to powers of x^2
    b = b / (X * X) ** np.arange(n + 1)
    return a.astype(np.float32), b.astype(np.float32)


def hex32(v):
    return float(v).hex().replace("0000000p", "p").replace("000000p", "p")


if __name__ == "__main__":
    q = fit_exp()
    print("exp q (r^0 .. r^4):", ", ".join(hex32(v) for v in q))
    P, Q = fit_tanh()
    print("tanh P (s^0 .. s^6):", ", ".join(hex32(v) for v in P))
    print("tanh Q (s^0 .. s^3):", ", ".join(hex32(v) for v in Q))
