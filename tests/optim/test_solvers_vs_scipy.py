"""diffprog.optim.solvers vs scipy.optimize: accuracy (1e-8 on the minimizer) and cost.

The cost of a run is the number of calls of the objective (counted with
``diffprog.count_calls``): a value-and-gradient evaluation counts as one call, as scipy's
``jac=True``, and so does a Hessian-vector product (scipy's ``hessp`` calls are counted the
same way). Least squares: residual plus Jacobian evaluations (scipy ``nfev + njev`` with the
same AD Jacobian). We require ≤ 1.5× scipy's count with scipy run to comparable tolerances.
"""

import numpy as np
import pytest

import diffprog
import diffprog.numpy as dnp
from diffprog.optim.solvers import bfgs, lbfgs, levenberg_marquardt, newton

so = pytest.importorskip("scipy.optimize")


def rosen(w):
    return dnp.sum(100 * (w[1:] - w[:-1] ** 2) ** 2 + (1 - w[:-1]) ** 2)


def beale(w):
    x, y = w[0], w[1]
    return ((1.5 - x + x * y) ** 2 + (2.25 - x + x * y ** 2) ** 2
            + (2.625 - x + x * y ** 3) ** 2)


def _logreg():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 10))
    y = np.where(X @ rng.normal(size=10) + 0.5 * rng.normal(size=200) > 0, 1.0, -1.0)

    def f(w):
        return dnp.mean(dnp.log1p(dnp.exp(-y * (X @ w)))) + 0.01 * dnp.sum(w ** 2)

    w_star = newton(f, np.zeros(10), tol=1e-15, maxiter=50).solution
    return f, w_star


LOGREG, LOGREG_STAR = _logreg()

PROBLEMS = {
    "rosenbrock-2d": (rosen, np.array([-1.2, 1.0]), np.ones(2)),
    "rosenbrock-10d": (rosen, np.zeros(10), np.ones(10)),
    "beale": (beale, np.array([1.0, 1.0]), np.array([3.0, 0.5])),
    "logistic": (LOGREG, np.zeros(10), LOGREG_STAR),
}

OURS = {
    "L-BFGS-B": lambda f, x0: lbfgs(f, x0, tol=1e-10, maxiter=2000),
    "BFGS": lambda f, x0: bfgs(f, x0, tol=1e-10, maxiter=2000),
    "Newton-CG": lambda f, x0: newton(f, x0, linear_solver="cg", linesearch="armijo",
                                      tol=1e-10, maxiter=2000),
}

SCIPY_OPTIONS = {
    "L-BFGS-B": {"gtol": 1e-10, "ftol": 1e-16, "maxiter": 5000},
    "BFGS": {"gtol": 1e-10, "maxiter": 5000},
    "Newton-CG": {"xtol": 1e-14, "maxiter": 5000},
}

RATIO = 1.5
TABLE: list = []


def _scipy_run(f, x0, method):
    vg = diffprog.value_and_grad(f)
    calls = [0]

    def fun(x):
        calls[0] += 1
        v, g = vg(x)
        return float(v), np.asarray(g, dtype=float)

    def hessp(x, p):
        calls[0] += 1
        return np.asarray(diffprog.hvp(f, x, p), dtype=float)

    kw = {"hessp": hessp} if method == "Newton-CG" else {}
    res = so.minimize(fun, x0, jac=True, method=method, options=SCIPY_OPTIONS[method], **kw)
    return res.x, calls[0]


@pytest.mark.parametrize("method", list(OURS))
@pytest.mark.parametrize("problem", list(PROBLEMS))
def test_minimize_vs_scipy(problem, method):
    f, x0, x_star = PROBLEMS[problem]
    counted = diffprog.count_calls(f)
    res = OURS[method](counted, x0)
    err = float(np.max(np.abs(res.solution - x_star)))
    sx, scalls = _scipy_run(f, x0, method)
    serr = float(np.max(np.abs(sx - x_star)))
    TABLE.append((problem, method, counted.calls, scalls, err, serr))
    assert err <= 1e-8, (problem, method, err, res.status)
    assert counted.calls == res.num_fun_evals
    assert counted.calls <= RATIO * scalls, (problem, method, counted.calls, scalls)


T_FIT = np.linspace(0.0, 2.0, 20)
Y_FIT = 3.0 * np.exp(-1.3 * T_FIT) + 0.5

LSQ = {
    "exp-fit": (lambda w: w[0] * dnp.exp(w[1] * T_FIT) + w[2] - Y_FIT,
                np.array([1.0, -0.5, 0.0]), np.array([3.0, -1.3, 0.5])),
    "rosenbrock-residuals": (lambda w: dnp.stack([10 * (w[1] - w[0] ** 2), 1 - w[0]]),
                             np.array([-1.2, 1.0]), np.ones(2)),
}


@pytest.mark.parametrize("problem", list(LSQ))
def test_levenberg_marquardt_vs_scipy(problem):
    r, x0, x_star = LSQ[problem]
    counted = diffprog.count_calls(r)
    res = levenberg_marquardt(counted, x0)
    err = float(np.max(np.abs(res.solution - x_star)))
    jac = diffprog.jacfwd(r)
    calls = [0]

    def fun(x):
        calls[0] += 1
        return np.asarray(r(x), dtype=float)

    def jf(x):
        calls[0] += 1
        return np.asarray(jac(x), dtype=float)

    s = so.least_squares(fun, x0, jac=jf, method="lm", xtol=1e-15, ftol=1e-15, gtol=1e-15)
    serr = float(np.max(np.abs(s.x - x_star)))
    TABLE.append((problem, "LM", counted.calls, calls[0], err, serr))
    assert err <= 1e-8
    assert counted.calls == res.num_fun_evals
    assert counted.calls <= RATIO * calls[0], (problem, counted.calls, calls[0])


def teardown_module(module):
    if TABLE:
        print("\nproblem              method      ours  scipy  err_ours  err_scipy")
        for p, m, a, b, e1, e2 in TABLE:
            print(f"{p:20s} {m:10s} {a:5d} {b:6d}  {e1:8.1e}  {e2:8.1e}")
