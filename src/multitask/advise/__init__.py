"""The advisor: should one shared network learn these tasks, or groups of them, or separate networks?

The question it answers: for this label table and the stated training recipe, which approach will have the
higher held-out macro AP, by how much and how surely, and what each costs. The call comes from **evidence**
(:mod:`multitask.advise.evidence`): the approaches trained briefly at the recipe (budgets in epochs, never
seconds) and scored on held-out training rows, with a bootstrap interval — "clear" when it excludes 0 (and the
half-budget difference agrees in sign), otherwise a tie, where the cheaper approach is named.

Multi-task learning pays when (1) the tasks can share low-level features, (2) for any one task the other tasks
together have much more data than it, and (3) the network is big enough to do well on all of them. The
advisor also measures each condition on the user's label table; the rules below turn those numbers into "the
rules' reading" — an explanation of the evidence, and the source of the candidate groups — and are the call
only with ``evidence=False``.

>>> import tempfile
>>> import numpy as np
>>> from multitask.config import build_config
>>> from multitask.tables import label_table_from_arrays
>>> x = np.random.default_rng(0).normal(size=(300, 6))
>>> y = np.column_stack([x[:, 0] > 0, x[:, 0] > 0.2, x[:, 1] > 0]).astype(float)
>>> table = label_table_from_arrays(x, y, tasks=["a", "a_high", "b"])
>>> config = build_config({"model": {"trunk": "mlp", "trunk_options": {"hidden": [16]}},
...                        "train": {"progress": False}})
>>> advice = advise(config, table, probe_steps=40, capacity_check=False, threads=1)
>>> advice.recommendation in CALLS, len(advice.task_advice)
(True, 3)
>>> sorted(p.name for p in advice.write(tempfile.mkdtemp()).iterdir())  # doctest: +ELLIPSIS
[...'advice.json'...]

What is measured (training split only)
--------------------------------------
1. Per task: known labels, positives, fraction unknown (:func:`stats.task_counts`).
2. The data condition: the other tasks' known labels in aggregate / the task's own (`ratio`). Flags:
   ``little_help`` when ratio < DATA_RATIO_LOW (2), ``largest`` when the task has the most labels and
   ≥ LARGEST_FACTOR (2) × the next task. The lecture's favourable case: 100 tasks × 1,000 labels, ratio 99.
3. Label correlation: the phi coefficient (Pearson on 0/1) on rows where both tasks are known, with the
   number of co-labelled rows; NaN below MIN_COLABELLED (10) rows.
4. Relatedness, from a short probe training run of the shared network (configured trunk, hard sharing) on
   at most `probe_rows` training rows (every task's rows included first), for `probe_steps` steps (an optional
   `probe_seconds` limit, off by default), batch ≤ 32; images are decoded once at
   min(data.image_size, `probe_image_size`) px, 32 by default: cheap, and enough to see which tasks use the
   same features (see :mod:`multitask.advise.probe`):
   the cosine of per-task gradients w.r.t. the shared representation on co-labelled rows, averaged over the
   steps after a warm-up; and, for T ≤ TAG_MAX_TASKS (20), the lookahead affinity of Fifty et al. (2021).
   The **relatedness** matrix is the gradient cosine; pairs it never measured (never co-labelled in a batch)
   take the symmetric, normalised lookahead affinity, which approximates the cosine of the gradients w.r.t.
   the shared parameters. Without a probe (``probe_steps=0``) relatedness is |phi|, a weak proxy.
   Negated tasks (y_B = 1 − y_A) share their features: the gradient cosine is ≈ +1 for them (the sign is
   absorbed by each task's head) and they count as related. Unmeasured pairs count as unrelated (0).
5. Capacity (``capacity_check=True``; off by default, the evidence measures held-out AP directly): a quarter
   of the probe rows (at most CAPACITY_EVAL_ROWS) is held out of
   the probe; each task's own network (same trunk, same number of epochs over its known probe rows) is compared
   with the shared network from the probe, by training fit and on the held-out rows. At most
   CAPACITY_MAX_TASKS (6) tasks are checked, those with the most probe labels; within `capacity_seconds`, a
   task whose training would not fit in the time left is skipped; a task its own network has not learnt yet
   (< 10 % of the baseline loss removed) is inconclusive, and so is one with fewer than
   CAPACITY_HELD_MIN_CLASS (10) held-out positives or negatives. A short probe mostly cannot tell a too-small
   network from slower joint training; the flag is conservative (absent evidence, no flag).
6. The width of the shared representation (features of the configured trunk) against the number of tasks:
   fewer than MIN_FEATURES_PER_TASK (8) per task means a trunk too small for all the tasks at once
   (experiments (a) and (b) of docs/experiments.md; no probe shows it).

The rules
---------
Groups: hierarchical clustering (average linkage) of the tasks on 1 − relatedness, cut so that every group's
mean pairwise relatedness is ≥ CONFLICT_THRESHOLD (−0.2); then a task left alone whose most related task has
relatedness ≥ CONFLICT_THRESHOLD joins that task's group. Only conflict splits tasks: related tasks share for
the features, independent ones (relatedness ≈ 0) for cost. (``suggest_groups(r)`` with its default threshold,
RELATED_THRESHOLD = 0.3, still gives the groups of related tasks; the reasons name them.)

Capacity flag: the shared network removes a fraction of the task's baseline training loss (the entropy of its
base rate) smaller by > CAPACITY_GAP (0.3) than the task's own network does after the same number of epochs,
and — where there are held-out rows — the own network's AP on them is higher by > CAPACITY_HELD_AP_GAP (0.1).

Per task t, the first rule that applies:

a. no known training label → ``separate networks`` (it cannot be trained);
b. capacity flag and its most related task s has relatedness ≥ STRONG_RELATED (0.5), ≥ TRANSFER_DATA_FACTOR
   (10) × t's labels and no flag itself → ``transfer from a related, larger task`` (start t's network from s's
   trunk: t needs a trunk adapted to it, and s's features are the closest start); capacity flag while the
   trunk is too small (rule c) → ``separate networks``; a flag alone is weak evidence: the task goes on to the
   rules below, with a warning;
c. the trunk is too small: the representation has fewer than MIN_FEATURES_PER_TASK (8) features per task, or
   the capacity check flags at least CAPACITY_MAJORITY (half) of the tasks it could judge, and at least 2 →
   ``separate networks`` for every task (or a bigger trunk);
d. alone in its group (it conflicts with every other task) → ``separate networks``;
e. otherwise → it shares the network of its group; the reasons say which tasks of the group are related to it
   (their labels train its features; condition 2 holds when they have ≥ DATA_RATIO_LOW × its labels), which
   are independent (sharing saves networks), and, for a small task strongly related to a much larger one, that
   transfer is the alternative when only the small task is needed.

Then a group whose members, after these rules, share with fewer than two tasks does not share: its remaining
member gets ``separate networks`` (e.g. the source of a transfer). Overall:

- rule c → ``separate networks``;
- one group holding all tasks, all sharing → ``one shared network``;
- otherwise, some group with ≥ 2 sharing tasks → ``shared network per group`` (the rest: separate/transfer);
- otherwise, some transfer call → ``transfer from a related, larger task``;
- otherwise → ``separate networks``.

Calibration (docs/experiments.md, "The advisor against the measurements"). The rules above changed after
five experiments measured what the old ones predicted:

1. independent tasks share: on road scenes, object tasks with independent labels measure gradient cosines ≈ 0
   (and so do texture tasks whether they share features or not), yet one shared network was as good as
   separate ones and T× cheaper; near-zero relatedness means "no measurable help or harm". Groups were cut at
   RELATED_THRESHOLD, so such tasks got ``separate networks``; now only conflict (< CONFLICT_THRESHOLD) does.
2. CAPACITY_GAP 0.2 → 0.3, and the held-out confirmation (new): after a short probe, joint training lags every
   task's own network by 0.1–0.25 of the baseline loss at any trunk width, including widths where the shared
   network wins the full training; and own networks on a few hundred rows memorise them (a training-fit gap
   that does not show on unseen rows).
3. CAPACITY_MAJORITY (new): a trunk too small for the tasks shows on most of them, not one.
4. transfer only for a flagged task: a small task strongly related to a large one was learnt at least as well
   jointly (one network) as by pretraining and fine-tuning (two) in the experiments; the old rule sent such
   tasks to transfer whenever the large task had ≥ 10× the labels.
5. MIN_FEATURES_PER_TASK (second calibration): the shared network lost for lack of capacity in (a) and in (b)
   at small widths, which no probe measurement showed; the threshold comes from (b) and agrees with (a) and
   (c). Texture tasks that share their detectors ((d), r ≥ 0.5) need fewer features than it asks for: there
   the rule is too cautious.
6. one flagged task keeps sharing, with a warning (second calibration): single flags appeared where the shared
   network won the full training.

The probe is short and its numbers are estimates: confirm a call with ``multitask compare``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from multitask.advise import evidence as _evidence
from multitask.advise import parts as _parts
from multitask.advise import probe as _probe
from multitask.advise import rules as _rules
from multitask.advise.evidence import EVIDENCE_MAX_TASKS
from multitask.advise.probe import CAPACITY_EVAL_ROWS, CAPACITY_MAX_TASKS, PROBE_WARMUP_FRACTION, TAG_MAX_TASKS
from multitask.advise.result import Advice, plot_heatmap
from multitask.advise.rules import (
    CALL_GROUPS,
    CALL_SEPARATE,
    CALL_SHARED,
    CALL_TRANSFER,
    CALLS,
    CAPACITY_GAP,
    CAPACITY_HELD_AP_GAP,
    CAPACITY_MAJORITY,
    CONFLICT_THRESHOLD,
    MIN_FEATURES_PER_TASK,
    RELATED_THRESHOLD,
    STRONG_RELATED,
    TRANSFER_DATA_FACTOR,
    TaskAdvice,
    suggest_groups,
)
from multitask.advise.stats import DATA_RATIO_LOW, LARGEST_FACTOR, MIN_COLABELLED, label_correlation, task_counts
from multitask.checks import check_options
from multitask.config import RunConfig
from multitask.errors import ConfigError, LabelError
from multitask.reporting.advice import advice_settings
from multitask.tables import LabelTable, read_data

__all__ = [
    "CALLS", "CALL_GROUPS", "CALL_SEPARATE", "CALL_SHARED", "CALL_TRANSFER", "Advice", "TaskAdvice", "advise",
    "label_correlation", "plot_heatmap", "suggest_groups", "task_counts", "thresholds",
]

PROBE_STEPS = 200
PROBE_ROWS = 2000
PROBE_IMAGE_SIZE = 32
HELD_OUT_FRACTION = 0.25
"""With the evidence or the capacity check on, this share of the probe rows (at most CAPACITY_EVAL_ROWS) is held
out of every network's training, to score the approaches on rows none of them saw."""


def thresholds() -> dict[str, float]:
    """Every threshold of the rules, by name."""
    return {"DATA_RATIO_LOW": DATA_RATIO_LOW, "LARGEST_FACTOR": LARGEST_FACTOR, "MIN_COLABELLED": MIN_COLABELLED,
            "RELATED_THRESHOLD": RELATED_THRESHOLD, "STRONG_RELATED": STRONG_RELATED,
            "TRANSFER_DATA_FACTOR": TRANSFER_DATA_FACTOR, "CONFLICT_THRESHOLD": CONFLICT_THRESHOLD,
            "CAPACITY_GAP": CAPACITY_GAP, "CAPACITY_HELD_AP_GAP": CAPACITY_HELD_AP_GAP,
            "CAPACITY_MAJORITY": CAPACITY_MAJORITY, "HELD_OUT_FRACTION": HELD_OUT_FRACTION,
            "MIN_FEATURES_PER_TASK": MIN_FEATURES_PER_TASK,
            "TAG_MAX_TASKS": TAG_MAX_TASKS, "CAPACITY_MAX_TASKS": CAPACITY_MAX_TASKS,
            "PROBE_WARMUP_FRACTION": PROBE_WARMUP_FRACTION}


def advise(
    config: RunConfig,
    table: LabelTable | None = None,
    *,
    probe_steps: int = PROBE_STEPS,
    probe_seconds: float | None = None,
    probe_rows: int = PROBE_ROWS,
    probe_image_size: int | None = PROBE_IMAGE_SIZE,
    evidence: bool = True,
    evidence_epochs: float | None = None,
    evidence_tasks: int = EVIDENCE_MAX_TASKS,
    capacity_check: bool = False,
    capacity_seconds: float | None = None,
    capacity_tasks: int = CAPACITY_MAX_TASKS,
    tag: bool | None = None,
    threads: int | None = None,
    out_dir: Path | str | None = None,
    resume: bool = False,
    log: Callable[[str], None] | None = None,
) -> Advice:
    """Which approach will score the higher held-out macro AP on this table at this recipe, and how sure is it?

    `table` defaults to ``read_data(config.data)``. The call comes from the **evidence**
    (:mod:`multitask.advise.evidence`): shared, grouped and separate networks trained for `evidence_epochs`
    epochs each (default: half of ``train.epochs``) on the probe rows, scored on held-out training rows, for
    at most `evidence_tasks` tasks; ``evidence=False`` leaves the call to the rules. The probe trains the
    configured trunk for `probe_steps` steps on at most `probe_rows` training rows (images at
    min(data.image_size, probe_image_size) px) to measure relatedness, which explains the call and proposes the
    groups; ``probe_steps=0`` skips it (relatedness from label correlation). Budgets are steps and epochs, so the
    same data and seed give the same advice on any machine; `probe_seconds` / `capacity_seconds` add optional
    wall-clock limits (which make the answer depend on the machine's load). `tag`: compute the lookahead
    affinity (default: when T ≤ TAG_MAX_TASKS). The capacity check (off by default: the evidence measures the
    same on held-out rows) trains own networks for at most `capacity_tasks` tasks. `threads`: torch CPU
    threads during the call (restored after; 1 is much faster when other processes compete for the cores).
    With `out_dir`, the advice is also written there (see :meth:`Advice.write`), and each finished part (the
    probe, each task's capacity check) is saved in out_dir/partial as it finishes (:mod:`multitask.advise.parts`);
    ``resume=True`` reuses those parts and computes only the missing ones (the inputs must be the same: else a
    ConfigError names what differs). `log` receives progress lines.
    """
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _advise(config, table, probe_steps=probe_steps, probe_seconds=probe_seconds, probe_rows=probe_rows,
                       probe_image_size=probe_image_size, evidence=evidence, evidence_epochs=evidence_epochs,
                       evidence_tasks=evidence_tasks, capacity_check=capacity_check,
                       capacity_seconds=capacity_seconds, capacity_tasks=capacity_tasks, tag=tag, out_dir=out_dir,
                       resume=resume, log=log)
    finally:
        torch.set_num_threads(previous_threads)


def _advise(config: RunConfig, table: LabelTable | None, *, probe_steps: int, probe_seconds: float | None,
            probe_rows: int, probe_image_size: int | None, evidence: bool, evidence_epochs: float | None,
            evidence_tasks: int, capacity_check: bool, capacity_seconds: float | None,
            capacity_tasks: int, tag: bool | None, out_dir: Path | str | None, resume: bool,
            log: Callable[[str], None] | None) -> Advice:
    start = time.perf_counter()
    say = log or (lambda message: None)
    if resume and out_dir is None:
        raise ConfigError("resume needs the advisor's out dir (--resume DIR)")
    if table is None:
        table = read_data(config.data, seed=config.train.seed)
    check_options(config, table.kind, root=False)
    train = table.part("train")
    if not len(train):
        raise LabelError("no training rows (split column has no 'train'); the advisor uses the training split",
                         file=table.source)
    tasks = list(table.tasks)
    n_tasks = len(tasks)
    counts = task_counts(table)
    known = [c["known"] for c in counts]
    phi, co_labelled, both_positive = label_correlation(train.targets, train.known)
    notes: list[str] = []
    probe_result: _probe.ProbeResult | None = None
    capacity: list[dict] = []
    seed = config.train.seed
    parts = None
    if out_dir is not None:
        options = {"probe_steps": probe_steps, "probe_seconds": probe_seconds, "probe_rows": probe_rows,
                   "probe_image_size": probe_image_size, "capacity_check": capacity_check,
                   "capacity_seconds": capacity_seconds, "capacity_tasks": capacity_tasks, "tag": tag,
                   "evidence": evidence, "evidence_epochs": evidence_epochs, "evidence_tasks": evidence_tasks}
        parts = _parts.Parts(out_dir, _parts.fingerprint(config, table, options), config)
        parts.start(resume)

    labelled = n_tasks >= 2 and bool(train.known.any())
    run_probe = probe_steps > 0 and labelled
    run_evidence = evidence and labelled
    data = held = None
    if run_probe or run_evidence:
        rows = _probe.choose_probe_rows(train.known, probe_rows, seed)
        size = min(config.data.image_size, probe_image_size or config.data.image_size)
        held_rows = rows[:0]
        if capacity_check or run_evidence:
            rows, held_rows = _probe.split_held_out(train.known, rows, HELD_OUT_FRACTION, CAPACITY_EVAL_ROWS, seed)
        saved = parts.probe() if parts is not None and resume and run_probe else None
        done, spent = parts.capacity(tasks) if parts is not None and resume else ({}, 0.0)
        saved_evidence = parts.evidence() if parts is not None and resume and run_evidence else None
        order = _probe.capacity_order(train.known[rows], capacity_tasks) if capacity_check and run_probe else []
        if (run_probe and saved is None) or any(j not in done for j in order) or \
                (run_evidence and saved_evidence is None):
            say(f"loading {len(rows)} probe rows")
            data = _probe.load_probe_data(train, rows, size)
            held = _probe.load_probe_data(train, held_rows, size) if len(held_rows) else None
    if run_probe:
        if saved is None:
            use_tag = n_tasks <= TAG_MAX_TASKS if tag is None else tag
            say(f"probe: up to {probe_steps} steps of the shared network")
            probe_result = _probe.run_probe(config, train, data, steps=probe_steps, seconds=probe_seconds,
                                            image_size=size, tag=use_tag, seed=seed, log=log)
            shared = _probe.shared_fit(config, probe_result.network, data, held, seed) if capacity_check else None
            if parts is not None:
                parts.save_probe(probe_result, shared)
        else:
            say("probe: reusing the saved result")
            probe_result, shared = saved
        if capacity_check:
            say("capacity check" + (f" (reusing {len(done)} saved task(s))" if done else ""))
            if data is None:  # every row saved
                capacity = [done[j] for j in order]
            else:
                capacity = _probe.capacity_check(config, train, data, probe_result, seconds=capacity_seconds,
                                                 max_tasks=capacity_tasks, seed=seed, log=log, held=held,
                                                 shared=shared, done=done, spent=spent,
                                                 on_row=None if parts is None else parts.save_capacity)
            for c in capacity:
                c["flagged"] = (not c.get("skipped") and not c.get("inconclusive") and not c.get("held_inconclusive")
                                and _rules.capacity_flag(c["shared_explained"], c["own_explained"],
                                                         c.get("held_shared_ap", np.nan), c.get("held_own_ap", np.nan)))
            checked = [c for c in capacity if not c.get("skipped")]
            if len(checked) < n_tasks:
                notes.append(f"the capacity check covered {len(checked)} of {n_tasks} tasks (at most "
                             f"{capacity_tasks}, those with the most probe labels"
                             + (f", within {capacity_seconds} s)" if capacity_seconds else ")"))
            unclear = [c["task"] for c in capacity if c.get("inconclusive")]
            if unclear:
                notes.append("capacity check inconclusive (the probe was too short for a task's own network to "
                             "learn it): " + ", ".join(unclear))
        probe_result.network = None

    relatedness, source = _relatedness(probe_result, phi)
    groups = suggest_groups(relatedness, CONFLICT_THRESHOLD) if n_tasks > 1 else [[0]]
    capacity_by_task = {tasks.index(c["task"]): c for c in capacity}
    width = representation_width(config, table.n_features)
    rule_call, reasons, per_task = _rules.decide(tasks, known, relatedness, groups, capacity_by_task, source, width)
    measured: dict | None = None
    call, confidence = rule_call, "rules"
    if run_evidence:
        if saved_evidence is not None:
            say("evidence: reusing the saved comparison")
            measured = saved_evidence
        elif held is None or not len(held):
            notes.append("too few labelled training rows to hold some out: no evidence measured, the call is the "
                         "rules'")
        else:
            measured = _evidence.measure_evidence(config, train, data.rows, held.rows, image_size=size, seed=seed,
                                                  groups=groups, epochs=evidence_epochs, max_tasks=evidence_tasks,
                                                  fit=data, held=held, log=log).to_dict()
            if parts is not None:
                parts.save_evidence(measured)
        if measured is not None:
            call, confidence = measured["call"], measured["confidence"]
            reasons = [measured["statement"], f"the rules' reading of the measurements: {rule_call}", *reasons]
    notes += _notes(tasks, counts, relatedness, probe_result, n_tasks)
    advice = Advice(
        tasks=tasks, recommendation=call, reasons=reasons, task_advice=per_task,
        groups=[[tasks[t] for t in g] for g in groups], counts=counts, n_train=len(train), correlation=phi,
        co_labelled=co_labelled, both_positive=both_positive, relatedness=relatedness, relatedness_source=source,
        gradient_cosine=None if probe_result is None else probe_result.cosine,
        tag_affinity=None if probe_result is None else probe_result.tag,
        probe={} if probe_result is None else probe_result.summary(), capacity=capacity,
        thresholds=thresholds(), notes=notes, source=table.source, representation_width=width,
        settings=advice_settings(config),
        rule_call=rule_call, confidence=confidence, evidence=measured, recipe=recipe_options(config),
    )
    advice.seconds = time.perf_counter() - start
    if out_dir is not None:
        advice.write(out_dir)
    return advice


def representation_width(config: RunConfig, n_features: int = 0) -> int | None:
    """Features of the shared representation of the configured trunk (hard sharing), or None if unknown."""
    from multitask.models.trunks import build_trunk, trunk_takes_images

    options = dict(config.model.trunk_options)
    if not trunk_takes_images(config.model.trunk):
        options.setdefault("in_features", max(n_features, 1))
    try:
        return int(build_trunk(config.model.trunk, **options).out_features)
    except Exception:  # a custom trunk that cannot be built without more context
        return None


def _relatedness(probe: _probe.ProbeResult | None, phi: np.ndarray) -> tuple[np.ndarray, str]:
    """The matrix the rules use, and where it came from."""
    if probe is None:
        r = np.abs(phi)
        np.fill_diagonal(r, 1.0)
        return r, "label correlation (|phi| on co-labelled rows; no probe run)"
    r = probe.cosine.copy()
    source = "gradient cosine (per-task gradients w.r.t. the shared representation, co-labelled rows)"
    fallback = probe.tag_relatedness()
    if fallback is not None:
        fill = ~np.isfinite(r) & np.isfinite(fallback)
        if fill.any():
            r[fill] = fallback[fill]
            source += f"; {int(fill.sum() // 2)} pair(s) never co-labelled in a batch from the lookahead affinity"
    np.fill_diagonal(r, 1.0)
    return r, source


def _notes(tasks: list[str], counts: list[dict], relatedness: np.ndarray, probe: _probe.ProbeResult | None,
           n_tasks: int) -> list[str]:
    notes = []
    ratios = np.array([c["ratio"] for c in counts], dtype=float)
    if np.isfinite(ratios).any():
        notes.append(f"median data ratio (the others' labels / a task's own): {np.nanmedian(ratios):.1f}; the "
                     f"lecture's favourable case, 100 tasks × 1,000 labels, has 99")
    little = [c["task"] for c in counts if "little_help" in c["flags"]]
    if little:
        notes.append(f"{len(little)} task(s) get little help from the others' data (ratio < {DATA_RATIO_LOW:g}): "
                     + ", ".join(little[:10]) + (" …" if len(little) > 10 else ""))
    largest = [c["task"] for c in counts if "largest" in c["flags"]]
    if largest:
        notes.append(f"{largest[0]} has the most labels by far: it gives more help than it gets")
    untrainable = [c["task"] for c in counts if {"no_labels", "one_class"} & set(c["flags"])]
    if untrainable:
        notes.append("no labels or only one class in the training split: " + ", ".join(untrainable))
    conflicts = [(tasks[i], tasks[j], relatedness[i, j]) for i in range(n_tasks) for j in range(i + 1, n_tasks)
                 if np.isfinite(relatedness[i, j]) and relatedness[i, j] < CONFLICT_THRESHOLD]
    if conflicts:
        notes.append("conflicting gradients (relatedness < "
                     f"{CONFLICT_THRESHOLD}): " + ", ".join(f"{a}–{b} ({v:.2f})" for a, b, v in conflicts[:10]))
    if probe is not None:
        unmeasured = int((~np.isfinite(probe.cosine[np.triu_indices(n_tasks, 1)])).sum())
        if unmeasured:
            notes.append(f"{unmeasured} pair(s) of tasks were never labelled together in a probe batch; their "
                         "gradient cosine is missing")
        if probe.stopped_by_time:
            notes.append(f"the probe stopped after {probe.steps} steps at its time limit")
    return notes


def recipe_options(config: RunConfig) -> dict[str, object]:
    """The data, model, train and loss options that differ from their defaults, by config key, for printed
    commands (so that `multitask compare` confirms the advice at the same recipe, on the same inputs).

    >>> from multitask.config import build_config
    >>> recipe_options(build_config({"data": {"images": "img"}, "train": {"epochs": 3}}))
    {'data.images': 'img', 'train.epochs': 3}
    """
    out: dict[str, object] = {}
    for section in ("data", "model", "train", "loss"):
        values = getattr(config, section).model_dump(mode="json", exclude_defaults=True)
        out.update({f"{section}.{k}": v for k, v in values.items()})
    return out
