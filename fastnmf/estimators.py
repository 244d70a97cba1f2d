"""scikit-learn estimators on top of :func:`fastnmf.nmf` (API.md §3).

:class:`NMF` is a drop-in replacement for :class:`sklearn.decomposition.NMF` and
:class:`MiniBatchNMF` for :class:`sklearn.decomposition.MiniBatchNMF`: the same
constructor parameters, defaults, methods and fitted attributes, plus fastnmf's
``n_init``, ``n_threads`` and solver names.

Penalties follow scikit-learn's documented objective (API.md §9)::

    ½‖X − WH‖²  (or D_β(X‖WH))
      + alpha_W·l1_ratio·n_features·‖W‖₁ + ½·alpha_W·(1 − l1_ratio)·n_features·‖W‖²
      + alpha_H·l1_ratio·n_samples·‖H‖₁  + ½·alpha_H·(1 − l1_ratio)·n_samples·‖H‖²

which is :func:`fastnmf.nmf`'s objective with ``l1_W = n_features·alpha_W·l1_ratio``,
``l2_W = n_features·alpha_W·(1 − l1_ratio)`` and the same for H with ``n_samples``: the
same ``alpha_*`` gives the same model as scikit-learn.

Importing this module imports scikit-learn (about a second): ``fastnmf`` should expose
these classes lazily.
"""

import itertools
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import gen_batches
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from . import _data
from ._kernels.hals import hals_update
from ._solvers import SOLVERS
from ._solvers.base import Penalties, dot64, fold_penalties
from ._solvers.mu import exponent, multiplicative_step
from ._threading import blas_limits, thread_limits
from .nmf import nmf
from .nnls import nnls_gram

__all__ = ["NMF", "MiniBatchNMF"]

# scikit-learn's names -> fastnmf's.
_SOLVER_ALIASES = {"cd": "hals"}
_LOSS_NAMES = {"frobenius": "frobenius", "kullback-leibler": "kl", "itakura-saito": "itakura-saito"}
_BETAS = {"frobenius": 2.0, "kullback-leibler": 1.0, "itakura-saito": 0.0}

# Online (Mairal et al. 2010) update of the components: HALS sweeps on the sufficient
# statistics (A, B) per mini-batch. A sweep costs n_features·k² flops, small next to
# the batch's products (batch_size·n_features·k), so the components are solved nearly
# exactly on (A, B) at every step: up to this many sweeps, each row of Hᵀ stopping once
# its squared change falls below DELTA of its first sweep's.
MINIBATCH_SWEEPS = 10
MINIBATCH_DELTA = 1e-6

_COMMON_CONSTRAINTS = {
    "n_components": [Interval(Integral, 1, None, closed="left"), None, StrOptions({"auto"})],
    "init": [StrOptions({"random", "nndsvd", "nndsvda", "nndsvdar", "custom"}), None],
    "beta_loss": [StrOptions({"frobenius", "kullback-leibler", "itakura-saito"}), Real],
    "tol": [Interval(Real, 0, None, closed="left")],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    "random_state": ["random_state"],
    "alpha_W": [Interval(Real, 0, None, closed="left")],
    "alpha_H": [Interval(Real, 0, None, closed="left"), StrOptions({"same"})],
    "l1_ratio": [Interval(Real, 0, 1, closed="both")],
    "verbose": ["verbose"],
    "n_threads": [Interval(Integral, 1, None, closed="left"), None],
}


class _BaseNMF(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """What NMF and MiniBatchNMF share: rank, init, penalties, transform, tags."""

    # ---------------------------------------------------------------- parameters

    def _beta(self):
        """β of ``beta_loss``."""
        if isinstance(self.beta_loss, str):
            return _BETAS[self.beta_loss]
        return float(self.beta_loss)

    def _loss(self):
        """``beta_loss`` in :func:`fastnmf.nmf`'s terms."""
        if isinstance(self.beta_loss, str):
            return _LOSS_NAMES[self.beta_loss]
        return float(self.beta_loss)

    def _alphas(self):
        alpha_H = self.alpha_W if isinstance(self.alpha_H, str) else self.alpha_H
        return float(self.alpha_W), float(alpha_H)

    def _penalties_W(self, n_features):
        """``(l1_W, l2_W)``: scikit-learn's W penalties, scaled by ``n_features``."""
        alpha_W, _ = self._alphas()
        return n_features * alpha_W * self.l1_ratio, n_features * alpha_W * (1.0 - self.l1_ratio)

    def _penalties_H(self, n_samples):
        """``(l1_H, l2_H)``: scikit-learn's H penalties, scaled by ``n_samples``."""
        _, alpha_H = self._alphas()
        return n_samples * alpha_H * self.l1_ratio, n_samples * alpha_H * (1.0 - self.l1_ratio)

    def _penalties(self, shape):
        """The keyword arguments ``l1_W, l1_H, l2_W, l2_H`` of :func:`fastnmf.nmf`."""
        n_samples, n_features = shape
        l1_W, l2_W = self._penalties_W(n_features)
        l1_H, l2_H = self._penalties_H(n_samples)
        return dict(l1_W=l1_W, l1_H=l1_H, l2_W=l2_W, l2_H=l2_H)

    def _rank_and_init(self, X, W, H):
        """The rank and the ``init`` argument of :func:`fastnmf.nmf` for this fit.

        scikit-learn's rules: ``n_components=None`` keeps all features, ``"auto"`` takes
        the rank from ``H`` (``init="custom"``) or keeps all features; ``init=None`` is
        "nndsvda" when the rank is at most ``min(n_samples, n_features)``, else "random".
        """
        n_samples, n_features = X.shape
        if self.init == "custom":
            if W is None or H is None:
                raise ValueError(
                    "init='custom' needs both initial factors: call fit(X, W=W0, H=H0) with "
                    "W0 of shape (n_samples, n_components) and H0 of shape "
                    "(n_components, n_features)."
                )
            W = check_array(W, dtype=[np.float64, np.float32], input_name="W")
            H = check_array(H, dtype=[np.float64, np.float32], input_name="H")
            rank = self.n_components
            if rank == "auto":
                rank = H.shape[0]
            elif rank is None:
                rank = n_features
            if H.shape != (rank, n_features):
                raise ValueError(
                    f"H passed to fit has shape {H.shape}; expected (n_components, n_features) "
                    f"= {(rank, n_features)}."
                )
            if W.shape != (n_samples, rank):
                raise ValueError(
                    f"W passed to fit has shape {W.shape}; expected (n_samples, n_components) "
                    f"= {(n_samples, rank)}."
                )
            return rank, (W, H)  # nmf validates the values and copies them
        if W is not None or H is not None:
            warnings.warn(
                "When init!='custom', provided W or H are ignored. Set init='custom' to "
                "use them as initialization.",
                RuntimeWarning,
            )
        rank = n_features if self.n_components in (None, "auto") else self.n_components
        init = self.init
        if init is None:
            init = "nndsvda" if rank <= min(n_samples, n_features) else "random"
        return rank, init

    # ---------------------------------------------------------------- transform

    def _solve_W(self, X, H, max_iter):
        """Coefficients of the rows of X on the components H, with the W penalties.

        Frobenius: the exact solution of the penalised non-negative least squares
        problem (block principal pivoting on ``H Hᵀ + l2 I`` and ``X Hᵀ − l1``). Other
        β: multiplicative updates of W with H fixed, as scikit-learn does.
        """
        H = np.asarray(H, dtype=X.dtype)
        l1, l2 = self._penalties_W(X.shape[1])
        with thread_limits(self.n_threads):
            if self._beta() == 2.0:
                with _products_blas():
                    return _project(X, H, l1, l2)
            beta = self._beta()
            return _mu_solve_W(_load(X, beta), H, beta, l1, l2, max_iter, self.tol)

    def fit(self, X, y=None, W=None, H=None):
        """Learn the model from X (``fit_transform`` without the coefficients).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Non-negative training data.
        y : Ignored
            Not used, present for API consistency by convention.
        W : array-like of shape (n_samples, n_components), default=None
            Initial ``W`` when ``init="custom"`` (never modified).
        H : array-like of shape (n_components, n_features), default=None
            Initial ``H`` when ``init="custom"`` (never modified).

        Returns
        -------
        self : estimator
            The fitted estimator.
        """
        self.fit_transform(X, W=W, H=H)
        return self

    def inverse_transform(self, X):
        """Transform data back to the original space: ``X @ components_``.

        Parameters
        ----------
        X : {ndarray, sparse matrix} of shape (n_samples, n_components)
            Transformed data (the coefficients W).

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
            The reconstruction ``W @ H``.
        """
        check_is_fitted(self)
        X = check_array(X, accept_sparse=("csr", "csc"), dtype=[np.float64, np.float32])
        return X @ self.components_

    @property
    def _n_features_out(self):
        """Number of transformed output features."""
        return self.components_.shape[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


class NMF(_BaseNMF):
    """Non-negative matrix factorization with fastnmf's solvers, scikit-learn's API.

    Finds non-negative ``W`` (n_samples, n_components) and ``H`` (n_components,
    n_features) with ``X ≈ W @ H`` by minimising

    .. math::

        L(W, H) = 0.5 ||X - WH||_{loss}^2
            + alpha_W \\cdot l1\\_ratio \\cdot n\\_features \\cdot ||vec(W)||_1
            + alpha_H \\cdot l1\\_ratio \\cdot n\\_samples \\cdot ||vec(H)||_1
            + 0.5 \\cdot alpha_W \\cdot (1 - l1\\_ratio) \\cdot n\\_features \\cdot ||W||_{Fro}^2
            + 0.5 \\cdot alpha_H \\cdot (1 - l1\\_ratio) \\cdot n\\_samples \\cdot ||H||_{Fro}^2

    exactly as :class:`sklearn.decomposition.NMF` (``0.5 ||X - WH||_{loss}^2`` is the
    β-divergence for other losses). A drop-in replacement: same parameters and
    defaults, plus ``n_init``, ``n_threads`` and every solver of
    :data:`fastnmf.SOLVERS`. The fit is one call of :func:`fastnmf.nmf`.

    Parameters
    ----------
    n_components : int, "auto" or None, default="auto"
        Number of components. None keeps all features; "auto" takes the number from the
        shape of ``H`` passed to ``fit`` with ``init="custom"``, else keeps all features.
    init : {"random", "nndsvd", "nndsvda", "nndsvdar", "custom"} or None, default=None
        Initial factors. None: "nndsvda" when ``n_components <= min(n_samples,
        n_features)``, else "random". "custom": the ``W`` and ``H`` passed to ``fit``.
        fastnmf's NNDSVDa fills the zeros of NNDSVD with ``sqrt(mean(X) / n_components)``
        (the scale of the factors) where scikit-learn uses ``mean(X)``.
    solver : str, default="cd"
        "cd" (scikit-learn's name; fastnmf's accelerated HALS, "hals"), "mu"
        (multiplicative updates, the only solver for losses other than Frobenius), or
        any name of :data:`fastnmf.SOLVERS`: "hals", "anls_bpp", "anls_as", "mu", "als",
        "gdcls".
    beta_loss : float or {"frobenius", "kullback-leibler", "itakura-saito"}, \
            default="frobenius"
        β-divergence to minimise; other than Frobenius needs ``solver="mu"``, and
        ``beta_loss <= 0`` needs X without zeros.
    tol : float, default=1e-4
        Stop when the relative decrease of the objective over one iteration falls below
        ``tol`` (fastnmf's rule, API.md §9; 0 disables it).
    max_iter : int, default=200
        Maximum number of iterations.
    random_state : int, RandomState instance or None, default=None
        Seed of the randomized SVD and of random inits.
    alpha_W : float, default=0.0
        Constant that multiplies the regularization terms of ``W``.
    alpha_H : float or "same", default="same"
        Constant that multiplies the regularization terms of ``H``; "same" takes
        ``alpha_W``.
    l1_ratio : float, default=0.0
        Mix of the penalties: 0 is a pure (elementwise) L2 penalty, 1 a pure L1 one.
    verbose : int, default=0
        Print the objective and relative error after every iteration when > 0.
    shuffle : bool, default=False
        Accepted for compatibility with scikit-learn and ignored (with a warning when
        True): fastnmf's HALS updates the components in a fixed order.
    n_init : int, default=1
        Number of runs, the first from ``init``, the others from random inits; the run
        with the lowest objective is kept.
    n_threads : int or None, default=None
        Threads for the Numba kernels and BLAS during ``fit`` and ``transform`` (None:
        all cores).

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        The factor ``H``.
    n_components_ : int
        The number of components.
    reconstruction_err_ : float
        ``‖X − WH‖_F`` for the Frobenius loss, ``sqrt(2·D_β(X‖WH))`` otherwise (as
        scikit-learn), for the training data.
    n_iter_ : int
        Number of iterations of the kept run.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen during ``fit``, when X has string column names.

    See Also
    --------
    fastnmf.nmf : The functional interface, returning an :class:`fastnmf.NMFResult`.
    MiniBatchNMF : Online NMF for large or streamed data.

    Notes
    -----
    ``transform`` solves for ``W`` with ``components_`` fixed: for the Frobenius loss
    exactly (non-negative least squares with the ``W`` penalties), so
    ``fit(X).transform(X)`` equals ``fit_transform(X)`` up to the precision of the
    fit; for other losses by multiplicative updates of ``W``, at most ``max_iter`` of
    them.

    Examples
    --------
    >>> import numpy as np
    >>> from fastnmf.estimators import NMF
    >>> X = np.array([[1, 1], [2, 1], [3, 1.2], [4, 1], [5, 0.8], [6, 1]])
    >>> model = NMF(n_components=2, init="random", random_state=0)
    >>> W = model.fit_transform(X)
    >>> W.shape, model.components_.shape
    ((6, 2), (2, 2))
    """

    _parameter_constraints: dict = {
        **_COMMON_CONSTRAINTS,
        "solver": [StrOptions({"cd", *SOLVERS})],
        "shuffle": ["boolean"],
        "n_init": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        n_components="auto",
        *,
        init=None,
        solver="cd",
        beta_loss="frobenius",
        tol=1e-4,
        max_iter=200,
        random_state=None,
        alpha_W=0.0,
        alpha_H="same",
        l1_ratio=0.0,
        verbose=0,
        shuffle=False,
        n_init=1,
        n_threads=None,
    ):
        self.n_components = n_components
        self.init = init
        self.solver = solver
        self.beta_loss = beta_loss
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state
        self.alpha_W = alpha_W
        self.alpha_H = alpha_H
        self.l1_ratio = l1_ratio
        self.verbose = verbose
        self.shuffle = shuffle
        self.n_init = n_init
        self.n_threads = n_threads

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None, W=None, H=None):
        """Learn an NMF model for the data X and return the transformed data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Non-negative training data.
        y : Ignored
            Not used, present for API consistency by convention.
        W : array-like of shape (n_samples, n_components), default=None
            Initial ``W`` when ``init="custom"`` (never modified).
        H : array-like of shape (n_components, n_features), default=None
            Initial ``H`` when ``init="custom"`` (never modified).

        Returns
        -------
        W : ndarray of shape (n_samples, n_components)
            The coefficients of the training data, float32 for float32 X.
        """
        X = validate_data(
            self,
            X,
            accept_sparse=("csr", "csc"),
            dtype=[np.float64, np.float32],
            ensure_non_negative=True,
        )
        rank, init = self._rank_and_init(X, W, H)
        if self.shuffle:
            warnings.warn(
                "shuffle=True has no effect: fastnmf's HALS updates the components in a "
                "fixed order.",
                UserWarning,
            )
        penalties = self._penalties(X.shape)
        res = nmf(
            X,
            rank,
            solver=_SOLVER_ALIASES.get(self.solver, self.solver),
            loss=self._loss(),
            init=init,
            tol=self.tol,
            max_iter=self.max_iter,
            n_init=self.n_init,
            random_state=self.random_state,
            callback=_print_iteration if self.verbose else None,
            n_threads=self.n_threads,
            **penalties,
        )
        if res.stop_reason == "max_iter" and self.tol > 0:
            warnings.warn(
                f"Maximum number of iterations {self.max_iter} reached. Increase it to "
                "improve convergence.",
                ConvergenceWarning,
            )
        if self._beta() == 2.0:
            error = res.relative_error * _frobenius_norm(X)
        else:
            divergence = res.objective - Penalties(**penalties).value(res.W, res.H)
            error = np.sqrt(2.0 * max(divergence, 0.0))
        self.reconstruction_err_ = float(error)
        self.n_components_ = int(rank)
        self.components_ = res.H
        self.n_iter_ = int(res.n_iter)
        return res.W

    def transform(self, X):
        """Coefficients of new data on the fitted components.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Non-negative data.

        Returns
        -------
        W : ndarray of shape (n_samples, n_components)
            For the Frobenius loss the exact minimiser over ``W ≥ 0`` of the objective
            with ``components_`` fixed; for other losses the result of at most
            ``max_iter`` multiplicative updates of ``W``.
        """
        check_is_fitted(self)
        X = validate_data(
            self,
            X,
            accept_sparse=("csr", "csc"),
            dtype=[np.float64, np.float32],
            reset=False,
            ensure_non_negative=True,
        )
        return self._solve_W(X, self.components_, self.max_iter)


class MiniBatchNMF(_BaseNMF):
    """Mini-batch (online) non-negative matrix factorization, scikit-learn's API.

    Minimises the same objective as :class:`NMF` one mini-batch of rows at a time, so
    that ``partial_fit`` can learn from a stream. A drop-in replacement for
    :class:`sklearn.decomposition.MiniBatchNMF`: same parameters and defaults, plus
    ``n_threads``.

    For the Frobenius loss each step is the online algorithm of Mairal, Bach, Ponce &
    Sapiro (2010, "Online learning for matrix factorization and sparse coding", JMLR
    11, Algorithms 1–2): the batch's coefficients ``W_b`` are solved exactly by
    non-negative least squares on the current components; the sufficient statistics
    ``A = Σ W_bᵀ W_b`` and ``B = Σ W_bᵀ X_b`` are accumulated with forgetting (each
    step multiplies the past by ``forget_factor ** (batch_size / n_samples)``, as
    scikit-learn); then the components are updated by HALS sweeps on ``(A, B)``. The
    H penalties are scaled by the effective number of samples the statistics hold.
    For other β the steps are scikit-learn's online multiplicative updates
    (Lefèvre, Bach & Févotte 2011).

    Parameters
    ----------
    n_components : int, "auto" or None, default="auto"
        Number of components, as in :class:`NMF`.
    init : {"random", "nndsvd", "nndsvda", "nndsvdar", "custom"} or None, default=None
        Initial factors, as in :class:`NMF`, computed on the whole X passed to ``fit``
        (on the first chunk for ``partial_fit``).
    batch_size : int, default=1024
        Number of samples in each mini-batch.
    beta_loss : float or {"frobenius", "kullback-leibler", "itakura-saito"}, \
            default="frobenius"
        β-divergence to minimise.
    tol : float, default=1e-4
        Stop when the relative change ``‖H − H_prev‖ / ‖H‖`` of one step is at most
        ``tol`` (0 disables it). For other β, also the stopping rule of the
        multiplicative updates of ``W`` (relative decrease of the objective).
    max_no_improvement : int or None, default=10
        Stop after this many consecutive mini-batches without improvement of the
        smoothed (exponentially weighted) batch cost; None disables it. Unlike
        scikit-learn, an improvement counts only when it lowers the best smoothed cost
        by more than ``tol`` (relative): with exact coefficients per batch the costs
        decrease steadily by tiny amounts, and any decrease would never let it stop.
    max_iter : int, default=200
        Maximum number of passes over the data.
    alpha_W : float, default=0.0
        Constant that multiplies the regularization terms of ``W``.
    alpha_H : float or "same", default="same"
        Constant that multiplies the regularization terms of ``H``.
    l1_ratio : float, default=0.0
        Mix of the penalties: 0 is pure L2, 1 pure L1.
    forget_factor : float, default=0.7
        Weight of the past statistics after one pass over the data.
    fresh_restarts : bool, default=False
        Other β: solve for ``W`` of each batch from scratch (at most
        ``fresh_restarts_max_iter`` updates) instead of one update. Frobenius: every
        ``W_b`` is always solved exactly, so this has no effect.
    fresh_restarts_max_iter : int, default=30
        Maximum number of updates of ``W`` per batch with fresh restarts (other β).
    transform_max_iter : int or None, default=None
        Maximum number of multiplicative updates of ``W`` in ``transform`` for β other
        than 2 (None: ``max_iter``). Frobenius ``transform`` is exact.
    random_state : int, RandomState instance or None, default=None
        Seed of the init.
    verbose : int, default=0
        Print the batch costs when > 0.
    n_threads : int or None, default=None
        Threads for the Numba kernels and BLAS (None: all cores).

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        The factor ``H``.
    n_components_ : int
        The number of components.
    reconstruction_err_ : float
        ``‖X − WH‖_F`` for the Frobenius loss, ``sqrt(2·D_β(X‖WH))`` otherwise, on the
        data passed to ``fit`` (not set by ``partial_fit``).
    n_iter_ : int
        Number of started passes over the data.
    n_steps_ : int
        Number of mini-batches processed.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen during ``fit``, when X has string column names.

    See Also
    --------
    NMF : Batch NMF.

    Examples
    --------
    >>> import numpy as np
    >>> from fastnmf.estimators import MiniBatchNMF
    >>> X = np.array([[1, 1], [2, 1], [3, 1.2], [4, 1], [5, 0.8], [6, 1]])
    >>> model = MiniBatchNMF(n_components=2, init="random", random_state=0)
    >>> W = model.fit_transform(X)
    >>> W.shape
    (6, 2)
    """

    _parameter_constraints: dict = {
        **_COMMON_CONSTRAINTS,
        "max_no_improvement": [Interval(Integral, 1, None, closed="left"), None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "forget_factor": [Interval(Real, 0, 1, closed="both")],
        "fresh_restarts": ["boolean"],
        "fresh_restarts_max_iter": [Interval(Integral, 1, None, closed="left")],
        "transform_max_iter": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(
        self,
        n_components="auto",
        *,
        init=None,
        batch_size=1024,
        beta_loss="frobenius",
        tol=1e-4,
        max_no_improvement=10,
        max_iter=200,
        alpha_W=0.0,
        alpha_H="same",
        l1_ratio=0.0,
        forget_factor=0.7,
        fresh_restarts=False,
        fresh_restarts_max_iter=30,
        transform_max_iter=None,
        random_state=None,
        verbose=0,
        n_threads=None,
    ):
        self.n_components = n_components
        self.init = init
        self.batch_size = batch_size
        self.beta_loss = beta_loss
        self.tol = tol
        self.max_no_improvement = max_no_improvement
        self.max_iter = max_iter
        self.alpha_W = alpha_W
        self.alpha_H = alpha_H
        self.l1_ratio = l1_ratio
        self.forget_factor = forget_factor
        self.fresh_restarts = fresh_restarts
        self.fresh_restarts_max_iter = fresh_restarts_max_iter
        self.transform_max_iter = transform_max_iter
        self.random_state = random_state
        self.verbose = verbose
        self.n_threads = n_threads

    # ------------------------------------------------------------- public API

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None, W=None, H=None):
        """Learn the model from X and return the coefficients of X.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Non-negative training data.
        y : Ignored
            Not used, present for API consistency by convention.
        W : array-like of shape (n_samples, n_components), default=None
            Initial ``W`` when ``init="custom"`` (never modified).
        H : array-like of shape (n_components, n_features), default=None
            Initial ``H`` when ``init="custom"`` (never modified).

        Returns
        -------
        W : ndarray of shape (n_samples, n_components)
            For the Frobenius loss, the exact coefficients of X on the final components
            (``transform(X)``); for other β, those of the last pass (or solved again
            with ``fresh_restarts``), as scikit-learn.
        """
        X = validate_data(
            self,
            X,
            accept_sparse=("csr", "csc"),
            dtype=[np.float64, np.float32],
            ensure_non_negative=True,
        )
        if sp.issparse(X):
            X = X.tocsr()  # batches are rows
        self._check_params(X)
        W0, H0 = self._initial_factors(X, W, H)
        self._start_statistics(H0)
        beta = self._beta()
        n_samples = X.shape[0]
        W = W0 if beta != 2.0 else None  # Frobenius solves every W_b from scratch
        Ht = np.ascontiguousarray(H0.T)
        Ht_prev = Ht.copy()
        row_sq = _row_sqnorms(X) if beta == 2.0 else None
        self._ewa_cost = self._ewa_cost_min = None
        self._no_improvement = 0

        steps_per_iter = int(np.ceil(n_samples / self._batch_size))
        n_steps = self.max_iter * steps_per_iter
        batches = itertools.cycle(gen_batches(n_samples, self._batch_size))
        converged = False
        step = 0
        with thread_limits(self.n_threads), _products_blas():
            for step, batch in zip(range(n_steps), batches):
                X_b = X[batch]
                W_b = None if W is None else W[batch]
                sq = None if row_sq is None else float(row_sq[batch].sum())
                cost = self._minibatch_step(X_b, W_b, Ht, sq)
                if self._converged(X_b.shape[0], cost, Ht, Ht_prev, n_samples, step, n_steps):
                    converged = True
                    break
                Ht_prev[:] = Ht
            n_steps = step + 1
            H = np.ascontiguousarray(Ht.T)
            if beta == 2.0:
                W, error = _project_with_error(X, H, *self._penalties_W(X.shape[1]))
            else:
                data = _load(X, beta)
                if self.fresh_restarts:
                    l1_W, l2_W = self._penalties_W(X.shape[1])
                    W = _mu_solve_W(data, H, beta, l1_W, l2_W, self._transform_max_iter, self.tol)
                divergence = data.beta_products(W, Ht, beta)[2]
                error = np.sqrt(2.0 * max(divergence, 0.0))
        n_iter = int(np.ceil(n_steps / steps_per_iter))
        if not converged and self.tol > 0:
            warnings.warn(
                f"Maximum number of iterations {self.max_iter} reached. Increase it to "
                "improve convergence.",
                ConvergenceWarning,
            )
        self.reconstruction_err_ = float(error)
        self.n_components_ = H.shape[0]
        self.components_ = H
        self.n_iter_ = n_iter
        self.n_steps_ = n_steps
        return W

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None, W=None, H=None):
        """Update the model with the data in X as one mini-batch.

        Call it repeatedly on successive chunks of a data set or stream
        (out-of-core or online learning). The first call initialises the components
        from its chunk.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            One chunk of non-negative data.
        y : Ignored
            Not used, present for API consistency by convention.
        W : array-like of shape (n_samples, n_components), default=None
            Initial ``W`` when ``init="custom"``; used by the first call only.
        H : array-like of shape (n_components, n_features), default=None
            Initial ``H`` when ``init="custom"``; used by the first call only.

        Returns
        -------
        self : MiniBatchNMF
            The updated estimator.
        """
        has_components = hasattr(self, "components_")
        X = validate_data(
            self,
            X,
            accept_sparse=("csr", "csc"),
            dtype=[np.float64, np.float32],
            reset=not has_components,
            ensure_non_negative=True,
        )
        if sp.issparse(X):
            X = X.tocsr()
        if not has_components:
            self._check_params(X)
            _, H0 = self._initial_factors(X, W, H)
            self._start_statistics(H0)
            self.n_steps_ = 0
            Ht = np.ascontiguousarray(H0.T)
        else:
            Ht = np.array(self.components_.T, dtype=self.components_.dtype, order="C")
        sq = float(_row_sqnorms(X).sum()) if self._beta() == 2.0 else None
        with thread_limits(self.n_threads), _products_blas():
            self._minibatch_step(X, None, Ht, sq)
        self.components_ = np.ascontiguousarray(Ht.T)
        self.n_components_ = self.components_.shape[0]
        self.n_steps_ += 1
        return self

    def transform(self, X):
        """Coefficients of new data on the fitted components.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Non-negative data.

        Returns
        -------
        W : ndarray of shape (n_samples, n_components)
            For the Frobenius loss the exact minimiser over ``W ≥ 0`` with
            ``components_`` fixed; for other β the result of at most
            ``transform_max_iter`` multiplicative updates.
        """
        check_is_fitted(self)
        X = validate_data(
            self,
            X,
            accept_sparse=("csr", "csc"),
            dtype=[np.float64, np.float32],
            reset=False,
            ensure_non_negative=True,
        )
        return self._solve_W(X, self.components_, self._transform_max_iter)

    # ------------------------------------------------------------- internals

    def _check_params(self, X):
        """Derived settings of a fit, as scikit-learn's ``_check_params``."""
        self._batch_size = min(self.batch_size, X.shape[0])
        # The past is multiplied by forget_factor over one pass over X.
        self._rho = self.forget_factor ** (self._batch_size / X.shape[0])
        self._gamma = exponent(self._beta())
        self._transform_max_iter = self.max_iter if self.transform_max_iter is None else self.transform_max_iter

    def _initial_factors(self, X, W, H):
        """``(W0, H0)`` from ``init`` on X, by :func:`fastnmf.nmf` with ``max_iter=0``."""
        rank, init = self._rank_and_init(X, W, H)
        beta = self._beta()
        res = nmf(
            X,
            rank,
            solver="hals" if beta == 2.0 else "mu",
            loss=self._loss(),
            init=init,
            max_iter=0,
            random_state=self.random_state,
            n_threads=self.n_threads,
        )
        return res.W, res.H

    def _start_statistics(self, H0):
        """Empty sufficient statistics (Frobenius) or scikit-learn's MU accumulators."""
        k, n = H0.shape
        if self._beta() == 2.0:
            self._A = np.zeros((k, k), dtype=H0.dtype)  # Σ ρ^· W_bᵀ W_b
            self._Bt = np.zeros((n, k), dtype=H0.dtype)  # Σ ρ^· X_bᵀ W_b
            self._n_effective = 0.0  # Σ ρ^· n_b: the samples the statistics hold
        else:
            self._A = np.ascontiguousarray(H0.T)  # numerators, Hᵀ orientation
            self._Bt = np.ones((n, k), dtype=H0.dtype)  # denominators

    def _minibatch_step(self, X_b, W_b, Ht, sqnorm):
        """One mini-batch: update ``W_b`` (in place for β ≠ 2), then ``Ht`` in place.

        Returns the batch cost (objective per sample, before the update of H).
        """
        if self._beta() == 2.0:
            return self._frobenius_step(X_b, Ht, sqnorm)
        return self._mu_step(X_b, W_b, Ht)

    def _frobenius_step(self, X_b, Ht, sqnorm):
        """Mairal et al. (2010): exact W_b, statistics with forgetting, HALS on them."""
        n_b, n_features = X_b.shape
        l1_W, l2_W = self._penalties_W(n_features)
        HtH = Ht.T @ Ht
        XHt = _matmul(X_b, Ht)
        W_b = _nnls_products(XHt, HtH, l1_W, l2_W)
        WtW = W_b.T @ W_b
        squared = sqnorm - 2.0 * dot64(W_b, XHt) + dot64(WtW, HtH)
        l1_H, l2_H = self._penalties_H(n_b)
        cost = (
            0.5 * max(squared, 0.0)
            + l1_W * W_b.sum(dtype=np.float64) + 0.5 * l2_W * dot64(W_b, W_b)
            + l1_H * Ht.sum(dtype=np.float64) + 0.5 * l2_H * np.trace(HtH)
        ) / n_b
        rho = self._rho
        self._A *= rho
        self._A += WtW
        self._Bt *= rho
        self._Bt += _matmul(X_b.T, W_b)
        self._n_effective = rho * self._n_effective + n_b
        l1_H, l2_H = self._penalties_H(self._n_effective)
        YG, Q = fold_penalties(self._Bt, self._A, l1_H, l2_H)
        # A component that no batch has used yet (a zero row of A) keeps its current
        # values instead of being zeroed for good: it does not enter the others'
        # updates, whose Gram entries with it are 0, and a later batch may use it.
        unused = np.flatnonzero(np.diag(self._A) <= 0)
        kept = Ht[:, unused].copy()
        _hals(Ht, np.ascontiguousarray(YG, dtype=Ht.dtype), np.ascontiguousarray(Q, dtype=Ht.dtype))
        Ht[:, unused] = kept
        return float(cost)

    def _mu_step(self, X_b, W_b, Ht):
        """scikit-learn's online multiplicative updates for β ≠ 2 (Lefèvre et al. 2011)."""
        beta, gamma = self._beta(), self._gamma
        n_b, n_features = X_b.shape
        l1_W, l2_W = self._penalties_W(n_features)
        l1_H, l2_H = self._penalties_H(n_b)
        data = _load(X_b, beta)
        if W_b is None or self.fresh_restarts:
            W_new = _mu_solve_W(data, Ht.T, beta, l1_W, l2_W, self.fresh_restarts_max_iter, self.tol)
            if W_b is None:
                W_b = W_new
            else:
                W_b[:] = W_new
        else:
            num, den, _, _ = data.beta_products(W_b, Ht, beta, with_objective=False)
            multiplicative_step(W_b, num, den, l1_W, l2_W, gamma)
        # The pass that forms the update of Hᵀ also gives the divergence at (W_b, H).
        num, den, divergence, _ = data.T.beta_products(Ht, W_b, beta)
        cost = (
            divergence
            + l1_W * W_b.sum(dtype=np.float64) + 0.5 * l2_W * dot64(W_b, W_b)
            + l1_H * Ht.sum(dtype=np.float64) + 0.5 * l2_H * dot64(Ht, Ht)
        ) / n_b
        den += l1_H
        if l2_H:
            den += l2_H * Ht
        den[den <= 0] = np.finfo(np.float32).eps
        if gamma != 1.0:
            Ht **= 1.0 / gamma
        num *= Ht
        rho = self._rho
        self._A *= rho
        self._A += num
        self._Bt *= rho
        self._Bt += den
        np.divide(self._A, self._Bt, out=Ht)
        if gamma != 1.0:
            Ht **= gamma
        return float(cost)

    def _converged(self, batch_size, cost, Ht, Ht_prev, n_samples, step, n_steps):
        """scikit-learn's early stopping: small change of H, or no improvement of the
        exponentially weighted batch cost for ``max_no_improvement`` steps."""
        step += 1
        if step == 1:  # H was not updated yet at the first cost
            if self.verbose:
                print(f"Minibatch step {step}/{n_steps}: mean batch cost: {cost}")
            return False
        if self._ewa_cost is None:
            self._ewa_cost = cost
        else:
            alpha = min(batch_size / (n_samples + 1), 1.0)
            self._ewa_cost = self._ewa_cost * (1 - alpha) + cost * alpha
        if self.verbose:
            print(f"Minibatch step {step}/{n_steps}: mean batch cost: {cost}, ewa cost: {self._ewa_cost}")
        norm = np.linalg.norm(Ht)
        change = np.linalg.norm(Ht - Ht_prev) / norm if norm > 0 else 0.0
        if self.tol > 0 and change <= self.tol:
            if self.verbose:
                print(f"Converged (small H change) at step {step}/{n_steps}")
            return True
        # An improvement counts when it lowers the best smoothed cost by more than tol
        # (relative): the exact W_b of the Frobenius steps make the batch costs nearly
        # deterministic, and their tiny steady decrease would otherwise never stop.
        if self._ewa_cost_min is None or self._ewa_cost < self._ewa_cost_min * (1.0 - self.tol):
            self._no_improvement = 0
            self._ewa_cost_min = self._ewa_cost
        else:
            self._no_improvement += 1
        if self.max_no_improvement is not None and self._no_improvement >= self.max_no_improvement:
            if self.verbose:
                print(f"Converged (lack of improvement in objective function) at step {step}/{n_steps}")
            return True
        return False


# --------------------------------------------------------------------------- helpers


def _print_iteration(info):
    """The ``verbose`` callback of :class:`NMF`."""
    print(
        f"iteration {info.iteration}: objective {info.objective:.6g}, "
        f"relative error {info.relative_error:.6g}, {info.seconds:.3f} s"
    )


def _products_blas():
    """One BLAS thread for the products between parallel kernels.

    The mini-batch steps and the projections alternate BLAS products with parallel
    Numba kernels (NNLS, HALS); OpenBLAS's workers keep spinning after each call and
    take the cores from the kernel that follows (see ``_threading.blas_limits``).
    Measured on 2 cores, MiniBatchNMF step of 1024 × 1000 rows at k=20: 36–40 ms with
    the default BLAS threads, 10 ms with one.
    """
    return blas_limits(1)


def _load(X, beta):
    """X in the data layer (validated once), for the β-divergence passes."""
    return _data.load(X, beta=beta)


def _matmul(X, G):
    """``X @ G`` as a C-contiguous ndarray, for dense or sparse X."""
    return np.ascontiguousarray(X @ G)


def _row_sqnorms(X):
    """Squared norm of every row of X, in float64."""
    if sp.issparse(X):
        return np.asarray(X.multiply(X).sum(axis=1), dtype=np.float64).ravel()
    X64 = X.astype(np.float64, copy=False)
    return np.einsum("ij,ij->i", X64, X64)


def _frobenius_norm(X):
    """‖X‖_F, accumulated in float64."""
    data = X.data if sp.issparse(X) else X
    data = np.asarray(data).ravel().astype(np.float64, copy=False)
    return float(np.sqrt(np.dot(data, data)))


def _nnls_products(XHt, HHt, l1, l2):
    """Exact ``argmin_{W ≥ 0} ½‖X − WH‖² + l1‖W‖₁ + ½l2‖W‖²`` from ``X Hᵀ`` and ``H Hᵀ``.

    The penalties fold into the products as in every Frobenius half-step
    (``fold_penalties``); ``nnls_gram`` then solves all rows exactly.
    """
    YG, GtG = fold_penalties(XHt, HHt, l1, l2)
    GtG = 0.5 * (GtG + GtG.T)  # exactly symmetric, whatever the BLAS did
    return np.ascontiguousarray(nnls_gram(GtG, YG.T).T)


def _project(X, H, l1, l2):
    """Exact penalised non-negative least squares coefficients of the rows of X on H."""
    return _nnls_products(_matmul(X, H.T), H @ H.T, l1, l2)


def _project_with_error(X, H, l1, l2):
    """``(W, ‖X − WH‖_F)`` with W the exact coefficients of X on H."""
    HHt = H @ H.T
    XHt = _matmul(X, H.T)
    W = _nnls_products(XHt, HHt, l1, l2)
    sqnorm = _frobenius_norm(X) ** 2
    squared = sqnorm - 2.0 * dot64(W, XHt) + dot64(W.T @ W, HHt)
    floor = (1e-12 if X.dtype == np.float64 else 1e-4) * sqnorm
    if squared < floor:  # cancellation has eaten the digits: compute it exactly
        squared = _load(X, 2.0).residual_sqnorm(W, np.ascontiguousarray(H.T))
    return W, np.sqrt(max(squared, 0.0))


def _mu_solve_W(data, H, beta, l1, l2, max_iter, tol):
    """W for fixed H by multiplicative updates of W only (scikit-learn's transform for β ≠ 2).

    ``data`` is X in the data layer (``_load``).

    Starts, as scikit-learn, from the constant ``sqrt(mean(X) / k)`` and stops after
    ``max_iter`` updates or when the relative decrease of the objective
    ``D_β(X‖WH) + l1‖W‖₁ + ½l2‖W‖²`` over one update falls below ``tol``.
    """
    m, n = data.shape
    k = H.shape[0]
    Ht = np.ascontiguousarray(H.T, dtype=data.dtype)
    avg = np.sqrt(max(data.total, 0.0) / (m * n) / k)
    W = np.full((m, k), avg, dtype=data.dtype)
    gamma = exponent(beta)
    previous = None
    for _ in range(max_iter):
        num, den, divergence, _ = data.beta_products(W, Ht, beta)
        objective = divergence + l1 * W.sum(dtype=np.float64) + 0.5 * l2 * dot64(W, W)
        if previous is not None and tol > 0 and (previous <= 0 or (previous - objective) / previous < tol):
            break
        previous = objective
        multiplicative_step(W, num, den, l1, l2, gamma)
    return W


def _hals(Ht, YG, GtG):
    """HALS sweeps on the rows of ``Ht`` for the products ``YG`` and ``GtG`` (in place)."""
    hals_update(Ht, YG, GtG[None], MINIBATCH_SWEEPS, MINIBATCH_DELTA)
