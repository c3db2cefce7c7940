"""The advisor's decision rules: task groups from the relatedness matrix, then one call per task and overall.

The rules are described in the docstring of :mod:`multitask.advise`; the thresholds are the named constants
below (and in :mod:`multitask.advise.stats`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from multitask.advise.stats import DATA_RATIO_LOW

CALL_SHARED = "one shared network"
CALL_GROUPS = "shared network per group"
CALL_SEPARATE = "separate networks"
CALL_TRANSFER = "transfer from a related, larger task"
CALLS = (CALL_SHARED, CALL_GROUPS, CALL_SEPARATE, CALL_TRANSFER)

RELATED_THRESHOLD = 0.3
"""Tasks are grouped while the mean relatedness within the group stays ≥ this (average linkage); a task left
alone joins the group of its most related task when that relatedness is ≥ this."""

STRONG_RELATED = 0.5
"""Transfer needs the source task to be at least this related to the small task."""

TRANSFER_DATA_FACTOR = 10.0
"""Transfer needs the source task to have at least this many times the small task's labels."""

CONFLICT_THRESHOLD = -0.2
"""Pairs below this relatedness have conflicting gradients; they are listed in the notes."""

CAPACITY_GAP = 0.2
"""The shared network underfits a task when the fraction of the task's baseline loss (the entropy of its base
rate) that it removes falls short of what the task's own network removes by more than this. (A fraction rather
than the raw loss: on easy tasks both losses approach 0 and any ratio of them looks large.)"""


@dataclass
class TaskAdvice:
    """The call for one task, with the reasons a user can check."""

    task: str
    call: str
    reasons: list[str] = field(default_factory=list)
    group: int | None = None
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def suggest_groups(relatedness: np.ndarray, threshold: float = RELATED_THRESHOLD) -> list[list[int]]:
    """Task groups: hierarchical clustering (average linkage) on 1 − relatedness, cut at 1 − threshold; then
    each task left alone whose most related task has relatedness ≥ threshold joins that task's group.

    Average linkage keeps every group's mean pairwise relatedness ≥ threshold; the second step keeps a task
    related to one member of a group (e.g. an attribute task to its base task) from being left out because it
    is unrelated to the other members. NaN (never measured) counts as 0. Groups are sorted by size, then by
    their first task.

    >>> r = np.array([[1, .9, 0, .4], [.9, 1, .1, 0], [0, .1, 1, 0], [.4, 0, 0, 1]])
    >>> suggest_groups(r)
    [[0, 1, 3], [2]]
    """
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    t = len(relatedness)
    if t < 2:
        return [list(range(t))]
    r = np.nan_to_num((relatedness + relatedness.T) / 2, nan=0.0)
    distance = np.clip(1 - r, 0, 2)
    np.fill_diagonal(distance, 0)
    labels = fcluster(linkage(squareform(distance, checks=False), method="average"), t=1 - threshold,
                      criterion="distance")
    label_of = [int(v) for v in labels]
    np.fill_diagonal(r, -np.inf)
    sizes = {v: label_of.count(v) for v in set(label_of)}
    alone = [i for i in range(t) if sizes[label_of[i]] == 1 and r[i].max() >= threshold]
    for i in sorted(alone, key=lambda i: -r[i].max()):
        if sizes[label_of[i]] == 1:  # may have been joined by an earlier one meanwhile
            partner = int(np.argmax(r[i]))
            sizes[label_of[i]] -= 1
            label_of[i] = label_of[partner]
            sizes[label_of[i]] += 1
    groups: dict[int, list[int]] = {}
    for index, label in enumerate(label_of):
        groups.setdefault(label, []).append(index)
    return sorted(groups.values(), key=lambda g: (-len(g), g[0]))


def capacity_flag(shared_explained: float, own_explained: float) -> bool:
    """True when the shared network removes clearly less of a task's baseline loss than its own network.

    >>> capacity_flag(0.5, 0.9), capacity_flag(0.85, 0.95)
    (True, False)
    """
    if not (np.isfinite(shared_explained) and np.isfinite(own_explained)):
        return False
    return own_explained - shared_explained > CAPACITY_GAP


def _best_partner(relatedness: np.ndarray, t: int) -> tuple[int | None, float]:
    row = np.array(relatedness[t], dtype=float)
    row[t] = np.nan
    if not np.isfinite(row).any():
        return None, float("nan")
    j = int(np.nanargmax(row))
    return j, float(row[j])


def _names(tasks: Sequence[str], indices: Sequence[int]) -> str:
    shown = [tasks[i] for i in indices[:8]]
    return ", ".join(shown) + (f" and {len(indices) - 8} more" if len(indices) > 8 else "")


def decide(tasks: Sequence[str], known: Sequence[int], relatedness: np.ndarray, groups: list[list[int]],
           capacity: dict[int, dict[str, Any]], source_name: str) -> tuple[str, list[str], list[TaskAdvice]]:
    """The overall call, its reasons, and one TaskAdvice per task (see the package docstring for the rules)."""
    n = len(tasks)
    group_of = {t: g for g, members in enumerate(groups) for t in members}
    advice: list[TaskAdvice] = []
    for t, task in enumerate(tasks):
        g = group_of[t]
        members = groups[g]
        partner, partner_r = _best_partner(relatedness, t)
        item = TaskAdvice(task, CALL_SEPARATE, group=g)
        k = int(known[t])
        if k == 0:
            item.reasons.append("it has no known label in the training split, so it cannot be trained at all")
        elif t in capacity and capacity[t].get("flagged"):
            c = capacity[t]
            item.reasons.append(
                f"the shared network fits it clearly worse than its own network: training loss {c['shared_loss']:.3f} "
                f"vs {c['own_loss']:.3f} after the same number of epochs, removing {c['shared_explained']:.0%} vs "
                f"{c['own_explained']:.0%} of its baseline loss {c['baseline_loss']:.3f} (condition 3: the shared "
                f"network may be too small for it); give it its own network, or try a bigger trunk")
        elif len(members) < 2:
            if partner is None:
                item.reasons.append("its relatedness to the other tasks could not be measured (no co-labelled "
                                    "rows in the probe); nothing shows that it shares features with them")
            else:
                item.reasons.append(
                    f"no other task is related to it: its highest relatedness is {partner_r:.2f} (with "
                    f"{tasks[partner]}), below {RELATED_THRESHOLD} (condition 1: no shared low-level features)"
                    if not partner_r >= RELATED_THRESHOLD else
                    f"it is alone in its group although its relatedness with {tasks[partner]} is "
                    f"{partner_r:.2f}")
        else:
            others = [j for j in members if j != t]
            group_labels = int(sum(known[j] for j in others))
            ratio = group_labels / k
            source_ok = (partner is not None and partner in others and partner_r >= STRONG_RELATED
                         and known[partner] >= TRANSFER_DATA_FACTOR * k)
            rest = group_labels - (int(known[partner]) if partner is not None and partner in others else 0)
            if source_ok and rest < DATA_RATIO_LOW * k:
                item.call, item.source = CALL_TRANSFER, tasks[partner]
                item.reasons.append(
                    f"it has {k} labels; its most related task {tasks[partner]} (relatedness {partner_r:.2f}) has "
                    f"{int(known[partner])} ({known[partner] / k:.0f}×), and the rest of its group adds only {rest} "
                    f"(< {DATA_RATIO_LOW:g}× its own): pretrain on {tasks[partner]}, then fine-tune on {task}")
            else:
                item.call = CALL_SHARED if len(members) == n else CALL_GROUPS
                item.reasons.append(
                    f"it is related to {_names(tasks, others)} (mean relatedness "
                    f"{np.nanmean([relatedness[t, j] for j in others]):.2f}; highest {partner_r:.2f} with "
                    f"{tasks[partner] if partner is not None else '–'})")
                if ratio >= DATA_RATIO_LOW:
                    item.reasons.append(f"the other tasks of its group have {group_labels} labels, {ratio:.2f}× its "
                                        f"own {k} (condition 2 holds)")
                else:
                    item.reasons.append(
                        f"the other tasks of its group have only {group_labels} labels, {ratio:.2f}× its own {k} "
                        f"(< {DATA_RATIO_LOW:g}: expect little gain from their data; sharing still saves a network)")
        advice.append(item)

    # groups in which at least two tasks really share
    sharing = [[t for t in members if advice[t].call in (CALL_SHARED, CALL_GROUPS)] for members in groups]
    real = [s for s in sharing if len(s) >= 2]
    for members in sharing:
        if len(members) == 1:  # its partners chose transfer (from it) or their own network
            t = members[0]
            targets = [a.task for a in advice if a.source == tasks[t]]
            others = [advice[j].task for j in groups[group_of[t]] if j != t and advice[j].source != tasks[t]]
            advice[t].call = CALL_SEPARATE
            advice[t].reasons = advice[t].reasons[:1]  # keep "related to …", drop the sharing sentence
            if targets:
                advice[t].reasons.append(f"it is the source for transfer to {', '.join(targets)}; train it on its "
                                         "own")
            if others:
                advice[t].reasons.append(f"the other tasks of its group ({', '.join(others)}) get their own "
                                         "networks (see their reasons), so it trains on its own")
    single_group = len(real) == 1 and len(real[0]) == n
    for members in real:
        for t in members:
            advice[t].call = CALL_SHARED if single_group else CALL_GROUPS

    reasons: list[str] = []
    transfers = [a for a in advice if a.call == CALL_TRANSFER]
    if n == 1:
        call = CALL_SEPARATE
        reasons.append("there is only one task: nothing to share")
    elif single_group:
        call = CALL_SHARED
        reasons.append(f"all {n} tasks form one group of related tasks (mean relatedness within the group "
                       f"≥ {RELATED_THRESHOLD}) and none is flagged by the capacity check")
    elif real:
        call = CALL_GROUPS
        listed = "; ".join("{" + _names(tasks, members) + "}" for members in real)
        reasons.append(f"{len(real)} group(s) of related tasks share a network: {listed}")
        rest = [a.task for a in advice if a.call == CALL_SEPARATE]
        if rest:
            reasons.append(f"{len(rest)} task(s) get their own network: {', '.join(rest[:8])}"
                           + (" …" if len(rest) > 8 else ""))
    elif transfers:
        call = CALL_TRANSFER
        reasons.append("no group of tasks shares a network with profit, but "
                       + "; ".join(f"{a.task} can start from {a.source}" for a in transfers))
    else:
        call = CALL_SEPARATE
        reasons.append(f"no two tasks are related enough to share features (relatedness < {RELATED_THRESHOLD} "
                       f"from {source_name})")
    if transfers and call != CALL_TRANSFER:
        reasons.append("transfer: " + "; ".join(f"{a.task} from {a.source}" for a in transfers))
    flagged = [tasks[t] for t, c in capacity.items() if c.get("flagged")]
    if flagged:
        reasons.append(f"the shared network fits {len(flagged)} task(s) clearly worse than their own networks "
                       f"({', '.join(flagged)}): it may be too small; a bigger trunk may let them share after all")
    return call, reasons, advice
