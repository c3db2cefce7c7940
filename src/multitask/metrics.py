"""Evaluation metrics for many yes/no tasks with unknown labels, computed with scikit-learn.

Inputs are numpy arrays of shape ``(n_examples, n_tasks)``: ``probs`` (probabilities or any scores, higher
means "yes"), ``targets`` (float, 1/0, 0 where unknown) and ``known`` (bool). Every per-task number is
computed on that task's known labels only; values in unknown cells (of ``probs`` or ``targets``) are never
read, so they may hold anything, NaN included.

Conventions
-----------
* Decision rule: a label is predicted positive when ``prob >= threshold``.
* Undefined numbers are NaN, never an exception and never a leaked warning: average precision and ROC AUC
  need at least one known positive *and* one known negative; F1 is NaN when there is neither a known positive
  nor a predicted positive (0/0); everything is NaN for a task with no known label.
* :func:`choose_thresholds` picks, per task, the observed score that maximises F1 on the known labels; ties
  go to the *largest* such threshold (fewest positive predictions); 0.5 for a task whose known labels are
  empty or all one class.
* :func:`multilabel_metrics` follows the Mulan conventions (Tsoumakas et al.) on fully known label matrices;
  see its docstring for one-error, coverage and F1 edge cases.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import sklearn
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (
    accuracy_score,
    auc,
    average_precision_score,
    coverage_error,
    f1_score,
    hamming_loss,
    label_ranking_average_precision_score,
    label_ranking_loss,
    precision_recall_curve,
    roc_curve,
)

__all__ = [
    "DEFAULT_THRESHOLD",
    "MACRO_KEYS",
    "TaskMetrics",
    "choose_thresholds",
    "macro_average",
    "metrics_table",
    "multilabel_metrics",
    "task_metrics",
]

#: Metrics averaged by :func:`macro_average`, in table order.
MACRO_KEYS: tuple[str, ...] = ("average_precision", "roc_auc", "f1", "accuracy")

#: Threshold used when none is given or none can be chosen.
DEFAULT_THRESHOLD = 0.5

# Two F1 values closer than this count as a tie in ``choose_thresholds`` (they are equal in exact
# arithmetic but may differ by rounding, since F1 is computed from precision and recall).
_F1_TIE_TOLERANCE = 1e-12


@dataclass(frozen=True)
class TaskMetrics:
    """Metrics of one task on its known labels (NaN where undefined, see the module docstring).

    >>> m = TaskMetrics("cat", 4, 2, 1.0, 1.0, 1.0, 1.0, 0.5)
    >>> m.to_dict()["roc_auc"]
    1.0
    """

    task: str
    n_known: int
    n_positive: int
    average_precision: float
    roc_auc: float
    f1: float
    accuracy: float
    threshold: float

    def to_dict(self) -> dict:
        """A plain ``dict`` of the fields (JSON-friendly; NaN stays ``float('nan')``)."""
        return dataclasses.asdict(self)


def _check_inputs(probs: object, targets: object, known: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return float probs/targets and bool known as 2-D arrays of one shape, or raise ``ValueError``."""
    p = np.asarray(probs, dtype=float)
    y = np.asarray(targets, dtype=float)
    k = np.asarray(known)
    if p.ndim != 2:
        raise ValueError(f"probs must be 2-D (n_examples, n_tasks), got shape {p.shape}")
    if y.shape != p.shape or k.shape != p.shape:
        raise ValueError(
            f"probs, targets and known must have the same shape, got {p.shape}, {y.shape} and {k.shape}"
        )
    if k.dtype != bool:
        if not np.isin(k, (0, 1)).all():
            raise ValueError("known must be boolean (or 0/1)")
        k = k.astype(bool)
    if not np.isin(y[k], (0.0, 1.0)).all():
        raise ValueError("targets must be 0 or 1 wherever known is True")
    if not np.isfinite(p[k]).all():
        raise ValueError("probs must be finite wherever known is True")
    return p, y, k


def _thresholds_array(thresholds: object, n_tasks: int) -> np.ndarray:
    if thresholds is None:
        return np.full(n_tasks, DEFAULT_THRESHOLD)
    t = np.asarray(thresholds, dtype=float)
    if t.ndim == 0:
        return np.full(n_tasks, float(t))
    if t.shape != (n_tasks,):
        raise ValueError(f"thresholds must be a scalar or have shape ({n_tasks},), got {t.shape}")
    return t


def _binary_scores(y: np.ndarray, s: np.ndarray, *, with_auc: bool = True) -> tuple[float, float]:
    """(average precision, ROC AUC) of one task's known labels; NaN unless both classes are present.

    ROC AUC is ``auc(*roc_curve(...)[:2])``, which is exactly what ``roc_auc_score`` computes for binary
    labels, without its repeated input checks (the inputs were checked once by the caller).
    """
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == y.size:
        return float("nan"), float("nan")
    with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
        ap = float(average_precision_score(y, s))
        if not with_auc:
            return ap, float("nan")
        fpr, tpr, _ = roc_curve(y, s)
        return ap, float(auc(fpr, tpr))


def _confusion_counts(
    p: np.ndarray, y: np.ndarray, k: np.ndarray, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-task (tp, fp, fn, n_known) on known cells, deciding ``p >= threshold``, all tasks at once."""
    with np.errstate(invalid="ignore"):  # unknown cells may hold NaN; they are masked out
        decision = (p >= thresholds[None, :]) & k
    positive = (y == 1) & k
    tp = (decision & positive).sum(axis=0)
    fp = decision.sum(axis=0) - tp
    fn = positive.sum(axis=0) - tp
    return tp, fp, fn, k.sum(axis=0)


def choose_thresholds(
    probs: np.ndarray, targets: np.ndarray, known: np.ndarray, criterion: str = "f1"
) -> np.ndarray:
    """Per-task decision threshold maximising F1 on the known (validation) labels.

    Candidates are the distinct known scores of the task (``sklearn.metrics.precision_recall_curve``), so
    predicting ``prob >= threshold`` on the same data reproduces the best F1 exactly. Ties (F1 equal to
    within 1e-12) go to the largest threshold, i.e. the fewest positive predictions. A task whose known
    labels are empty or all one class gets 0.5. Only ``criterion="f1"`` exists.

    >>> p = np.array([[0.1], [0.35], [0.4], [0.8]])
    >>> y = np.array([[0.0], [1.0], [0.0], [1.0]])
    >>> choose_thresholds(p, y, np.ones_like(y, dtype=bool)).tolist()
    [0.35]
    """
    if criterion != "f1":
        raise ValueError(f"unknown criterion {criterion!r}; only 'f1' is supported")
    p, y, k = _check_inputs(probs, targets, known)
    out = np.full(p.shape[1], DEFAULT_THRESHOLD)
    for j in range(p.shape[1]):
        yj = y[k[:, j], j]
        n_pos = int(yj.sum())
        if n_pos == 0 or n_pos == yj.size:
            continue
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            precision, recall, thr = precision_recall_curve(yj, p[k[:, j], j])
        precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
        denom = precision + recall
        f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0)
        best = np.flatnonzero(f1 >= f1.max() - _F1_TIE_TOLERANCE)
        out[j] = thr[best].max()
    return out


def task_metrics(
    probs: np.ndarray,
    targets: np.ndarray,
    known: np.ndarray,
    task_names: Sequence[str],
    thresholds: float | Sequence[float] | np.ndarray | None = None,
) -> list[TaskMetrics]:
    """Per-task AP, ROC AUC, F1 and accuracy on each task's known labels.

    ``thresholds``: None (0.5 for all), a scalar, or one value per task; decision = ``prob >= threshold``.
    AP and ROC AUC come from sklearn, one task at a time. F1 (``2tp / (2tp + fp + fn)``, NaN for 0/0) and
    accuracy are computed for all tasks at once from confusion counts, for speed (calling sklearn's
    ``f1_score``/``accuracy_score`` per task would double the run time); they equal sklearn's numbers
    (see ``tests/test_metrics.py``).

    >>> p = np.array([[0.9, 0.2], [0.2, 0.7], [0.6, 0.1]])
    >>> y = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    >>> k = np.array([[True, True], [True, True], [True, False]])
    >>> [(m.task, m.n_known, m.roc_auc, round(m.f1, 3)) for m in task_metrics(p, y, k, ["a", "b"])]
    [('a', 3, 1.0, 0.667), ('b', 2, 1.0, 1.0)]
    """
    p, y, k = _check_inputs(probs, targets, known)
    names = [str(name) for name in task_names]
    if len(names) != p.shape[1]:
        raise ValueError(f"got {len(names)} task names for {p.shape[1]} tasks")
    thr = _thresholds_array(thresholds, p.shape[1])
    tp, fp, fn, n_known = _confusion_counts(p, y, k, thr)
    with np.errstate(invalid="ignore", divide="ignore"):  # 0/0 -> NaN is the documented result
        f1 = 2 * tp / (2 * tp + fp + fn)
        accuracy = (n_known - fp - fn) / n_known
    result = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        for j, name in enumerate(names):
            ap, roc = _binary_scores(y[k[:, j], j], p[k[:, j], j])
            result.append(
                TaskMetrics(
                    task=name,
                    n_known=int(n_known[j]),
                    n_positive=int(tp[j] + fn[j]),
                    average_precision=ap,
                    roc_auc=roc,
                    f1=float(f1[j]),
                    accuracy=float(accuracy[j]),
                    threshold=float(thr[j]),
                )
            )
    return result


def macro_average(metrics: Sequence[TaskMetrics]) -> dict[str, float]:
    """Mean of each metric over tasks, skipping NaN (NaN when every task is NaN, or there are no tasks).

    >>> nan = float("nan")
    >>> a = TaskMetrics("a", 2, 1, 1.0, 1.0, 1.0, 1.0, 0.5)
    >>> b = TaskMetrics("b", 2, 0, nan, nan, nan, 0.5, 0.5)
    >>> ms = [a, b]
    >>> macro_average(ms)
    {'average_precision': 1.0, 'roc_auc': 1.0, 'f1': 1.0, 'accuracy': 0.75}
    """
    out = {}
    for key in MACRO_KEYS:
        values = np.array([getattr(m, key) for m in metrics], dtype=float)
        values = values[~np.isnan(values)]
        out[key] = float(values.mean()) if values.size else float("nan")
    return out


def metrics_table(metrics: Sequence[TaskMetrics]) -> pd.DataFrame:
    """One row per task (index = task name) plus a final ``'macro'`` row holding :func:`macro_average`.

    Count columns are nullable integers, empty (``<NA>``) in the macro row, as is its threshold (NaN).

    >>> table = metrics_table([TaskMetrics("a", 2, 1, 1.0, 1.0, 1.0, 1.0, 0.5)])
    >>> table.index.tolist(), float(table.loc["macro", "f1"])
    (['a', 'macro'], 1.0)
    """
    names = [m.task for m in metrics]
    if "macro" in names:
        raise ValueError("a task named 'macro' clashes with the macro-average row")
    if len(set(names)) != len(names):
        raise ValueError("task names must be unique")
    columns = ["n_known", "n_positive", *MACRO_KEYS, "threshold"]
    rows = [{c: getattr(m, c) for c in columns} for m in metrics]
    rows.append({**macro_average(metrics), "n_known": pd.NA, "n_positive": pd.NA, "threshold": np.nan})
    table = pd.DataFrame(rows, index=pd.Index([*names, "macro"], name="task"), columns=columns)
    table = table.astype({"n_known": "Int64", "n_positive": "Int64"})
    return table.astype({c: float for c in (*MACRO_KEYS, "threshold")})


def _one_error(y: np.ndarray, s: np.ndarray) -> float:
    """Fraction of examples whose top-scored label is irrelevant (ties: see multilabel_metrics)."""
    top = s == s.max(axis=1, keepdims=True)
    return float(np.mean((top & (y == 0)).any(axis=1)))


def multilabel_metrics(
    probs: np.ndarray,
    targets: np.ndarray,
    known: np.ndarray | None = None,
    threshold: float = 0.5,
) -> dict[str, float]:
    """Classic multi-label benchmark measures on a fully known label matrix.

    Bipartition measures use ``prob >= threshold``; ranking measures use the scores. Conventions:

    * ``hamming_loss``, ``subset_accuracy``: sklearn ``hamming_loss`` and ``accuracy_score``.
    * ``micro_f1``, ``macro_f1``: sklearn ``f1_score`` with ``zero_division=1.0``: a label with no true and
      no predicted positive has F1 = 1, as in Mulan (``InformationRetrievalMeasures.fMeasure``).
    * ``one_error``: fraction of examples whose top-ranked label is not relevant. As in Mulan, every example
      counts, and one with no relevant label is always an error (1). Ties at the top score are pessimistic:
      the example is an error unless *every* tied top label is relevant. (Mulan breaks such ties by column
      order instead; pessimistic ties match sklearn's ranking measures, which use the maximal rank.)
    * ``coverage``: Mulan / Tsoumakas et al. convention, the mean number of steps down the ranking needed to
      cover all relevant labels (best value: mean number of relevant labels minus 1). sklearn's
      ``coverage_error`` reports the rank itself, 1 more, so this is ``coverage_error`` minus 1 per example
      with a relevant label; an example with no relevant label contributes 0 (both libraries), not -1.
      Ties: maximal rank (sklearn; Mulan breaks ties by column order).
    * ``ranking_loss``: sklearn ``label_ranking_loss`` (examples with all or no labels relevant give 0).
    * ``average_precision``: label-ranking average precision, sklearn
      ``label_ranking_average_precision_score`` (examples with all or no labels relevant give 1; Mulan
      skips examples with no relevant label).
    * ``mean_ap``: mean over labels of sklearn ``average_precision_score``, skipping labels whose column is
      all one class (NaN if every label is).

    ``known`` must be None or all True (``ValueError`` otherwise): these measures need complete label sets.

    >>> p = np.array([[0.9, 0.6, 0.1], [0.2, 0.8, 0.7]])
    >>> y = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    >>> r = multilabel_metrics(p, y)
    >>> r["one_error"], r["coverage"], r["subset_accuracy"]
    (0.5, 0.5, 0.0)
    """
    p, y, k = _check_inputs(probs, targets, np.ones(np.shape(probs), dtype=bool) if known is None else known)
    if not k.all():
        raise ValueError("multilabel_metrics needs a fully known label matrix (known must be all True)")
    if p.shape[0] == 0 or p.shape[1] == 0:
        raise ValueError(f"multilabel_metrics needs at least one example and one label, got shape {p.shape}")
    y_int = y.astype(int)
    decision = (p >= threshold).astype(int)
    n_with_relevant = int((y_int.sum(axis=1) > 0).sum())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        label_ap = np.array([_binary_scores(y[:, j], p[:, j], with_auc=False)[0] for j in range(p.shape[1])])
        label_ap = label_ap[~np.isnan(label_ap)]
        return {
            "hamming_loss": float(hamming_loss(y_int, decision)),
            "subset_accuracy": float(accuracy_score(y_int, decision)),
            "micro_f1": float(f1_score(y_int, decision, average="micro", zero_division=1.0)),
            "macro_f1": float(f1_score(y_int, decision, average="macro", zero_division=1.0)),
            "one_error": _one_error(y_int, p),
            "coverage": float(coverage_error(y_int, p) - n_with_relevant / p.shape[0]),
            "ranking_loss": float(label_ranking_loss(y_int, p)),
            "average_precision": float(label_ranking_average_precision_score(y_int, p)),
            "mean_ap": float(label_ap.mean()) if label_ap.size else float("nan"),
        }
