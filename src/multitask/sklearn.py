"""A scikit-learn estimator around the shared multi-task network, for feature vectors.

:class:`MultiTaskClassifier` trains ONE network (an MLP trunk shared by all tasks, one logit per task) on a
label matrix ``Y`` of shape (n_samples, n_tasks) holding 1, 0 or NaN, where NaN means *unknown*: unknown
labels drop out of the loss, the validation metrics, the thresholds and :meth:`~MultiTaskClassifier.score`.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(40, 3))
>>> Y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0]).astype(float)
>>> Y[::4, 1] = np.nan                                    # unknown labels
>>> clf = MultiTaskClassifier(hidden=(8,), epochs=2).fit(X, Y)
>>> clf.predict_proba(X).shape, clf.predict(X).shape, list(clf.tasks_)
((40, 2), (40, 2), ['task_0', 'task_1'])

Output conventions
------------------
* **Y is 2-D** (an (n, T) array, list of lists or DataFrame; T may be 1): multi-label mode.
  ``predict_proba`` returns one (n, T) float array, the probability of the *positive* class of each task:
  what one wants for multi-label work, and one of the two formats scikit-learn's multilabel checks accept.
  (:class:`sklearn.multioutput.MultiOutputClassifier` returns the other one, a list of T arrays of shape
  (n, 2); ``[np.column_stack([1 - p, p]) for p in proba.T]`` converts.) ``predict`` returns (n, T) ints
  0/1, ``decision_function`` the (n, T) logits, ``classes_`` is a list of T arrays ``[0, 1]``.
* **y is 1-D**: a single task, and the estimator behaves as an ordinary binary classifier: y may hold any two
  class values (NaN / None = unknown), ``classes_`` is their sorted array, ``predict_proba`` is (n, 2) with
  columns in ``classes_`` order, ``predict`` returns (n,) class values, ``decision_function`` the (n,) logit
  of ``classes_[1]``.

Predictions are computed by a float64 copy of the network on the CPU (:func:`multitask.inference.predict_logits`),
so the output for a row does not depend on the other rows predicted with it (``check_methods_subset_invariance``).
``predict`` compares the positive-class probability with ``thresholds_`` (``>=``); ``decision_function`` is
the raw logit, so it agrees with ``predict`` exactly when the threshold is 0.5. ``score`` is the mean over
tasks of the accuracy on the *known* labels of each task (NaN cells are ignored; a task with no known label
in the given Y is left out of the mean).

Cross-validation with unknown labels: scikit-learn's ``check_cv`` calls ``type_of_target(Y)``, which rejects
NaN, so ``GridSearchCV(..., cv=3)`` fails on a Y with NaN before it reaches this estimator, and scikit-learn's
ranking metrics reject NaN too. Pass the splitter and a scorer of :mod:`multitask.model_selection`:
``GridSearchCV(MultiTaskClassifier(), grid, cv=KnownLabelKFold(3),
scoring=KNOWN_LABEL_SCORERS["label_ranking_average_precision"])`` (folds stratified on the known positives;
scores on known labels only). The default ``score`` (accuracy on known labels) needs no scorer.

Defaults for feature vectors: ``select="auto"`` fits a linear model besides the MLP and keeps the MLP only when
it is better on the validation part beyond its noise (:mod:`multitask.model_choice`); the kept epoch follows
validation mAP with near-ties broken by validation loss, and early stopping waits at least ``patience_steps``
optimiser steps (:mod:`multitask.best_epoch`). Measured against per-label logistic regression in
docs/benchmarks.md (section feature-defaults).

Checks that do not apply
------------------------
``check_estimator`` passes every check but one, which tests a convention this estimator deliberately does not
follow (the test suite passes it as ``expected_failed_checks`` with ``xfail_strict=True``, so a new failure or
this one starting to pass both fail the tests):

* ``check_classifier_multioutput``: it indexes ``classes_[decision > 0]``, i.e. it assumes ``classes_`` is
  one array. In multi-label mode ``classes_`` is the multilabel convention, a list of T arrays ``[0, 1]``:
  scikit-learn's scorers call ``type_of_target(classes_)`` to recognise multilabel output, and with a plain
  ``array([0, 1])`` a ``predict_proba`` scorer (e.g. ``make_scorer(average_precision_score,
  response_method="predict_proba")``) takes the output for a binary one and fails. Every other assertion of
  that check (shapes, int predictions, probabilities agreeing with predictions and logits) holds.

Not run rather than failing: the ``sample_weight`` checks (``fit`` takes no ``sample_weight``: the core's
masked loss has no per-example weights). ``check_array_api_input`` is skipped by scikit-learn unless
``SCIPY_ARRAY_API=1``; with it set, its NumPy-only variant passes.
The checks need a configuration that can learn: ``check_classifiers_train`` asks for a training accuracy
above 0.83 on blobs, which ``MultiTaskClassifier(epochs=2, hidden=(8,))`` does not reach with the default
``lr=1e-3`` (about ten optimiser steps); the tests run the checks with ``lr=0.05``.
"""

from __future__ import annotations

import numbers
import os
import random
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_array, check_consistent_length, check_is_fitted

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # pragma: no cover - scikit-learn 1.5

    def _validate_data(estimator: BaseEstimator, *args: Any, **kwargs: Any) -> Any:
        return estimator._validate_data(*args, **kwargs)


from multitask.config import build_config
from multitask.errors import LabelError

__all__ = ["EXPECTED_FAILED_CHECKS", "MultiTaskClassifier"]

#: ``check_estimator`` checks that fail by design, with the reason (see the module docstring).
EXPECTED_FAILED_CHECKS: dict[str, str] = {
    "check_classifier_multioutput": "assumes classes_ is one array indexable by the 0/1 decisions; multi-label "
    "classes_ is a list of T arrays [0, 1], which scikit-learn's predict_proba scorers need",
}

_MAX_SEED = 2**32 - 1  # what Lightning's seed_everything accepts


class MultiTaskClassifier(ClassifierMixin, BaseEstimator):
    """One shared network for many yes/no tasks with unknown (NaN) labels; see the module docstring.

    Parameters
    ----------
    hidden : sequence of int, default=(256, 256)
        Widths of the shared MLP trunk's layers (``()``: the task heads act on the standardised features).
    select : {"auto", "off"}, default="auto"
        "auto": also fit a linear model (logistic regression on the standardised features, C = 1, L-BFGS) and
        keep the MLP only when it is better on the validation part beyond the noise of its rows
        (:mod:`multitask.model_choice`; ``chosen_model_`` and ``model_choice_`` say which and why); a kept
        linear model is then refitted on all the rows (training and validation part, as ``GridSearchCV``
        refits), so ``threshold="auto"`` chooses its thresholds on rows it has seen. With ``hidden=()``, that
        linear model alone. "off": the network of ``hidden``, trained by the loop.
    dropout : float, default=0.1
        Dropout after each trunk layer.
    epochs : int, default=100
        Maximum number of training epochs.
    batch_size : int, default=64
    lr : float, default=1e-3
        AdamW learning rate (cosine schedule).
    weight_decay : float, default=1e-4
    loss_normalization : {"batch", "known"}, default="batch"
        "batch": the sum over known labels divided by the batch size; "known": each task's loss divided by
        its number of known labels in the batch.
    pos_weight : "none", "balanced" or dict of task name to float, default="none"
        Weight of positive labels in the loss ("balanced": negatives / positives per task).
    weighting : str, default="equal"
        Task weighting / gradient method of the project (``multitask methods``).
    unknown : str, default="ignore"
        Unknown-label strategy (``multitask unknowns``): "ignore" leaves NaN labels out of the loss; others
        (``negative``, ``partial_bce``, ``asl``, ``hill``, ``splc``, ``selective``, ``ll_r``, ``ll_ct``,
        ``epr``, ``self_training``) read, reweight, select, correct or complete them, each at its defaults.
    validation_fraction : float in [0, 1), default=0.1
        Seeded fraction of the rows held out for early stopping, best-checkpoint selection and
        ``threshold="auto"``; 0 trains on everything without early stopping.
    patience : int or None, default=10
        Early-stopping patience in epochs (None: no early stopping).
    patience_steps : int, default=200
        The patience is also at least this many optimiser steps, and training runs at least that many before
        an early stop (with a few hundred rows an epoch is a handful of steps).
    monitor : {"auto", "val_map", "val_loss"}, default="auto"
        What early stopping and the kept epoch follow; "auto": validation mAP, near-ties (within 0.01) broken by
        the lower validation loss (:mod:`multitask.best_epoch`).
    threshold : float in (0, 1) or "auto", default=0.5
        Decision threshold on the positive-class probability; "auto" chooses one per task maximising F1 on the
        validation part's known labels (0.5 for a task without both classes there, or without validation part).
    random_state : int, RandomState or None, default=0
        Seeds the split, the initial weights, the shuffling and dropout: same value, same predictions.
    accelerator : str, default="cpu"
        Lightning accelerator for training ("cpu", "gpu", "auto", ...); one device is used.
    verbose : bool, default=False
        Print one line per epoch.

    Attributes
    ----------
    network_ : multitask.models.MultiTaskNetwork
        The trained network (on the CPU, eval mode); it takes raw features (standardisation is inside).
    tasks_ : ndarray of str
        Task names: Y's column names for a DataFrame (a Series' name for 1-D y), else ``task_0``, ...
    classes_ : list of T arrays ``[0, 1]``, or the array of the two classes for 1-D y
    thresholds_ : ndarray of shape (T,)
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when X is a DataFrame with string column names.
    n_epochs_ : int
        Epochs trained (fewer than ``epochs`` after early stopping); for a kept linear model, the number of
        values of C on its regularisation path (:mod:`multitask.linear_fit`).
    best_epoch_ : int or None
        The (1-based) epoch whose weights were kept (linear model: the position of the kept C).
    chosen_model_ : str
        "linear" or "mlp": the network kept (the MLP when no choice was made).
    model_choice_ : dict or None
        The evidence of the choice: each candidate's validation mAP and loss at its kept epoch, epochs and time.
    history_ : list of dict
        Per-epoch training metrics (train_loss, val_loss, val_map).
    """

    def __init__(
        self,
        hidden: Sequence[int] = (256, 256),
        dropout: float = 0.1,
        epochs: int = 100,
        batch_size: int = 64,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        loss_normalization: str = "batch",
        pos_weight: str | dict[str, float] = "none",
        weighting: str = "equal",
        validation_fraction: float = 0.1,
        patience: int | None = 10,
        select: str = "auto",
        patience_steps: int = 200,
        monitor: str = "auto",
        threshold: float | str = 0.5,
        random_state: int | np.random.RandomState | None = 0,
        accelerator: str = "cpu",
        verbose: bool = False,
        unknown: str = "ignore",
    ) -> None:
        self.hidden = hidden
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.loss_normalization = loss_normalization
        self.pos_weight = pos_weight
        self.weighting = weighting
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.select = select
        self.patience_steps = patience_steps
        self.monitor = monitor
        self.threshold = threshold
        self.random_state = random_state
        self.accelerator = accelerator
        self.verbose = verbose
        self.unknown = unknown

    # -------------------------------------------------------------------------------------------- tags
    def __sklearn_tags__(self):  # noqa: ANN204 - sklearn.utils.Tags, only on scikit-learn >= 1.6
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False  # each task is yes/no; 1-D y takes two classes
        tags.classifier_tags.multi_label = True
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        tags.non_deterministic = self.random_state is None
        return tags

    def _more_tags(self) -> dict[str, Any]:  # scikit-learn < 1.6
        return {"binary_only": True, "multilabel": True, "multioutput": True,
                "non_deterministic": self.random_state is None}

    # --------------------------------------------------------------------------------------------- fit
    def fit(self, X: Any, Y: Any) -> MultiTaskClassifier:
        """Train on features X (n, d) and labels Y (n, T) of 1 / 0 / NaN, or a 1-D y of two classes.

        Raises ValueError for bad parameters, non-finite X, labels other than 0/1/NaN in a 2-D Y, and a task
        without known labels of both classes (the message names the task).
        """
        from multitask.data.datamodule import feature_statistics
        from multitask.model_choice import fit_choosing
        from multitask.models.network import build_network
        from multitask.tables import label_table_from_arrays
        from multitask.unknown.base import check_trainable_for

        self._check_params()
        names = _task_names(Y)
        X, Y = _validate_data(
            self, X, Y, reset=True,
            validate_separately=({"dtype": np.float32, "order": "C"},
                                 {"dtype": None, "ensure_2d": False, "ensure_all_finite": "allow-nan"}),
        )
        check_consistent_length(X, Y)
        labels, classes, single = _encode_fit_targets(Y)
        tasks = names if names is not None and len(names) == labels.shape[1] else \
            [f"task_{j}" for j in range(labels.shape[1])]
        _check_tasks(labels, tasks)

        seed = _seed(self.random_state)
        split = _trainable_split(labels, self.validation_fraction, seed)
        table = label_table_from_arrays(X, labels, tasks=tasks, split=split, source="Y",
                                        feature_names=list(getattr(self, "feature_names_in_", [])) or None)
        check_trainable_for(table, self.unknown)
        config = self._config(seed)

        with _restore_global_state(), tempfile.TemporaryDirectory(prefix="multitask-sklearn-") as run_dir:
            import lightning as L

            L.seed_everything(seed, workers=True, verbose=False)
            mean, std = feature_statistics(table)
            network = build_network(config.model, table.n_tasks, table.n_features, feature_mean=mean,
                                    feature_std=std)
            result, kept, choice = fit_choosing(config, table, network, Path(run_dir), label="MultiTaskClassifier ",
                                                quiet=not self.verbose, resumable=False, refit_linear=True)

        self.network_ = result.network.cpu().eval()
        self.tasks_ = np.asarray(tasks, dtype=object)
        self.classes_ = classes if single else [np.array([0, 1]) for _ in tasks]
        self._single_output = single
        self.n_epochs_ = int(result.epochs)
        self.best_epoch_ = result.best_epoch
        self.history_ = list(result.history)
        self.chosen_model_ = "mlp" if kept.model.trunk_options.get("hidden", [1]) else "linear"
        self.model_choice_ = choice
        self.thresholds_ = self._choose_thresholds(table)
        return self

    def _check_params(self) -> None:
        def fail(name: str, expected: str) -> None:
            raise ValueError(f"{type(self).__name__}: {name} must be {expected}; got {getattr(self, name)!r}")

        hidden = self.hidden
        if not (isinstance(hidden, numbers.Integral) or (
                isinstance(hidden, Sequence) and not isinstance(hidden, str)
                and all(isinstance(h, numbers.Integral) and h >= 1 for h in hidden))):
            fail("hidden", "a sequence of positive ints")
        if isinstance(hidden, numbers.Integral) and hidden < 1:
            fail("hidden", "a sequence of positive ints")
        if not (isinstance(self.dropout, numbers.Real) and 0 <= self.dropout < 1):
            fail("dropout", "a float in [0, 1)")
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if not (isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1):
                fail(name, "an int >= 1")
        if not (isinstance(self.lr, numbers.Real) and self.lr > 0):
            fail("lr", "a float > 0")
        if not (isinstance(self.weight_decay, numbers.Real) and self.weight_decay >= 0):
            fail("weight_decay", "a float >= 0")
        if self.loss_normalization not in ("batch", "known"):
            fail("loss_normalization", "'batch' or 'known'")
        if not (self.pos_weight in ("none", "balanced") or isinstance(self.pos_weight, dict)):
            fail("pos_weight", "'none', 'balanced' or a dict of task name to weight")
        from multitask.weighting import WEIGHTINGS

        if not (isinstance(self.weighting, str) and self.weighting in WEIGHTINGS):
            fail("weighting", f"one of {', '.join(WEIGHTINGS.names())}")
        if not (isinstance(self.validation_fraction, numbers.Real) and 0 <= self.validation_fraction < 1):
            fail("validation_fraction", "a float in [0, 1)")
        if self.patience is not None and not (isinstance(self.patience, numbers.Integral) and self.patience >= 1):
            fail("patience", "an int >= 1 or None")
        if not (isinstance(self.patience_steps, numbers.Integral) and not isinstance(self.patience_steps, bool)
                and self.patience_steps >= 0):
            fail("patience_steps", "an int >= 0")
        from multitask.unknown import UNKNOWNS

        if not (isinstance(self.unknown, str) and self.unknown in UNKNOWNS):
            fail("unknown", f"one of {', '.join(UNKNOWNS.names())}")
        if self.select not in ("auto", "off"):
            fail("select", "'auto' or 'off'")
        if self.monitor not in ("auto", "val_map", "val_loss"):
            fail("monitor", "'auto', 'val_map' or 'val_loss'")
        if not (self.threshold == "auto" or (isinstance(self.threshold, numbers.Real)
                                             and not isinstance(self.threshold, bool) and 0 < self.threshold < 1)):
            fail("threshold", "a float in (0, 1) or 'auto'")

    def _config(self, seed: int):  # noqa: ANN202 - multitask.config.RunConfig
        hidden = [int(self.hidden)] if isinstance(self.hidden, numbers.Integral) else [int(h) for h in self.hidden]
        return build_config({
            "name": "sklearn",
            "model": {"trunk": "mlp", "trunk_options": {"hidden": hidden, "dropout": float(self.dropout)},
                      "select": self.select},
            "loss": {"normalization": self.loss_normalization, "unknown": self.unknown,
                     "pos_weight": dict(self.pos_weight) if isinstance(self.pos_weight, dict) else self.pos_weight},
            "train": {"epochs": int(self.epochs), "batch_size": int(self.batch_size), "lr": float(self.lr),
                      "weight_decay": float(self.weight_decay), "seed": seed,
                      "patience": None if self.patience is None else int(self.patience),
                      "patience_steps": int(self.patience_steps), "monitor": self.monitor,
                      "accelerator": self.accelerator, "devices": 1, "strategy": "auto",
                      "weighting": self.weighting, "progress": False,
                      "logger": "csv"},  # the fit's folder is temporary: no TensorBoard events to write
        }, source=type(self).__name__)

    def _choose_thresholds(self, table: Any) -> np.ndarray:
        from multitask.metrics import choose_thresholds

        val = table.part("val")
        if self.threshold != "auto":
            return np.full(table.n_tasks, float(self.threshold))
        if not len(val):
            return np.full(table.n_tasks, 0.5)
        probs = expit(self._logits(val.features))
        return choose_thresholds(probs, val.targets, val.known).astype(np.float64)

    # ------------------------------------------------------------------------------------------ predict
    def _logits(self, X: np.ndarray) -> np.ndarray:
        """Logits in float64 on the CPU: the same value for a row whatever the batch it comes in."""
        from multitask.inference import predict_logits

        if not len(X):
            return np.zeros((0, len(self.tasks_)))
        return predict_logits(self.network_, X, batch_size=4096, device="cpu", dtype=torch.float64)

    def _validated_logits(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "network_")
        X = _validate_data(self, X, reset=False, dtype=np.float32, order="C")
        return self._logits(X)

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits: (n, T), or (n,) (the logit of ``classes_[1]``) when fitted on a 1-D y."""
        logits = self._validated_logits(X)
        return logits[:, 0] if self._single_output else logits

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probability of the positive class per task, (n, T); (n, 2) in ``classes_`` order for a 1-D y."""
        p = expit(self._validated_logits(X))
        return np.column_stack([1 - p[:, 0], p[:, 0]]) if self._single_output else p

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Log of :meth:`predict_proba`, computed stably from the logits."""
        logits = self._validated_logits(X)
        log_p = -np.logaddexp(0.0, -logits)
        if self._single_output:
            return np.column_stack([-np.logaddexp(0.0, logits[:, 0]), log_p[:, 0]])
        return log_p

    def predict(self, X: Any) -> np.ndarray:
        """0/1 per task, (n, T) ints: probability >= ``thresholds_``; class values (n,) for a 1-D y."""
        positive = (expit(self._validated_logits(X)) >= self.thresholds_).astype(np.int64)
        return self.classes_[positive[:, 0]] if self._single_output else positive

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean over tasks of the (weighted) accuracy on the *known* labels of y (NaN / None cells ignored).

        y is shaped like the Y given to fit. Tasks without a known label in y are left out of the mean; with
        no known label at all: ValueError. For a 1-D y this is the ordinary accuracy on the known labels.
        """
        predicted = self.predict(X)
        y = check_array(y, dtype=None, ensure_2d=False, ensure_all_finite="allow-nan", input_name="y")
        if self._single_output:
            y = y.ravel() if y.ndim == 2 and y.shape[1] == 1 else y
            if y.ndim != 1:
                raise ValueError(f"y must be 1-D like the y given to fit; got shape {y.shape}")
            known = ~pd.isna(y)
            unseen = set(pd.unique(y[known]).tolist()) - set(self.classes_.tolist())
            if unseen:
                raise ValueError(f"y holds labels {sorted(map(str, unseen))} not seen in fit "
                                 f"(classes_ = {self.classes_.tolist()})")
            correct, known = (predicted == y)[:, None], known[:, None]
        else:
            y = y.reshape(-1, 1) if y.ndim == 1 and len(self.tasks_) == 1 else y
            if y.shape != predicted.shape:
                raise ValueError(f"y must have shape {predicted.shape} (n_samples, n_tasks); got {y.shape}")
            labels = _encode_fit_targets(y)[0]
            known = ~np.isnan(labels)
            correct = predicted == labels
        weights = np.ones(len(correct)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        check_consistent_length(correct, weights)
        scores = [float(np.average(correct[known[:, j], j], weights=weights[known[:, j]]))
                  for j in range(correct.shape[1]) if weights[known[:, j]].sum() > 0]
        if not scores:
            raise ValueError("y has no known label to score against (every cell is NaN)")
        return float(np.mean(scores))


# ------------------------------------------------------------------------------------------------ helpers


def _seed(random_state: Any) -> int:
    """An int seed from a scikit-learn random_state (an int is used as it is)."""
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if not 0 <= random_state <= _MAX_SEED:
            raise ValueError(f"random_state must be in [0, {_MAX_SEED}]; got {random_state}")
        return int(random_state)
    return int(check_random_state(random_state).randint(2**31 - 1))


def _task_names(Y: Any) -> list[str] | None:
    """Column names of a DataFrame Y, or the name of a Series y; None otherwise."""
    if isinstance(Y, pd.DataFrame):
        return [str(c) for c in Y.columns]
    if isinstance(Y, pd.Series) and Y.name is not None:
        return [str(Y.name)]
    return None


def _encode_fit_targets(Y: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """(labels (n, T) float of 1 / 0 / NaN, classes of a 1-D y or None, whether y was 1-D)."""
    if Y.ndim == 1:
        known = ~pd.isna(Y)
        values = Y[known]
        kind = type_of_target(values, input_name="y") if len(values) else "binary"
        if kind not in ("binary", "multiclass"):
            raise ValueError(f"Unknown label type: {kind}. y must hold two classes (NaN / None = unknown), "
                             "or give a 2-D Y of 1 / 0 / NaN for several tasks")
        classes = np.unique(values)
        if len(classes) > 2:
            raise ValueError(f"Only binary classification is supported. y has {len(classes)} classes "
                             f"{classes.tolist()[:10]}: MultiTaskClassifier is binary per task; give a 2-D Y of "
                             "1 / 0 / NaN for several tasks (e.g. one column per class, one-vs-rest)")
        if len(classes) < 2:
            what = "no known label (every value is NaN)" if not len(classes) else \
                f"only one class ({classes[0]!r}) among its {len(values)} known labels"
            raise LabelError(f"task 'task_0' (y) has {what}; a classifier needs both classes")
        labels = np.full((len(Y), 1), np.nan)
        labels[known, 0] = (values == classes[1]).astype(float)
        return labels, classes, True
    if Y.ndim != 2 or Y.shape[1] == 0:
        raise ValueError(f"Y must be 1-D or 2-D (n_samples, n_tasks) with at least one task; got shape {Y.shape}")
    try:
        labels = np.asarray(pd.DataFrame(Y).astype("float64"), dtype=float) if Y.dtype == object \
            else Y.astype(float)
    except (TypeError, ValueError):
        raise ValueError("Unknown label type: Y must hold 1, 0 or NaN (unknown)") from None
    known = ~np.isnan(labels)
    if np.isinf(labels).any():
        raise ValueError("Input Y contains infinity; labels must be 1, 0 or NaN (unknown)")
    bad = known & ~np.isin(labels, (0.0, 1.0))
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"Unknown label type: Y must hold 1, 0 or NaN (unknown); found {labels[row, col]!r} at "
                         f"row {row}, column {col}")
    return labels, None, False


def _check_tasks(labels: np.ndarray, tasks: Sequence[str]) -> None:
    """Every task needs known labels of both classes (the message names the task)."""
    for j, task in enumerate(tasks):
        known = ~np.isnan(labels[:, j])
        if not known.any():
            raise LabelError(f"task {task!r} has no known label (every value is NaN); drop the column")
        positives = int(labels[known, j].sum())
        if positives in (0, int(known.sum())):
            raise LabelError(f"task {task!r} has only one class: all its {int(known.sum())} known labels are "
                             f"{'1' if positives else '0'}; a classifier needs both classes")


def _trainable_split(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A seeded train/val split where every task keeps known labels of both classes in 'train'.

    Validation rows are moved back to training (in the seeded order) when a task would otherwise lose a class.
    """
    from multitask.tables import seeded_split

    split = seeded_split(len(labels), fraction, 0.0, seed)
    if fraction == 0:
        return split
    order = np.random.default_rng(seed).permutation(len(labels))
    for j in range(labels.shape[1]):
        for value in (0.0, 1.0):
            has = labels[:, j] == value
            if not (has & (split == "train")).any():
                candidates = [i for i in order if has[i]]
                split[candidates[0]] = "train"
    return split


@contextmanager
def _restore_global_state() -> Iterator[None]:
    """Keep fit from changing the caller's global random states and torch's determinism flag.

    (Lightning's ``seed_everything`` and ``Trainer(deterministic=...)`` set them process-wide.)
    """
    python_state, numpy_state, torch_state = random.getstate(), np.random.get_state(), torch.get_rng_state()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    environment = {k: os.environ.get(k) for k in ("PL_GLOBAL_SEED", "PL_SEED_WORKERS", "CUBLAS_WORKSPACE_CONFIG")}
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        torch.set_rng_state(torch_state)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        for key, value in environment.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
