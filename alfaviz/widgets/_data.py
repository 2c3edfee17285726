"""What the views read: a run's frames per round, cached, and the writer's labelling actions."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from alfaviz import schema
from alfaviz.errors import AlfavizInputError, RunStoreError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from alfaviz.analysis.ab import BatchComparison
    from alfaviz.session import Experiment
    from alfaviz.widgets._state import AppState

__all__ = ["WATCH_INTERVAL_S", "RunData"]

log = logging.getLogger(__name__)

WATCH_INTERVAL_S = 1.0
"""Seconds between two looks of :meth:`RunData.watch` at the run directory (by default)."""

_QUERIED = "queried"
_PATHS = "paths"
_PATHS_EVENT = "paths"
_SAMPLES = "samples"
_SCORES_EVENT = "scores"
_ROUND_EVENTS = frozenset({"round_started", "round_written"})
_LOOK_EVENTS = frozenset({_PATHS_EVENT, _SCORES_EVENT})  # looking: no label, no round


class RunData:
    """A run seen by the views: frames per round (conformed, cached) and labelling actions.

    Parameters
    ----------
    run : Experiment, or str or Path
        A live :class:`~alfaviz.session.Experiment`, or a run directory, which is reopened
        with :func:`alfaviz.open_run`.
    read_only : bool, optional
        Refuse labelling actions. Defaults to ``False`` for a live experiment with human
        labelling and ``True`` otherwise (a run labelled by the oracle, or one reopened only
        to be looked at).
    watch : float or bool, optional
        Start :meth:`watch` at once: ``True`` polls every :data:`WATCH_INTERVAL_S` seconds, a
        number every that many seconds. Off by default.

    Notes
    -----
    Frames are read from the run store and cached per round; the cache is dropped on every
    event of the run (a label, a skip, an undo, a round), a ``paths`` event drops only that
    round's paths and a ``scores`` event only that round's samples. The strategy A/B
    comparisons (:meth:`compare_batches`) depend only on a round's stored inputs and are
    dropped only when a round is started or written; the hypothesis rates
    (:meth:`hypothesis`) depend on the labels too and are dropped on every event but
    ``paths`` and ``scores``. Both are slow the first time (they query strategies) and are
    meant to be asked for off the UI thread: they are thread-safe, and two threads asking
    for the same one compute it once. Views never write frames:
    the only writes go through :meth:`submit_label`, :meth:`skip` and :meth:`undo`,
    :meth:`project_paths` (which stores the paths it projects with the round) and
    :meth:`compare_strategies` (which stores the scores it records with the round), which are
    the Experiment's own.

    Other tabs and processes on the same run (each page served by ``alfaviz serve`` has its
    own kernel and its own Experiment) are noticed by :meth:`sync`, which the :meth:`watch`
    thread calls about once a second: their labels, undos, rounds and derived frames arrive
    as the Experiment's events, which drop these caches and bump the attached states like
    this session's own changes do.
    """

    def __init__(
        self,
        run: Experiment | str | Path,
        *,
        read_only: bool | None = None,
        watch: float | bool | None = None,
    ) -> None:
        from alfaviz.session import Experiment, open_run

        if isinstance(run, (str, Path)):
            run = open_run(run)
        if not isinstance(run, Experiment):
            raise AlfavizInputError(
                f"run must be an Experiment or a run directory; got {type(run).__name__}."
            )
        self.experiment = run
        self.read_only = (run.labelling != "human") if read_only is None else bool(read_only)
        self._cache: dict[tuple[str, int], pd.DataFrame] = {}
        self._lock = threading.Lock()
        self.version = 0
        self._features: np.ndarray | None = None
        self._comparisons: dict[tuple[int, tuple[str, ...]], BatchComparison] = {}
        self._hypotheses: dict[str, pd.DataFrame] = {}
        self._round_gen = 0  # bumped by round events (drops the comparisons)
        self._eps_cache: tuple[tuple[int, int], tuple[np.ndarray, np.ndarray]] | None = None
        self._label_gen = 0  # bumped by every event that is not only looking (drops rates)
        self._compute_lock = threading.Lock()  # one slow computation at a time
        self._unsubscribe = run.subscribe(self._on_event)
        self._watcher: threading.Thread | None = None
        self._watch_stop = threading.Event()
        self._interval = WATCH_INTERVAL_S
        self._watch_problem: str | None = None
        if watch is not None and watch is not False:
            self.watch(WATCH_INTERVAL_S if watch is True else watch)

    # events ------------------------------------------------------------------------------
    def _on_event(self, event: Any) -> None:
        with self._lock:
            if event.kind == _PATHS_EVENT:  # only that round's paths changed
                self._cache.pop((_PATHS, int(event.round)), None)
            elif event.kind == _SCORES_EVENT:  # only that round's score:<strategy> columns
                self._cache.pop((_SAMPLES, int(event.round)), None)
            else:
                self._cache.clear()
            if event.kind in _ROUND_EVENTS:
                self._comparisons.clear()
                self._round_gen += 1
            if event.kind not in _LOOK_EVENTS:
                self._hypotheses.clear()
                self._label_gen += 1
            self.version += 1

    def attach(self, state: AppState) -> Callable[[], None]:
        """Bump ``state.data_version`` on every change of the run; returns an unsubscribe.

        First catches up with other sessions (:meth:`sync`), so that a page attached to an
        Experiment opened a while ago (Voila's preheated kernel) starts from the run as it is
        on disk. The state's round is moved to the last round written, if it is beyond it, and
        follows every round written later, here or (through :meth:`sync`) elsewhere; a new
        round drops the selected samples that are no longer in the pool (the batch just
        labelled), so the gallery and heatmap show the new round's samples.
        """
        self.sync()
        if self.n_rounds and state.round >= self.n_rounds:
            state.round = self.n_rounds - 1

        def bump(event: Any) -> None:
            if event.kind == "round_written":
                state.round = int(event.round)
                if state.selected_ids:  # a selection of the batch just labelled is stale
                    pool = set(self.experiment.unlabelled_ids.tolist())
                    state.selected_ids = tuple(i for i in state.selected_ids if i in pool)
            state.bump()

        return self.experiment.subscribe(bump)

    def close(self) -> None:
        """Stop the :meth:`watch` thread, if any, and stop listening to the run."""
        self.unwatch()
        self._unsubscribe()

    # other sessions on the same run ------------------------------------------------------
    def sync(self) -> bool:
        """Absorb what other tabs or processes committed to the run since the last look.

        Calls :meth:`alfaviz.session.Experiment.sync` (one small SQL query when nothing
        changed). Their labels, undos and rounds come as the Experiment's events, which drop
        the caches and bump ``data_version`` of every attached state (a new round also moves
        the state's round to it).

        Returns
        -------
        bool
            Whether anything was absorbed.
        """
        return self.experiment.sync()

    @property
    def watching(self) -> bool:
        """Whether the :meth:`watch` thread is running."""
        t = self._watcher
        return t is not None and t.is_alive()

    @property
    def watch_interval(self) -> float:
        """Seconds between two looks of the :meth:`watch` thread."""
        return self._interval

    def watch(self, interval: float = WATCH_INTERVAL_S) -> None:
        """Look for other sessions' changes every ``interval`` seconds, from a daemon thread.

        The views then show other tabs' and processes' labels and rounds within about
        ``interval`` seconds, without a reload. The thread only asks whether anything changed
        (:meth:`~alfaviz.session.Experiment.needs_sync`, one small SQL query); when something
        did, it has :meth:`sync` run in the kernel's main thread (scheduled on the kernel's
        event loop, where the widgets' own handlers run, so a redraw never races a click or a
        key) and waits for it. Outside a kernel (a script, the tests) it syncs in its own
        thread. Calling this again changes the interval; :meth:`unwatch` or :meth:`close`
        stops it. A look that fails (a damaged round written elsewhere, say) is logged once
        and retried at the next interval.

        Parameters
        ----------
        interval : float
            Seconds, at least 0.05: :data:`WATCH_INTERVAL_S` by default.

        Raises
        ------
        AlfavizInputError
            For an interval that is not a number of seconds >= 0.05.
        """
        if (
            isinstance(interval, bool)
            or not isinstance(interval, (int, float, np.integer, np.floating))
            or not math.isfinite(float(interval))
            or float(interval) < 0.05
        ):
            raise AlfavizInputError(
                f"interval must be a number of seconds >= 0.05; got {interval!r}. Pass e.g. 1.0."
            )
        self._interval = float(interval)
        with self._lock:
            if self.watching:
                return
            self._watch_stop = threading.Event()
            self._watcher = threading.Thread(
                target=self._watch_loop, args=(self._watch_stop, _kernel_dispatch()),
                name="alfaviz-sync", daemon=True,
            )  # fmt: skip
            self._watcher.start()

    def unwatch(self, timeout: float = 5.0) -> None:
        """Stop the :meth:`watch` thread (waits up to ``timeout`` seconds for it to end)."""
        with self._lock:
            thread, self._watcher = self._watcher, None
            self._watch_stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _look(self) -> None:
        """One :meth:`sync`; a failure is logged (once per distinct problem), never raised."""
        try:
            self.experiment.sync()
        except Exception as exc:  # keep watching: the next look may succeed
            problem = f"{type(exc).__name__}: {exc}"
            if problem != self._watch_problem:
                log.warning("watching %s: %s", self.experiment.path, problem)
                self._watch_problem = problem
        else:
            self._watch_problem = None

    def _watch_loop(self, stop: threading.Event, dispatch: Dispatch | None) -> None:
        while not stop.wait(self._interval):
            try:
                if not self.experiment.needs_sync():
                    continue
            except Exception:  # the look itself reports it
                pass
            if dispatch is None:
                self._look()
                continue
            done = threading.Event()

            def look(done: threading.Event = done) -> None:
                try:
                    self._look()
                finally:
                    done.set()

            dispatch(look)
            while not done.wait(0.25):  # the main thread is busy: wait, unless stopped
                if stop.is_set():
                    return

    # facts -------------------------------------------------------------------------------
    @property
    def n_rounds(self) -> int:
        """Rounds written so far."""
        return int(self.experiment.round)

    @property
    def class_names(self) -> tuple[str, ...]:
        """Name of each class id."""
        return tuple(str(c) for c in self.experiment.data.class_names)

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    @property
    def budget(self) -> int:
        """Samples queried per round."""
        return int(self.experiment.budget)

    @property
    def is_image(self) -> bool:
        """Whether the samples are images (the gallery shows thumbnails)."""
        return bool(self.experiment.data.is_image)

    def _check_round(self, round: int) -> int:
        if isinstance(round, bool) or not isinstance(round, (int, np.integer)):
            raise AlfavizInputError(f"round must be an integer; got {round!r}.")
        if not 0 <= int(round) < max(self.n_rounds, 1) or self.n_rounds == 0:
            raise AlfavizInputError(
                f"round {round} has not been written; rounds 0..{self.n_rounds - 1} exist."
                if self.n_rounds
                else "no round has been written yet; run one with Experiment.step()."
            )
        return int(round)

    # frames ------------------------------------------------------------------------------
    def _cached(self, kind: str, round: int, read: Callable[[], pd.DataFrame]) -> pd.DataFrame:
        key = (kind, round)
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        df = read()
        with self._lock:
            self._cache[key] = df
        return df

    def rounds(self) -> pd.DataFrame:
        """One row per round (:data:`~alfaviz.schema.ROUNDS`)."""
        return self._cached("rounds", -1, lambda: self.experiment.rounds)

    def samples(self, round: int) -> pd.DataFrame:
        """One row per train sample in ``round`` (:data:`~alfaviz.schema.SAMPLES`).

        After the round's stored columns come one float32 column
        :func:`score_column(name) <alfaviz.schema.score_column>` (``score:<name>``) per
        strategy recorded for the round by :meth:`compare_strategies` (here or in any
        earlier session on this run), in the order they were recorded: the strategy's score
        of each sample of the round's unlabelled pool, NaN for the others (the labelled
        ones). The map offers them as colourings.

        Returns
        -------
        pandas.DataFrame
            Cached until the run changes.
        """
        r = self._check_round(round)
        return self._cached(_SAMPLES, r, lambda: self._samples(r))

    def _samples(self, r: int) -> pd.DataFrame:
        samples = schema.conform(self.experiment.store.read_samples(r), schema.SAMPLES)
        scores = self.experiment.round_scores(r)
        if not len(scores):
            return samples
        return schema.conform(_with_score_columns(samples, scores), schema.SAMPLES)

    def flips(self, round: int) -> pd.DataFrame:
        """One row per (sample, anchor) in ``round`` (:data:`~alfaviz.schema.FLIPS`)."""
        r = self._check_round(round)
        store = self.experiment.store
        return self._cached("flips", r, lambda: schema.conform(store.read_flips(r), schema.FLIPS))

    def flips_for(self, round: int, sample_ids: Any) -> pd.DataFrame:
        """The flips rows of ``sample_ids`` in ``round``, for any sample of its pool.

        A large pool's round keeps only its candidates' and selected samples' rows (see
        :meth:`~alfaviz.session.Experiment.critical_eps`); a sample without rows there gets
        them from the round's critical-ε matrix: not flipped, no flip label, the stored
        critical ε and an unknown (NaN) step norm. Samples the round did not score get none.
        """
        r = self._check_round(round)
        ids = np.asarray(sample_ids, dtype=np.int64).reshape(-1)
        frame = self.flips(r)
        fid = frame[schema.SAMPLE_ID].to_numpy(np.int64)
        rows = frame[np.isin(fid, ids)]
        missing = np.setdiff1d(ids, fid)
        if missing.size == 0 or not self.experiment.store.has_critical_eps(r):
            return rows
        cid, matrix = self._critical_eps(r)
        pos = np.searchsorted(cid, missing)
        ok = pos < cid.size
        ok[ok] = cid[pos[ok]] == missing[ok]
        hit, at = missing[ok], pos[ok]
        n_cls = matrix.shape[1]
        made = pd.DataFrame(
            {
                schema.ROUND: np.full(hit.size * n_cls, r, dtype=np.int64),
                schema.SAMPLE_ID: np.repeat(hit, n_cls),
                schema.ANCHOR_CLASS: np.tile(np.arange(n_cls, dtype=np.int64), hit.size),
                schema.FLIPPED: np.zeros(hit.size * n_cls, dtype=bool),
                schema.FLIP_TO: np.full(hit.size * n_cls, -1, dtype=np.int64),
                schema.CRITICAL_EPS: matrix[at].astype(np.float64).ravel(),
                schema.STEP_NORM: np.full(hit.size * n_cls, np.nan),
            }
        )
        return schema.conform(pd.concat([rows, made], ignore_index=True), schema.FLIPS)

    def _critical_eps(self, r: int) -> tuple[np.ndarray, np.ndarray]:
        """The stored critical-ε matrix of round ``r``, rows sorted by sample id, cached."""
        key = (r, self._round_gen)
        hit = self._eps_cache
        if hit is None or hit[0] != key:
            cid, matrix = self.experiment.store.read_critical_eps(r)
            order = np.argsort(cid, kind="stable")
            hit = self._eps_cache = (key, (cid[order], matrix[order]))
        return hit[1]

    def queried(self, round: int) -> pd.DataFrame:
        """The batch ``round`` asked for, in pick order (:data:`~alfaviz.schema.QUERIED`)."""
        r = self._check_round(round)
        return self._cached("queried", r, lambda: self._extra(r, _QUERIED, schema.QUERIED))

    def paths(self, round: int) -> pd.DataFrame:
        """Predictions along the interpolation paths known for ``round``.

        The paths stored with the round for its batch, then those projected on demand for
        other samples (:meth:`project_paths`, here or in any earlier session on this run),
        each sample once.

        Returns
        -------
        pandas.DataFrame
            Conformed to :data:`~alfaviz.schema.PATHS`; cached until the run changes.
        """
        r = self._check_round(round)
        return self._cached(_PATHS, r, lambda: self.experiment.round_paths(r))

    def project_paths(self, sample_ids: Any, round: int) -> pd.DataFrame:
        """The interpolation paths of any ``sample_ids`` in ``round``, computed once.

        Calls :meth:`alfaviz.session.Experiment.project_paths` (the core computes them; a
        view never runs the model itself), then drops this round's cached :meth:`paths`, so
        the next read includes them. The Experiment's ``paths`` event, fired when new paths
        were added, bumps ``data_version`` of an attached state, so the views redraw. Looking
        at a run does not write labels, so this is allowed on a read-only :class:`RunData`;
        a run directory without write permission keeps the paths in memory.

        Parameters
        ----------
        sample_ids : int or array-like of int
            Global ids, at most :data:`~alfaviz.session.MAX_PATH_SAMPLES` distinct ones.
        round : int
            A written round.

        Returns
        -------
        pandas.DataFrame
            Conformed to :data:`~alfaviz.schema.PATHS`, the samples in the order asked for.
        """
        r = self._check_round(round)
        frame = self.experiment.project_paths(sample_ids, round=r)
        with self._lock:
            self._cache.pop((_PATHS, r), None)
        return frame

    def compare_strategies(self, round: int, strategies: Any = None) -> pd.DataFrame:
        """What other strategies would score and pick on ``round``, computed once.

        Calls :meth:`alfaviz.session.Experiment.compare_strategies` (the core queries the
        strategies; a view never runs the model itself), then drops this round's cached
        :meth:`samples`, so the next read carries a ``score:<strategy>`` column for each.
        The Experiment's ``scores`` event, fired when new strategies were recorded, bumps
        ``data_version`` of an attached state, so the views redraw. Looking at a run does not
        write labels, so this is allowed on a read-only :class:`RunData`; a run directory
        without write permission keeps the scores in memory.

        Parameters
        ----------
        round : int
            A written round.
        strategies : str or sequence of str, optional
            Registered names; by default every one other than the run's own.

        Returns
        -------
        pandas.DataFrame
            Conformed to :data:`~alfaviz.schema.STRATEGY_SCORES`.
        """
        r = self._check_round(round)
        frame = self.experiment.compare_strategies(strategies, round=r)
        with self._lock:
            self._cache.pop((_SAMPLES, r), None)
        return frame

    # strategy A/B and the hypothesis (slow the first time: ask off the UI thread) ---------
    def _ab_names(self, strategies: Any) -> tuple[str, ...]:
        from alfaviz.analysis.ab import AB_STRATEGIES

        if strategies is None:
            return tuple(AB_STRATEGIES)
        if isinstance(strategies, str):
            return (strategies,)
        return tuple(str(s) for s in strategies)

    def cached_comparison(self, round: int, strategies: Any = None) -> BatchComparison | None:
        """The :meth:`compare_batches` result of ``round`` if it is at hand, else None.

        Never computes anything (safe on the UI thread).
        """
        r = self._check_round(round)
        with self._lock:
            return self._comparisons.get((r, self._ab_names(strategies)))

    def comparison_recorded(self, round: int, strategies: Any = None) -> bool:
        """Whether every strategy of a :meth:`compare_batches` of ``round`` is recorded.

        Then the comparison queries nothing and is quick (it reads the recorded batches).
        Reads the round's recorded scores (milliseconds); queries nothing.
        """
        r = self._check_round(round)
        own = _strategy_key(str(self.experiment.strategy.name))
        need = {_strategy_key(n) for n in self._ab_names(strategies)} - {own}
        recorded = self.experiment.round_scores(r)[schema.STRATEGY].astype(str).tolist()
        return need <= {_strategy_key(n) for n in recorded}

    def compare_batches(self, round: int, strategies: Any = None) -> BatchComparison:
        """The run's own batch on ``round`` beside other strategies' batches, computed once.

        Calls :func:`alfaviz.analysis.ab.compare_batches` on the run (which queries each
        strategy not recorded yet through :meth:`compare_strategies`' core twin and records
        it with the run; BADGE and CoreSet can take seconds, so call this off the UI thread).
        The result is kept until a round is started or written: a round's batches depend
        only on its stored inputs, not on later labels.

        Parameters
        ----------
        round : int
            A written round.
        strategies : str or sequence of str, optional
            Registered names; :data:`alfaviz.analysis.ab.AB_STRATEGIES` by default.

        Returns
        -------
        alfaviz.analysis.ab.BatchComparison
        """
        from alfaviz.analysis.ab import compare_batches

        r = self._check_round(round)
        names = self._ab_names(strategies)
        key = (r, names)
        with self._compute_lock:
            with self._lock:
                hit = self._comparisons.get(key)
                gen = self._round_gen
            if hit is not None:
                return hit
            result = compare_batches(self.experiment, r, list(names))
            with self._lock:
                if gen == self._round_gen:
                    self._comparisons[key] = result
                self._cache.pop((_SAMPLES, r), None)  # it may have recorded new scores
        return result

    def cached_hypothesis(self, baseline: str | None = "entropy") -> pd.DataFrame | None:
        """The :meth:`hypothesis` rates if they are at hand (no label since), else None."""
        with self._lock:
            return self._hypotheses.get(str(baseline))

    def hypothesis(self, baseline: str | None = "entropy") -> pd.DataFrame:
        """How the picks' labels relate to their pseudo-label and flip targets, per round.

        Calls :func:`alfaviz.analysis.hypothesis.hypothesis_rates` on the run, for every
        written round, the run's own picks beside ``baseline``'s (queried once per round and
        recorded with the run). Kept until the next label, skip, undo or round. It takes
        about a quarter of a second on a small run even when every baseline is recorded (it
        reads every round's frames), so call it off the UI thread.

        Parameters
        ----------
        baseline : str or None
            A registered strategy set beside the run's own, or None for the own picks only.

        Returns
        -------
        pandas.DataFrame
            :data:`~alfaviz.schema.HYPOTHESIS`, one row per (round, strategy); empty before
            the first round.
        """
        from alfaviz.analysis.hypothesis import hypothesis_rates

        key = str(baseline)
        with self._compute_lock:
            with self._lock:
                hit = self._hypotheses.get(key)
                gen = self._label_gen
            if hit is not None:
                return hit
            if self.n_rounds == 0:
                empty = pd.DataFrame({c: [] for c in schema.HYPOTHESIS.names})
                result = schema.conform(empty, schema.HYPOTHESIS)
            else:
                result = hypothesis_rates(self.experiment, baseline=baseline)
            with self._lock:
                if gen == self._label_gen:
                    self._hypotheses[key] = result
        return result

    def _extra(self, r: int, name: str, frame: schema.Frame) -> pd.DataFrame:
        store = self.experiment.store
        if not any(a.endswith(f"{name}.parquet") for a in store.artefacts(r)):
            empty = pd.DataFrame({c: [] for c in frame.names})
            return schema.conform(empty, frame)
        try:
            return schema.conform(store.read_extra(r, name), frame)
        except RunStoreError:
            raise
        except ValueError as exc:
            raise RunStoreError(
                f"round {r}'s {name} frame does not fit the schema: {exc}"
            ) from None

    def anchor_points(self, round: int) -> pd.DataFrame:
        """Where the class anchors sit on the round's map.

        An anchor is the mean embedding of a class's labelled samples, so its place on the map
        is drawn at the mean 2-D position of those samples. Classes without labelled samples
        are left out.

        Returns
        -------
        pandas.DataFrame
            Columns ``anchor_class`` (int32), ``x``, ``y`` (float32).
        """
        r = self._check_round(round)
        return self._cached("anchors", r, lambda: self._anchor_points(r))

    def _anchor_points(self, round: int) -> pd.DataFrame:
        s = self.samples(round)
        lab = s[(s[schema.LABELLED_ROUND] >= 0) & (s[schema.LABELLED_ROUND] <= round)]
        lab = lab[np.isfinite(lab[schema.X].to_numpy())]
        g = lab.groupby(schema.LABEL, sort=True)[[schema.X, schema.Y]].mean().reset_index()
        g = g.rename(columns={schema.LABEL: schema.ANCHOR_CLASS})
        return pd.DataFrame(
            {
                schema.ANCHOR_CLASS: g[schema.ANCHOR_CLASS].to_numpy(np.int32),
                schema.X: g[schema.X].to_numpy(np.float32),
                schema.Y: g[schema.Y].to_numpy(np.float32),
            }
        )

    def features(self, sample_ids: Any) -> np.ndarray | None:
        """Feature vectors of train ``sample_ids`` for tabular data, or ``None`` for images.

        Returns
        -------
        numpy.ndarray of float32, shape (n, n_features)
            Read from the data source once per run and kept as numpy.
        """
        if self.is_image:
            return None
        with self._lock:
            table = self._features
        if table is None:
            x = self.experiment.data.x_train
            table = np.ascontiguousarray(x.detach().cpu().numpy().reshape(x.shape[0], -1))
            table = table.astype(np.float32, copy=False)
            with self._lock:
                self._features = table
        return table[np.asarray(sample_ids, dtype=np.int64)]

    def images(self, sample_ids: Any) -> np.ndarray | None:
        """Raw pixels of ``sample_ids`` for thumbnails (uint8), or ``None`` for tabular data."""
        return self.experiment.data.images(np.asarray(sample_ids, dtype=np.int64))

    # labelling (the Experiment is the writer) ---------------------------------------------
    @property
    def pending(self) -> np.ndarray:
        """Ids of the last batch still to be labelled, in pick order."""
        return self.experiment.pending

    def labels(self) -> np.ndarray:
        """Live label of every train sample (``-1`` for unlabelled), shape (n_train,)."""
        return self.experiment.labels

    def _writable(self) -> None:
        if self.read_only:
            raise AlfavizInputError(
                "this run is open read-only; open it with RunData(run, read_only=False) to label."
            )

    def submit_label(self, sample_id: int, label: int | str) -> int:
        """Record a human label (committed before this returns); see the Experiment's."""
        self._writable()
        return self.experiment.submit_label(sample_id, label)

    def skip(self, sample_id: int) -> int:
        """Record a skip."""
        self._writable()
        return self.experiment.skip(sample_id)

    def undo(self) -> dict[str, Any] | None:
        """Undo this session's last human action, or return None."""
        self._writable()
        return self.experiment.undo()


Dispatch = Callable[[Callable[[], None]], Any]
"""Runs a function soon in another thread (the kernel's main thread); thread-safe."""


def _kernel_dispatch() -> Dispatch | None:
    """The running IPython kernel's ``io_loop.add_callback``, or ``None`` outside a kernel.

    Tornado's ``add_callback`` is the one thread-safe way into the kernel's event loop; the
    comm messages of the widgets (clicks, keys) are handled on that loop too.
    """
    from alfaviz.widgets._base import _kernel_loop

    add = getattr(_kernel_loop(), "add_callback", None)
    return add if callable(add) else None


def _strategy_key(name: str) -> str:
    """A strategy name as the registry matches it (case, ``-`` and ``_`` do not matter)."""
    return name.lower().replace("-", "").replace("_", "")


def _with_score_columns(samples: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """``samples`` with one ``score:<strategy>`` column per strategy in ``scores``.

    Parameters
    ----------
    samples : pandas.DataFrame
        A round's samples frame (not modified).
    scores : pandas.DataFrame
        That round's :data:`~alfaviz.schema.STRATEGY_SCORES` rows.

    Returns
    -------
    pandas.DataFrame
        A copy with the new float32 columns, aligned by ``sample_id`` (NaN where a strategy
        scored no such sample).
    """
    ids = samples[schema.SAMPLE_ID].to_numpy(np.int64)
    index = pd.Index(ids)
    cols: dict[str, np.ndarray] = {}
    for name, part in scores.groupby(schema.STRATEGY, sort=False):
        values = np.full(ids.size, np.nan, dtype=np.float32)
        at = index.get_indexer(part[schema.SAMPLE_ID].to_numpy(np.int64))
        ok = at >= 0
        values[at[ok]] = part[schema.SCORE].to_numpy(np.float32)[ok]
        cols[schema.score_column(str(name))] = values
    out = samples.drop(columns=[c for c in cols if c in samples.columns])
    return pd.concat([out, pd.DataFrame(cols, index=out.index)], axis=1)
