"""2-D layouts of embeddings that stay put from one round to the next.

The backend computes these coordinates when a round ends and stores them with the round, so the
dashboard never fits UMAP while a page loads (design: "Slow work never blocks the page").

* :func:`project_2d` maps an ``(n_samples, dim)`` embedding to ``(n_samples, 2)`` coordinates with
  UMAP (when ``umap-learn`` is installed) or PCA. Given the previous round's coordinates of the
  same samples, UMAP starts from them and both methods are then aligned to them, so that points
  do not jump between rounds.
* :func:`align_to` is the alignment on its own: an orthogonal Procrustes fit (rotation or
  reflection, uniform scale and translation).
* :func:`warm_up_umap` pays numba's one-off compilation (about 10 s in a fresh process) early,
  for example in a background thread while the first round trains.

``umap-learn`` is an optional dependency (the ``widgets`` extra). It is imported lazily inside
these functions, never when :mod:`alfaviz.core` is imported.
"""

from __future__ import annotations

import importlib
import logging
import time
import warnings
from contextlib import AbstractContextManager, nullcontext
from types import ModuleType
from typing import Any

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.metrics import euclidean_distances

from alfaviz._validation import as_embedding
from alfaviz.errors import AlfavizInputError

try:  # a dependency of scikit-learn, so normally present
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - defensive
    threadpool_limits = None  # type: ignore[assignment]

__all__ = [
    "DEFAULT_WARM_START_EPOCHS",
    "UMAP_FIT_MAX",
    "WARM_START_LEARNING_RATE",
    "align_to",
    "place_points",
    "project_2d",
    "umap_available",
    "warm_up_umap",
]

logger = logging.getLogger(__name__)

#: UMAP epochs used when ``previous`` is given and ``n_epochs`` is ``None``. Starting from the
#: previous layout needs far fewer epochs than UMAP's default of 500 (for up to 10,000 samples).
DEFAULT_WARM_START_EPOCHS = 100
#: UMAP's initial learning rate when starting from ``previous`` (UMAP's default is 1.0). A full
#: step size melts the old layout and re-shuffles points; a quarter keeps them near their old
#: places while reaching the same trustworthiness, even when the embedding changed completely.
WARM_START_LEARNING_RATE = 0.25

_UMAP_MISSING = (
    'method="umap" needs umap-learn, which is not installed. Install the widgets extra with '
    '`pip install "alfaviz[widgets]"` (or just `pip install umap-learn`), or pass method="pca".'
)

#: Above this many samples UMAP is fitted on a seeded random subset of this size, and every
#: other sample is placed at the inverse-distance-weighted mean of the 2-D places of its
#: :data:`PLACE_NEIGHBOURS` nearest subset samples (the start of UMAP's own ``transform``),
#: found in a :data:`PLACE_DIM`-dimensional PCA space of the subset. A full UMAP fit of 1M
#: samples takes tens of minutes on 2 cores; the subset fit and the placement take about a
#: minute, and the method used is logged and returned by ``project_2d(..., with_method=True)``.
UMAP_FIT_MAX = 20_000
PLACE_NEIGHBOURS = 10
PLACE_DIM = 32
_PLACE_BLOCK_CELLS = 1 << 24  # float32 distances per block when placing points (64 MB)

# UMAP rescales an array ``init`` to the box [0, 10] on each axis before optimising.
_UMAP_BOX = 10.0
# Below this many samples UMAP finds neighbours from the exact distance matrix (as UMAP does);
# from here on it uses its approximate nearest-neighbour descent.
_UMAP_EXACT_MAX = 4096


# Below about this many floating-point operations, BLAS runs on one thread: multi-threaded
# OpenBLAS on a busy machine (or next to torch's OpenMP threads) made a 1,347 x 64 PCA take
# 1.5 s instead of 0.01 s.
_SMALL_BLAS_FLOPS = 1e9


def _blas_threads(flops: float) -> AbstractContextManager[Any]:
    """One BLAS thread for small problems, where threads cost more than they save."""
    if threadpool_limits is None or flops > _SMALL_BLAS_FLOPS:
        return nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _import_umap() -> ModuleType | None:
    """Return the ``umap`` module, or ``None`` when umap-learn is not installed."""
    try:
        return importlib.import_module("umap")
    except ImportError:
        return None


def umap_available() -> bool:
    """Whether ``umap-learn`` can be imported (imports it when it can)."""
    return _import_umap() is not None


def _as_coords(x: Any, name: str, n_rows: int | None = None) -> np.ndarray:
    """Check that ``x`` is a finite ``(n_rows, 2)`` array and return it as float64."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise AlfavizInputError(
            f"{name} must be a numeric array of shape (n_samples, 2); got {type(x).__name__}."
        ) from exc
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise AlfavizInputError(
            f"{name} must have shape (n_samples, 2) (2-D coordinates); got shape {arr.shape}."
        )
    if n_rows is not None and arr.shape[0] != n_rows:
        raise AlfavizInputError(
            f"{name} has {arr.shape[0]} rows but there are {n_rows} samples; pass the previous "
            "round's coordinates of the same samples, in the same order."
        )
    if arr.shape[0] == 0:
        raise AlfavizInputError(f"{name} is empty (0 samples).")
    if not np.isfinite(arr).all():
        raise AlfavizInputError(f"{name} contains NaN or inf.")
    return arr


def align_to(coords: Any, previous: Any) -> np.ndarray:
    """Align ``coords`` to ``previous`` with rotation or reflection, uniform scale and shift.

    Solves the orthogonal Procrustes problem: it finds the orthogonal matrix ``R``, scale ``s`` and
    translation ``t`` minimising ``||s * coords @ R + t - previous||`` and returns the moved
    ``coords``. Distances between points are only scaled, so the layout itself is unchanged; it is
    just turned and moved to where the previous round had it. The inputs are not modified.

    Parameters
    ----------
    coords : array-like, shape (n_samples, 2)
        New coordinates.
    previous : array-like, shape (n_samples, 2)
        Coordinates of the same samples, in the same order, from the previous round.

    Returns
    -------
    numpy.ndarray, shape (n_samples, 2), float32
        ``coords`` rotated or reflected, scaled and shifted onto ``previous``.

    Raises
    ------
    AlfavizInputError
        If either array is not a finite ``(n_samples, 2)`` array or their lengths differ.
    """
    new = _as_coords(coords, "coords")
    ref = _as_coords(previous, "previous", n_rows=new.shape[0])
    mu_new, mu_ref = new.mean(axis=0), ref.mean(axis=0)
    a, b = new - mu_new, ref - mu_ref
    norm_a = float(np.sum(a * a))
    if norm_a <= np.finfo(np.float64).tiny:
        # All new points coincide: only the translation is defined.
        return np.broadcast_to(mu_ref, new.shape).astype(np.float32)
    u, sigma, vt = np.linalg.svd(a.T @ b)
    rotation = u @ vt
    scale = float(sigma.sum()) / norm_a
    return (scale * a @ rotation + mu_ref).astype(np.float32)


def _pca_2d(x: np.ndarray, random_state: int) -> np.ndarray:
    """First two principal components, zero-padded when fewer exist.

    The components are the top eigenvectors of the float64 covariance, accumulated over row
    blocks of about :data:`_PCA_BLOCK_BYTES`, so the pool is read three times and never copied
    whole (scikit-learn's full SVD of a 200k × 512 pool took 14 s and 2.3 GB here; this takes
    a second or two and O(dim²) beyond the output). Signs follow scikit-learn's rule: the
    largest-magnitude loading of each component is positive. ``random_state`` is unused (the
    result is exact); it is kept for the signature the methods share.
    """
    del random_state
    n, dim = x.shape
    out = np.zeros((n, 2), dtype=np.float64)
    k = min(2, n, dim)
    if n < 2:
        return out  # one sample: it sits at the origin
    step = max(1, _PCA_BLOCK_BYTES // (8 * dim))
    total = np.zeros(dim, dtype=np.float64)
    for s in range(0, n, step):
        total += np.asarray(x[s : s + step], dtype=np.float64).sum(axis=0)
    mean = total / n
    cov = np.zeros((dim, dim), dtype=np.float64)
    for s in range(0, n, step):
        blk = np.asarray(x[s : s + step], dtype=np.float64) - mean
        cov += blk.T @ blk
    scale = max(1.0, float(np.abs(mean).max()))
    if not np.diag(cov).max() > n * (1e-12 * scale) ** 2:
        return out  # all samples equal (to rounding): every sample sits at the origin
    _, vecs = np.linalg.eigh(cov)
    comp = vecs[:, ::-1][:, :k]  # (dim, k), largest variance first
    comp *= np.sign(comp[np.abs(comp).argmax(axis=0), np.arange(k)])
    for s in range(0, n, step):
        out[s : s + step, :k] = (np.asarray(x[s : s + step], dtype=np.float64) - mean) @ comp
    return out


_PCA_BLOCK_BYTES = 32 << 20
"""Rows of the pool taken at once, as float64, by :func:`_pca_2d`."""


def _umap_init(previous: np.ndarray) -> np.ndarray | None:
    """Previous coordinates turned and scaled into UMAP's [0, 10] box, or ``None`` if unusable.

    UMAP min-max scales an array ``init`` to [0, 10] on *each axis separately*, which would
    stretch a layout whose width and height differ. The layout is therefore first rotated to an
    angle at which its width equals its height, so that UMAP's rescaling is uniform and the start
    is an undistorted copy of the previous layout (the final :func:`align_to` undoes the turn).
    ``None`` when all previous points coincide.

    Parameters
    ----------
    previous : numpy.ndarray, shape (n_samples, 2)

    Returns
    -------
    numpy.ndarray, shape (n_samples, 2), float32, or None
    """
    centred = previous - previous.mean(axis=0)
    size = float(np.abs(centred).max())
    if size <= 1e-12 * max(1.0, float(np.abs(previous).max())):
        return None
    # Width minus height changes sign between 0 and 90 degrees; take the best of a fine grid.
    angles = np.linspace(0.0, np.pi / 2, 181)
    cos, sin = np.cos(angles), np.sin(angles)
    along = centred[:, :1] * cos + centred[:, 1:] * sin  # (n_samples, n_angles)
    across = -centred[:, :1] * sin + centred[:, 1:] * cos
    width, height = np.ptp(along, axis=0), np.ptp(across, axis=0)
    best = int(np.argmin(np.abs(np.log((width + size * 1e-9) / (height + size * 1e-9)))))
    turned = np.stack([along[:, best], across[:, best]], axis=1)
    lo, span = turned.min(axis=0), np.ptp(turned, axis=0)
    return np.ascontiguousarray(_UMAP_BOX * (turned - lo) / span.max(), dtype=np.float32)


def _umap_2d(
    umap: ModuleType,
    x: np.ndarray,
    *,
    init: np.ndarray | str,
    random_state: int,
    n_neighbors: int,
    min_dist: float,
    n_epochs: int | None,
    learning_rate: float = 1.0,
) -> np.ndarray:
    """Fit UMAP with euclidean distances and return its ``(n_samples, 2)`` embedding."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    small = x.shape[0] < _UMAP_EXACT_MAX
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=n_neighbors,
        min_dist=min_dist,
        n_epochs=n_epochs,
        learning_rate=learning_rate,
        init=init,
        metric="precomputed" if small else "euclidean",
        random_state=random_state,
        n_jobs=1,  # a fixed random_state forces one thread anyway; say so to avoid a warning
    )
    if not small:
        return np.asarray(reducer.fit_transform(x))
    # For small data UMAP computes this exact distance matrix itself, but with one Python call per
    # pair (about 1 s for 1,350 samples); BLAS gives the same matrix, up to rounding, at once.
    dmat = euclidean_distances(x.astype(np.float64))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="using precomputed metric", category=UserWarning)
        return np.asarray(reducer.fit_transform(dmat))


def project_2d(
    embeddings: Any,
    *,
    method: str = "auto",
    previous: Any = None,
    random_state: int = 0,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    n_epochs: int | None = None,
    with_method: bool = False,
) -> np.ndarray | tuple[np.ndarray, str]:
    """Project embeddings to 2-D coordinates for the scatter view.

    With UMAP and more than :data:`UMAP_FIT_MAX` samples, UMAP is fitted on a seeded subset
    and the other samples are placed by their nearest subset samples (see
    :data:`UMAP_FIT_MAX`); PCA always uses every sample.

    Parameters
    ----------
    embeddings : numpy.ndarray, torch.Tensor or row reader, shape (n_samples, dim)
        One embedding per sample. Tensors on a GPU are copied to the CPU. A
        :class:`numpy.memmap`, or a reader whose ``[start:stop]`` and ``[index_array]`` give
        float rows as arrays (a sharded round's embeddings), is read in blocks above
        :data:`UMAP_FIT_MAX` samples (the subset, the placement and the PCA) and never held
        whole.
    method : {"auto", "umap", "pca"}
        ``"auto"`` uses UMAP when umap-learn is installed and there are more than
        ``n_neighbors + 1`` samples, and PCA otherwise.
    previous : array-like, shape (n_samples, 2), optional
        Coordinates of the same samples, in the same order, from the previous round. UMAP starts
        from them, and the result of either method is aligned to them with :func:`align_to`, so
        points do not jump between rounds.
    random_state : int
        Seed; the output is deterministic for a fixed seed. For UMAP a seed also means a single
        thread.
    n_neighbors : int
        UMAP neighbourhood size (local versus global structure).
    min_dist : float
        UMAP minimum distance between embedded points (how tightly clusters pack).
    n_epochs : int, optional
        UMAP optimisation epochs. ``None`` means :data:`DEFAULT_WARM_START_EPOCHS` (100, at
        learning rate :data:`WARM_START_LEARNING_RATE`) when starting from ``previous``, and
        UMAP's own default otherwise (500 for up to 10,000 samples). For 1,347 samples of
        dimension 64 on one CPU core a fit takes about 0.5 s from ``previous``, 0.7 s with 200
        epochs and 1.7 s with 500, after a one-off numba compilation of about 10 s per process
        (see :func:`warm_up_umap`).
    with_method : bool
        Also return a sentence naming the method used (``"umap"``, ``"pca"``, or the subset
        fit with its sizes).

    Returns
    -------
    numpy.ndarray, shape (n_samples, 2), float32
        The coordinates; with ``with_method``, a tuple ``(coords, method)``.

    Raises
    ------
    AlfavizInputError
        If ``embeddings`` is not a finite 2-D array with at least one row, ``previous`` does not
        have shape ``(n_samples, 2)``, ``method`` is unknown, or ``method="umap"`` is asked for
        without umap-learn installed or with too few samples.
    """
    if method not in ("auto", "umap", "pca"):
        raise AlfavizInputError(f'method must be "auto", "umap" or "pca"; got {method!r}.')
    if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, (int, np.integer)):
        raise AlfavizInputError(f"n_neighbors must be an integer >= 2; got {n_neighbors!r}.")
    if n_neighbors < 2:
        raise AlfavizInputError(f"n_neighbors must be an integer >= 2; got {n_neighbors}.")
    if n_epochs is not None and (
        isinstance(n_epochs, bool) or not isinstance(n_epochs, (int, np.integer)) or n_epochs < 1
    ):
        raise AlfavizInputError(f"n_epochs must be a positive integer or None; got {n_epochs!r}.")
    if _is_row_reader(embeddings):
        x = _checked_rows(embeddings)
    else:
        z = as_embedding(embeddings, "embeddings")
        x = z.detach().cpu().numpy()
    n = x.shape[0]
    prev = None if previous is None else _as_coords(previous, "previous", n_rows=n)

    enough = n > n_neighbors + 1
    umap: ModuleType | None = None
    if method == "umap":
        if not enough:
            raise AlfavizInputError(
                f'method="umap" needs more than n_neighbors + 1 = {n_neighbors + 1} samples; got '
                f'{n}. Lower n_neighbors, or use method="pca" or "auto".'
            )
        umap = _import_umap()
        if umap is None:
            raise AlfavizInputError(_UMAP_MISSING)
    elif method == "auto" and enough:
        umap = _import_umap()
        if umap is None:
            logger.info("umap-learn is not installed; projecting with PCA instead.")

    start = time.perf_counter()
    dim = x.shape[1]
    flops = n * n * dim if umap is not None else n * dim * min(n, dim)
    with _blas_threads(flops):
        coords, used = _project(x, umap, prev, random_state, n_neighbors, min_dist, n_epochs)
    out = align_to(coords, prev) if prev is not None else coords.astype(np.float32)
    logger.info(
        "projected %d samples of dimension %d to 2-D with %s%s in %.2f s",
        n,
        dim,
        used,
        ", aligned to the previous round" if prev is not None else "",
        time.perf_counter() - start,
    )
    return (out, used) if with_method else out


def _is_row_reader(x: Any) -> bool:
    if isinstance(x, np.memmap):
        return True
    if isinstance(x, (np.ndarray, torch.Tensor)):
        return False
    shape = getattr(x, "shape", None)
    return hasattr(x, "__getitem__") and shape is not None and len(shape) == 2


_CHECK_ROWS = 65_536


def _checked_rows(rows: Any) -> Any:
    """A row reader checked block by block (2-D, some rows, finite); small ones are read."""
    n, dim = (int(v) for v in rows.shape)
    if n < 1 or dim < 1:
        raise AlfavizInputError(
            f"embeddings must be 2-D with at least one row and column; got shape {(n, dim)}."
        )
    if n <= UMAP_FIT_MAX:
        x = np.asarray(rows[0:n])
        if x.dtype.kind != "f":
            x = x.astype(np.float32)
        if not np.isfinite(x).all():
            raise AlfavizInputError("embeddings contain NaN or inf; check the model's outputs.")
        return x
    for s in range(0, n, _CHECK_ROWS):
        if not np.isfinite(np.asarray(rows[s : s + _CHECK_ROWS])).all():
            raise AlfavizInputError(
                f"embeddings contain NaN or inf (in rows {s}..{min(s + _CHECK_ROWS, n) - 1}); "
                "check the model's outputs."
            )
    return rows


def _project(
    x: np.ndarray,
    umap: ModuleType | None,
    prev: np.ndarray | None,
    random_state: int,
    n_neighbors: int,
    min_dist: float,
    n_epochs: int | None,
) -> tuple[np.ndarray, str]:
    """Raw 2-D coordinates (not yet aligned) and the name of the method used."""
    if umap is not None and x.shape[0] > UMAP_FIT_MAX:
        return _project_subset(x, umap, prev, random_state, n_neighbors, min_dist, n_epochs)
    if umap is not None:
        init: np.ndarray | str = "spectral"
        epochs, learning_rate = n_epochs, 1.0
        if prev is not None:
            warm = _umap_init(prev)
            if warm is None:
                logger.info("all previous coordinates coincide; UMAP starts afresh.")
            else:
                init, learning_rate = warm, WARM_START_LEARNING_RATE
                epochs = DEFAULT_WARM_START_EPOCHS if n_epochs is None else n_epochs
        coords = _umap_2d(
            umap,
            x,
            init=init,
            random_state=random_state,
            n_neighbors=n_neighbors,
            min_dist=min_dist,
            n_epochs=None if epochs is None else int(epochs),
            learning_rate=learning_rate,
        )
        used = "umap (from previous layout)" if not isinstance(init, str) else "umap"
        return coords, used
    return _pca_2d(x, random_state), "pca"


def _project_subset(
    x: np.ndarray,
    umap: ModuleType,
    prev: np.ndarray | None,
    random_state: int,
    n_neighbors: int,
    min_dist: float,
    n_epochs: int | None,
) -> tuple[np.ndarray, str]:
    """UMAP on a seeded subset of :data:`UMAP_FIT_MAX` samples; the rest placed near theirs."""
    n, dim = x.shape
    rng = np.random.default_rng(random_state)
    subset = np.sort(rng.choice(n, size=UMAP_FIT_MAX, replace=False))
    sub_prev = None if prev is None else prev[subset]
    sub_xy, _ = _project(x[subset], umap, sub_prev, random_state, n_neighbors, min_dist, n_epochs)
    rest = np.ones(n, dtype=bool)
    rest[subset] = False
    k = min(PLACE_DIM, dim, UMAP_FIT_MAX)
    pca = PCA(n_components=k, svd_solver="randomized", random_state=random_state)
    sub = x[subset].astype(np.float32)
    ref = pca.fit(sub).transform(sub).astype(np.float32)  # the same map as for the rest
    out = np.empty((n, 2), dtype=np.float64)
    out[subset] = sub_xy
    idx = np.flatnonzero(rest)
    for s in range(0, idx.size, 65_536):  # the PCA of the rest, in pieces
        part = idx[s : s + 65_536]
        pts = pca.transform(x[part].astype(np.float32)).astype(np.float32)
        out[part] = _place_near(pts, ref, sub_xy, PLACE_NEIGHBOURS)
    used = (
        f"umap on a random {UMAP_FIT_MAX:,}-sample subset; the other {idx.size:,} samples "
        f"placed at the weighted mean of their {PLACE_NEIGHBOURS} nearest subset samples "
        f"(in a {k}-d PCA space)"
    )
    return out, used


def _place_near(points: np.ndarray, ref: np.ndarray, ref_xy: np.ndarray, k: int) -> np.ndarray:
    """:func:`place_points` without its checks: float32 distances by torch's matmul, the ``k``
    nearest by its top-k, in blocks of points whose distance matrix holds about
    :data:`_PLACE_BLOCK_CELLS` entries."""
    import torch

    p = torch.from_numpy(np.ascontiguousarray(points, dtype=np.float32))
    r = torch.from_numpy(np.ascontiguousarray(ref, dtype=np.float32))
    xy = torch.from_numpy(np.ascontiguousarray(ref_xy, dtype=np.float64))
    r_sq = (r * r).sum(1)
    out = torch.empty((p.shape[0], 2), dtype=torch.float64)
    k = int(max(1, min(k, r.shape[0])))
    step = max(16, _PLACE_BLOCK_CELLS // max(r.shape[0], 1))  # distance blocks of ~64 MB
    for s in range(0, p.shape[0], step):
        blk = p[s : s + step]
        # ‖r‖² − 2 p·r ranks a row's references as ‖p − r‖² does (‖p‖² is the same along it),
        # in one fused pass
        d2 = torch.addmm(r_sq, blk, r.T, alpha=-2.0)
        _, nn = torch.topk(d2, k, dim=1, largest=False)
        # the weights from the exact distances to those k (the expanded form above cancels:
        # a point's distance to its own copy would come out near 1e-3, not 0)
        diff = blk.double()[:, None, :] - r[nn].double()
        w = 1.0 / diff.square().sum(2).sqrt().clamp_min(1e-12)
        w /= w.sum(1, keepdim=True)
        out[s : s + step] = torch.einsum("mk,mkc->mc", w, xy[nn])
    return out.numpy()


def place_points(points: Any, reference: Any, reference_coords: Any, *, k: int = 10) -> np.ndarray:
    """Place new points on an existing 2-D map, from their nearest reference points.

    Each point goes to the inverse-distance-weighted mean of the 2-D coordinates of its ``k``
    nearest reference embeddings (the out-of-sample rule UMAP itself starts its ``transform``
    from). Used for the mixed points along an interpolation path, which the map draws as a
    curve through the layout instead of a straight line.

    Parameters
    ----------
    points : array-like, shape (m, dim)
    reference : array-like, shape (n, dim)
        The embeddings the map was computed from.
    reference_coords : array-like, shape (n, 2)
        Their 2-D coordinates.
    k : int
        Neighbours per point (at most ``n``).

    Returns
    -------
    numpy.ndarray of float32, shape (m, 2)
    """
    pts = np.asarray(points, dtype=np.float32)
    ref = np.asarray(reference, dtype=np.float32)
    xy = _as_coords(reference_coords, "reference_coords", n_rows=ref.shape[0])
    if pts.ndim != 2 or ref.ndim != 2 or pts.shape[1] != ref.shape[1]:
        raise AlfavizInputError(
            f"points {pts.shape} and reference {ref.shape} must be 2-D with the same width."
        )
    if pts.shape[0] == 0:
        return np.zeros((0, 2), dtype=np.float32)
    return _place_near(pts, ref, xy, k).astype(np.float32)


def warm_up_umap(random_state: int = 0) -> bool:
    """Fit UMAP once on a tiny random array so numba compiles its kernels now.

    The first UMAP fit in a process spends about 10 s compiling; calling this early (at start-up
    or in a background thread) moves that cost off the first round. Data sets of 4,096 samples or
    more use an approximate neighbour search whose kernels are compiled on their first fit.

    Parameters
    ----------
    random_state : int
        Seed of the tiny random array and of the fit.

    Returns
    -------
    bool
        ``True`` when UMAP was fitted, ``False`` when umap-learn is not installed (a no-op).
    """
    umap = _import_umap()
    if umap is None:
        logger.info("umap-learn is not installed; nothing to warm up.")
        return False
    start = time.perf_counter()
    x = np.random.default_rng(random_state).normal(size=(64, 8)).astype(np.float32)
    _umap_2d(
        umap,
        x,
        init="spectral",
        random_state=random_state,
        n_neighbors=15,
        min_dist=0.1,
        n_epochs=10,
    )
    logger.info("UMAP warmed up (numba compilation) in %.2f s", time.perf_counter() - start)
    return True
