"""The advisor's evidence: a short comparison of the candidate approaches, scored on held-out training rows.

The question the advisor answers: for this label table and the stated training recipe (trunk, epochs, batch
size, learning rate), which approach — one shared network, a shared network per group, separate networks —
will have the higher held-out macro AP, by how much and with what confidence, and what each costs.

It answers with a measurement, not a rule: each candidate approach is trained, with the recipe's optimiser and
schedule, for the same **budget in epochs** (half of ``train.epochs``; never a clock, so a busy machine
gets the same answer) on the probe's rows, and scored on rows of the training split that no network saw. The
separate networks are trained for at most EVIDENCE_MAX_TASKS tasks (chosen at random among those with enough
held-out positives and negatives, seeded); every approach is scored on the same tasks and rows. The difference
in macro AP (approach − shared) comes with a paired bootstrap interval over the held-out rows, as
``multitask compare`` computes it. It is measured at half the budget and at the full budget: a call is
**clear** only when the full-budget interval excludes 0 and the half-budget difference has the same sign (a
gap that is closing fast is no evidence of the end result); otherwise it is a **tie**, and the cheaper
approach — one shared network — is the call, "choose by cost".

With the ``mlp`` trunk and ``model.select: auto`` a run keeps a linear model instead of its MLP unless the MLP
is better on validation (:mod:`multitask.model_choice`). A linear model shares nothing, so where every network
would keep it, shared and separate are the same model and the question is moot. The evidence fits that linear
candidate once on the same rows and reports it beside the approaches (and says so when it scores above all of
them); the call stays the comparison of the recipe's networks, which is what sharing changes.

>>> import numpy as np
>>> from multitask.config import build_config
>>> from multitask.tables import label_table_from_arrays
>>> x = np.random.default_rng(0).normal(size=(400, 4))
>>> y = np.column_stack([x[:, 0] > 0, x[:, 0] > 0.3, x[:, 1] > 0]).astype(float)
>>> table = label_table_from_arrays(x, y, tasks=["a", "b", "c"])
>>> config = build_config({"model": {"trunk": "mlp", "trunk_options": {"hidden": [8]}},
...                        "train": {"epochs": 10, "batch_size": 32}})
>>> rows = np.arange(len(table.part("train")))
>>> evidence = measure_evidence(config, table.part("train"), rows[:200], rows[200:], image_size=None, seed=0)
>>> evidence.confidence in ("clear", "tie"), evidence.epochs, len(evidence.tasks)
(True, 5.0, 3)
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from multitask.advise.probe import ProbeData, build_probe_network, load_probe_data, positive_weights, probe_device
from multitask.advise.rules import CALL_GROUPS, CALL_SEPARATE, CALL_SHARED
from multitask.bootstrap import Difference, paired_ap_difference, summarize
from multitask.config import RunConfig
from multitask.inference import predict_logits
from multitask.losses import per_task_losses
from multitask.model_choice import recipe_chooses
from multitask.optimization import schedule_factor
from multitask.tables import LabelTable

EVIDENCE_FRACTION = 0.5
"""Each candidate network trains for this share of ``train.epochs`` (at least EVIDENCE_MIN_EPOCHS), once, on at
most the probe's rows: with 1 + min(T, EVIDENCE_MAX_TASKS) networks that is at most (1 + T) / (2 · 3 · (1 + T))
≈ 17 % of the three-seed comparison it predicts. (A first version trained a fifth of the epochs: the shared
network of a narrow trunk was then far from trained — held-out AP 0.58 against 0.86 after full training — and
separate networks, each learning one task, looked clearly better where the full comparison found the opposite.)"""

EVIDENCE_MIN_EPOCHS = 1.0

EVIDENCE_MAX_TASKS = 6
"""Separate networks are trained for at most this many tasks; every approach is scored on the same ones."""

EVIDENCE_MIN_CLASS = 5
"""A task is scored only with at least this many held-out positives and negatives."""

N_BOOT = 1000

APPROACH_CALLS = {"shared": CALL_SHARED, "groups": CALL_GROUPS, "separate": CALL_SEPARATE}


@dataclass
class ApproachEvidence:
    """One approach's held-out AP per scored task, at each checkpoint, and what it cost."""

    name: str
    ap: dict[str, list[float]]
    """task → AP at each checkpoint"""
    networks: int
    parameters: int
    steps: int
    seconds: float
    scores: dict[str, list[np.ndarray]] = field(default_factory=dict, repr=False)
    """task → held-out probabilities at each checkpoint (for the bootstrap; not saved)"""
    labels: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    """task → the held-out labels those probabilities score"""

    def macro(self, checkpoint: int = -1) -> float:
        values = [v[checkpoint] for v in self.ap.values() if math.isfinite(v[checkpoint])]
        return float(np.mean(values)) if values else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ap": self.ap, "macro": [self.macro(i) for i in range(len(self._any()))],
                "networks": self.networks, "parameters": self.parameters, "steps": self.steps,
                "seconds": self.seconds}

    def _any(self) -> list[float]:
        return next(iter(self.ap.values()), [])


@dataclass
class Evidence:
    """The short comparison behind the advisor's call."""

    epochs: float
    checkpoints: list[float]
    tasks: list[str]
    fit_rows: int
    held_rows: int
    approaches: dict[str, ApproachEvidence]
    differences: dict[str, list[Difference]]
    """approach → macro AP(approach) − AP(shared) at each checkpoint, with its bootstrap interval"""
    call: str
    confidence: str
    """'clear' or 'tie'"""
    statement: str
    n_tasks: int
    linear: ApproachEvidence | None = None
    """The linear candidate of ``model.select: auto``, on the same rows (None when the recipe does not choose)."""

    def to_dict(self) -> dict[str, Any]:
        out = {"epochs": self.epochs, "checkpoints": self.checkpoints, "tasks": self.tasks,
               "n_tasks": self.n_tasks, "fit_rows": self.fit_rows, "held_rows": self.held_rows,
               "approaches": {k: a.to_dict() for k, a in self.approaches.items()},
               "differences": {k: [{"mean": d.mean, "low": d.low, "high": d.high} for d in ds]
                               for k, ds in self.differences.items()},
               "call": self.call, "confidence": self.confidence, "statement": self.statement}
        if self.linear is not None:
            out["linear"] = self.linear.to_dict()
        return out

    def lines(self) -> list[str]:
        """The evidence in words (:func:`describe`)."""
        return describe(self.to_dict())


def describe(evidence: dict[str, Any]) -> list[str]:
    """The evidence (:meth:`Evidence.to_dict`, also as read back from JSON) in words: one line per approach,
    then the call."""
    out = [f"each approach trained {evidence['epochs']:g} epochs on {evidence['fit_rows']} training rows, scored "
           f"on {evidence['held_rows']} held-out training rows ({len(evidence['tasks'])} of {evidence['n_tasks']} "
           "tasks)"]
    for name, a in evidence["approaches"].items():
        macro = a["macro"][-1] if a["macro"] else float("nan")
        line = f"{name}: macro AP {_number(macro)} ({a['networks']} network(s), {a['parameters']:,} parameters)"
        if name in evidence["differences"]:
            d = evidence["differences"][name][-1]
            line += f"; vs shared {_signed(d['mean'])} [{_signed(d['low'])}, {_signed(d['high'])}]"
        out.append(line)
    if "linear" in evidence:
        linear = evidence["linear"]["macro"][-1]
        best = max((a["macro"][-1] for a in evidence["approaches"].values() if a["macro"]), default=float("nan"))
        line = (f"model.select auto: the linear candidate (no hidden layer) scores macro AP {_number(linear)} on the "
                "same rows")
        if math.isfinite(linear) and math.isfinite(best) and linear >= best:
            line += (", above every network: train and compare will probably keep linear models, which share "
                     "nothing — then the approaches are the same model (model.select off compares the networks)")
        out.append(line)
    out.append(evidence["statement"])
    return out


def _number(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.3f}"


def _signed(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:+.3f}"


def evidence_epochs(config: RunConfig) -> float:
    """The budget of each candidate network, in epochs: EVIDENCE_FRACTION of the recipe's ``train.epochs``.

    >>> from multitask.config import build_config
    >>> [evidence_epochs(build_config({"train": {"epochs": e}})) for e in (20, 1)]
    [10.0, 1.0]
    """
    return max(EVIDENCE_MIN_EPOCHS, round(EVIDENCE_FRACTION * config.train.epochs, 2))


def scored_tasks(known: np.ndarray, targets: np.ndarray, max_tasks: int, seed: int) -> list[int]:
    """Up to `max_tasks` task indices with ≥ EVIDENCE_MIN_CLASS held-out positives and negatives (seeded random).

    >>> y = np.array([[1, 0, 1]] * 6 + [[0, 0, 1]] * 6, float); k = np.ones_like(y, bool)
    >>> scored_tasks(k, y, 5, seed=0)  # task 1 has no positive, task 2 no negative
    [0]
    """
    positives = ((targets > 0.5) & known).sum(0)
    negatives = ((targets <= 0.5) & known).sum(0)
    eligible = np.flatnonzero((positives >= EVIDENCE_MIN_CLASS) & (negatives >= EVIDENCE_MIN_CLASS))
    if len(eligible) > max_tasks:
        eligible = np.random.default_rng([seed, 13]).choice(eligible, max_tasks, replace=False)
    return sorted(int(j) for j in eligible)


def measure_evidence(config: RunConfig, train: LabelTable, fit_rows: np.ndarray, held_rows: np.ndarray, *,
                     image_size: int | None, seed: int, groups: Sequence[Sequence[int]] | None = None,
                     epochs: float | None = None, max_tasks: int = EVIDENCE_MAX_TASKS,
                     fit: ProbeData | None = None, held: ProbeData | None = None,
                     log: Callable[[str], None] | None = None) -> Evidence:
    """Train shared, (groups) and separate networks for `epochs` (default :func:`evidence_epochs`) on
    `fit_rows` of the training split; score them on `held_rows`. `groups`: task-index groups of a "groups"
    candidate (only when it differs from both one group and singletons). `fit` / `held`: the rows already
    loaded (the probe's)."""
    say = log or (lambda message: None)
    epochs = evidence_epochs(config) if epochs is None else float(epochs)
    size = image_size or config.data.image_size
    fit = fit if fit is not None else load_probe_data(train, fit_rows, size)
    held = held if held is not None else load_probe_data(train, held_rows, size)
    tasks = scored_tasks(held.known.numpy(), held.targets.numpy(), max_tasks, seed)
    checkpoints = [epochs / 2, epochs]
    plans: dict[str, list[list[int]]] = {"shared": [list(range(train.n_tasks))]}
    if groups is not None and 1 < len(groups) < train.n_tasks and any(len(g) > 1 for g in groups):
        plans["groups"] = [list(g) for g in groups if set(g) & set(tasks)]
    plans["separate"] = [[j] for j in tasks]
    approaches = {}
    for name, networks in plans.items():
        say(f"evidence: {name} ({len(networks)} network(s), {epochs:g} epochs each)")
        approaches[name] = _train_approach(config, train, fit, held, name, networks, tasks, checkpoints, seed)
    names = [train.tasks[j] for j in tasks]
    linear = None
    if recipe_chooses(config):
        say("evidence: the linear candidate of model.select auto")
        linear = _fit_linear_candidate(config, train, fit, held, tasks, len(checkpoints))
    differences = {name: [_macro_difference(approaches["shared"], a, names, c) for c in range(len(checkpoints))]
                   for name, a in approaches.items() if name != "shared"}
    call, confidence, statement = decide(differences, n_tasks=train.n_tasks, scored=len(tasks))
    return Evidence(epochs=epochs, checkpoints=checkpoints, tasks=names, fit_rows=len(fit), held_rows=len(held),
                    approaches=approaches, differences=differences, call=call, confidence=confidence,
                    statement=statement, n_tasks=train.n_tasks, linear=linear)


def _fit_linear_candidate(config: RunConfig, train: LabelTable, fit: ProbeData, held: ProbeData,
                          scored: list[int], n_checkpoints: int) -> ApproachEvidence:
    """The linear model of :mod:`multitask.model_choice`, fitted (:func:`multitask.linear_fit.fit_linear`) on the
    fit rows and scored on the held-out rows. The held-out rows are its "val" split, which only labels its
    history: with one value of C (:data:`multitask.linear_fit.C_GRID`) nothing is chosen on them."""
    from multitask.linear_fit import C_GRID, fit_linear
    from multitask.model_choice import linear_config

    assert len(C_GRID) == 1, "the held-out rows would choose C: give the linear fit its own validation rows"
    start = time.perf_counter()
    rows = np.concatenate([fit.rows, held.rows])
    table = replace(train.subset(rows), split=np.array(["train"] * len(fit) + ["val"] * len(held)))
    result = fit_linear(linear_config(config), table)
    logits = predict_logits(result.network, held.inputs(), 512, torch.device("cpu"))
    names = train.tasks
    ap, scores, labels = {}, {}, {}
    for j in scored:
        known = held.known[:, j].numpy()
        y = labels[names[j]] = held.targets[known, j].numpy()
        probability = 1 / (1 + np.exp(-logits[known, j].astype(np.float64)))
        scores[names[j]] = [probability] * n_checkpoints
        ap[names[j]] = [_ap(y, probability)] * n_checkpoints
    parameters = sum(p.numel() for p in result.network.parameters())
    return ApproachEvidence("linear", ap, 1, parameters, 0, time.perf_counter() - start, scores, labels)


def decide(differences: dict[str, list[Difference]], *, n_tasks: int, scored: int) -> tuple[str, str, str]:
    """(call, confidence, statement) from each approach's difference to shared at each checkpoint.

    >>> from multitask.bootstrap import Difference
    >>> decide({"separate": [Difference(0.05, 0.01, 0.09), Difference(0.08, 0.05, 0.11)]}, n_tasks=4, scored=4)[:2]
    ('separate networks', 'clear')
    >>> decide({"separate": [Difference(0.05, 0.01, 0.09), Difference(0.01, -0.02, 0.04)]}, n_tasks=4, scored=4)[:2]
    ('one shared network', 'tie')
    """
    if not scored:
        return CALL_SHARED, "tie", ("no task has enough held-out positives and negatives to measure: one shared "
                                    "network by cost (unmeasured)")
    clear_better = {name: ds[-1] for name, ds in differences.items()
                    if ds[-1].low > 0 and ds[0].mean > 0}
    if clear_better:
        best = max(clear_better, key=lambda n: clear_better[n].mean)
        d = clear_better[best]
        return (APPROACH_CALLS[best], "clear",
                f"{APPROACH_CALLS[best]}, clearly: held-out macro AP {d.mean:+.3f} [{d.low:+.3f}, {d.high:+.3f}] "
                "against one shared network")
    worse = [name for name, ds in differences.items() if ds[-1].high < 0 and ds[0].mean < 0]
    if differences and len(worse) == len(differences):
        d = max((ds[-1] for ds in differences.values()), key=lambda d: d.mean)
        return (CALL_SHARED, "clear", f"{CALL_SHARED}, clearly: every other approach scores lower held-out macro AP "
                f"(the closest by {d.mean:+.3f} [{d.low:+.3f}, {d.high:+.3f}])")
    if not differences:
        return CALL_SHARED, "tie", "only one approach could be measured: one shared network by cost"
    name, ds = max(differences.items(), key=lambda item: item[1][-1].mean)
    d = ds[-1]
    return (CALL_SHARED, "tie", f"a tie: {APPROACH_CALLS[name]} {d.mean:+.3f} [{d.low:+.3f}, {d.high:+.3f}] "
            f"held-out macro AP against one shared network; choose by cost (one network instead of {n_tasks})")


def _train_approach(config: RunConfig, train: LabelTable, fit: ProbeData, held: ProbeData, name: str,
                    networks: list[list[int]], scored: list[int], checkpoints: list[float],
                    seed: int) -> ApproachEvidence:
    start = time.perf_counter()
    device = probe_device(config)
    task_weights, pos_weight = positive_weights(config, train)
    names = train.tasks
    ap: dict[str, list[float]] = {names[j]: [] for j in scored}
    scores: dict[str, list[np.ndarray]] = {names[j]: [] for j in scored}
    labels: dict[str, np.ndarray] = {}
    parameters = steps = 0
    for columns in networks:
        rows = np.flatnonzero(fit.known[:, columns].any(dim=1).numpy())
        if len(rows) < 2:
            continue
        part = ProbeData(fit.x[rows], fit.targets[rows][:, columns], fit.known[rows][:, columns], fit.images,
                         fit.rows[rows])
        offset = zlib.crc32(f"{name}/{','.join(map(str, columns))}".encode())
        network, outputs, done = _train_network(config, train, part, columns, checkpoints, held, device,
                                                task_weights[columns], None if pos_weight is None
                                                else pos_weight[columns], seed + offset)
        parameters += sum(p.numel() for p in network.parameters())
        steps += done
        for out, j in enumerate(columns):
            if j not in scored:
                continue
            known = held.known[:, j].numpy()
            y = labels[names[j]] = held.targets[known, j].numpy()
            for logits in outputs:
                probability = 1 / (1 + np.exp(-logits[known, out].astype(np.float64)))
                scores[names[j]].append(probability)
                ap[names[j]].append(_ap(y, probability))
    return ApproachEvidence(name, ap, len(networks), parameters, steps, time.perf_counter() - start, scores, labels)


def _train_network(config: RunConfig, train: LabelTable, data: ProbeData, columns: list[int],
                   checkpoints: list[float], held: ProbeData, device: torch.device, task_weights: torch.Tensor,
                   pos_weight: torch.Tensor | None, seed: int) -> tuple[torch.nn.Module, list[np.ndarray], int]:
    """Train one network on `data` with the recipe's AdamW and schedule; held-out logits at each checkpoint."""
    cfg = config.train
    batch_size = max(min(cfg.batch_size, len(data)), 2)
    per_epoch = max(len(data) // batch_size, 1)
    marks = [max(1, math.ceil(c * per_epoch)) for c in checkpoints]
    total = marks[-1]
    outputs = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed % 2**31)
        network = build_probe_network(config, len(columns), train).to(device)
        network.train()
        optimizer = torch.optim.AdamW(network.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, schedule_factor(cfg, total, int(cfg.warmup_epochs * per_epoch)))
        generator = torch.Generator().manual_seed(seed % 2**31)
        weights, pos = task_weights.to(device), None if pos_weight is None else pos_weight.to(device)
        step = 0
        while step < total:
            order = torch.randperm(len(data), generator=generator)
            for first in range(0, len(data) - batch_size + 1, batch_size):
                x, targets, known = data.batch(order[first:first + batch_size], device)
                losses = per_task_losses(network(x), targets, known, normalization=config.loss.normalization,
                                         pos_weight=pos)[0]
                optimizer.zero_grad(set_to_none=True)
                (losses * weights).sum().backward()
                optimizer.step()
                scheduler.step()
                step += 1
                if step in marks:  # two checkpoints may fall on the same step of a tiny data set
                    logits = predict_logits(network, held.inputs(), 512, device)
                    outputs += [logits] * marks.count(step)
                if step >= total:
                    break
    return network, outputs, step


def _ap(y: np.ndarray, probability: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    if not 0 < y.sum() < len(y):
        return float("nan")
    return float(average_precision_score(y, probability))


def _macro_difference(base: ApproachEvidence, other: ApproachEvidence, tasks: list[str],
                      checkpoint: int) -> Difference:
    """Macro AP(other) − AP(base) over `tasks`, the per-task paired bootstrap resamples averaged (as compare)."""
    samples, points = [], []
    for task in tasks:
        a, b = base.scores.get(task), other.scores.get(task)
        if not a or not b:
            continue
        y = base.labels[task]
        boot, d = paired_ap_difference(y, a[checkpoint][None], b[checkpoint][None], n_boot=N_BOOT,
                                       seed=zlib.crc32(f"{other.name}/{task}/{checkpoint}".encode()))
        samples.append(boot)
        points.append(d.mean)
    if not samples:
        return Difference(float("nan"), float("nan"), float("nan"))
    return summarize(np.nanmean(np.stack(samples), axis=0), float(np.nanmean(points)))
