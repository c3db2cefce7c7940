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
"""Pairs below this relatedness have conflicting gradients. Tasks share a network while the mean relatedness
within their group stays ≥ this (average linkage): only conflict keeps tasks apart, not independence."""

CAPACITY_GAP = 0.3
"""The shared network underfits a task when the fraction of the task's baseline loss (the entropy of its base
rate) that it removes falls short of what the task's own network removes by more than this. (A fraction rather
than the raw loss: on easy tasks both losses approach 0 and any ratio of them looks large.) Was 0.2: a short
probe trains each task more slowly in the shared network than alone, which alone opens gaps of 0.1–0.25."""

CAPACITY_HELD_AP_GAP = 0.1
"""...and, where the capacity check has held-out probe rows, the task's own network must also rank those rows
better, by more than this in AP: a training-fit gap that does not show on unseen rows is memorisation of a few
rows by the own network, not a trunk too small for the shared one."""

CAPACITY_MAJORITY = 0.5
"""A trunk too small for the tasks is a property of the trunk: the overall call becomes separate networks (or a
bigger trunk) when at least this share of the conclusively checked tasks (and at least 2) is flagged. One
flagged task alone is weak evidence (a short probe flags tasks at every width, also where the shared network
wins the full training): it keeps sharing, with a warning, unless it has a transfer source."""

MIN_FEATURES_PER_TASK = 8
"""The shared representation needs at least this many features per task; below, the trunk is too small for all
the tasks at once (condition 3) → separate networks, or a bigger trunk. Each task reads its answer from the
representation through its own head; with few dimensions per task the tasks compete for the same directions.
Calibrated on experiment (b) of docs/experiments.md (widths with 1, 2 and 4 features per task lost to separate
networks, 8 and 16 did not) and checked on (a) (0.64 per task: separate won) and (c) (8 per task: shared won)."""


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


def capacity_flag(shared_explained: float, own_explained: float, held_shared_ap: float = float("nan"),
                  held_own_ap: float = float("nan")) -> bool:
    """True when the shared network removes clearly less of a task's baseline loss than its own network, confirmed
    on held-out probe rows when there are any (the own network's AP there is higher by > CAPACITY_HELD_AP_GAP).

    >>> capacity_flag(0.5, 0.9), capacity_flag(0.85, 0.95)
    (True, False)
    >>> capacity_flag(0.5, 0.9, held_shared_ap=0.70, held_own_ap=0.75)  # not confirmed on unseen rows
    False
    """
    if not (np.isfinite(shared_explained) and np.isfinite(own_explained)):
        return False
    if own_explained - shared_explained <= CAPACITY_GAP:
        return False
    if np.isfinite(held_shared_ap) and np.isfinite(held_own_ap):
        return bool(held_own_ap - held_shared_ap > CAPACITY_HELD_AP_GAP)
    return True


def trunk_too_small(capacity: dict[int, dict[str, Any]]) -> tuple[bool, int, int]:
    """(too small, flagged, conclusive): whether at least CAPACITY_MAJORITY of the conclusively checked tasks
    (and at least 2 of them) are flagged by the capacity check.

    >>> trunk_too_small({0: {"flagged": True}, 1: {"flagged": True}, 2: {"flagged": False}})
    (True, 2, 3)
    >>> trunk_too_small({0: {"flagged": True}, 1: {"inconclusive": "short"}, 2: {"skipped": "time"}})
    (False, 1, 1)
    """
    conclusive = [c for c in capacity.values()
                  if not c.get("skipped") and not c.get("inconclusive") and not c.get("held_inconclusive")]
    flagged = sum(1 for c in conclusive if c.get("flagged"))
    return flagged >= 2 and flagged >= CAPACITY_MAJORITY * len(conclusive), flagged, len(conclusive)


def _best_partner(relatedness: np.ndarray, t: int) -> tuple[int | None, float]:
    row = np.array(relatedness[t], dtype=float)
    row[t] = np.nan
    if not np.isfinite(row).any():
        return None, float("nan")
    j = int(np.nanargmax(row))
    return j, float(row[j])


def _transfer_source(t: int, relatedness: np.ndarray, known: Sequence[int],
                     capacity: dict[int, dict[str, Any]]) -> int | None:
    """A strongly related task with ≥ TRANSFER_DATA_FACTOR × t's labels and no capacity flag, or None."""
    partner, partner_r = _best_partner(relatedness, t)
    if (partner is not None and partner_r >= STRONG_RELATED and known[partner] >= TRANSFER_DATA_FACTOR * known[t]
            and not capacity.get(partner, {}).get("flagged")):
        return partner
    return None


def _names(tasks: Sequence[str], indices: Sequence[int]) -> str:
    shown = [tasks[i] for i in indices[:8]]
    return ", ".join(shown) + (f" and {len(indices) - 8} more" if len(indices) > 8 else "")


def narrow_representation(width: int | None, n_tasks: int) -> bool:
    """The shared representation has fewer than MIN_FEATURES_PER_TASK features per task (and T ≥ 2)."""
    return width is not None and n_tasks > 1 and width < MIN_FEATURES_PER_TASK * n_tasks


@dataclass
class _Situation:
    """What every rule looks at: the tasks, their labels, relatedness, groups and the capacity verdicts."""

    tasks: Sequence[str]
    known: Sequence[int]
    relatedness: np.ndarray
    groups: list[list[int]]
    capacity: dict[int, dict[str, Any]]
    source_name: str
    width: int | None

    def __post_init__(self) -> None:
        self.n = len(self.tasks)
        self.group_of = {t: g for g, members in enumerate(self.groups) for t in members}
        self.by_capacity, self.n_flagged, self.n_conclusive = trunk_too_small(self.capacity)
        self.narrow = narrow_representation(self.width, self.n)
        self.too_small = self.by_capacity or self.narrow

    def flagged(self, t: int) -> bool:
        return t in self.capacity and bool(self.capacity[t].get("flagged"))

    def narrow_reason(self) -> str:
        n, width = self.n, self.width
        return (f"the shared representation has {width} features for {n} tasks ({(width or 0) / n:.1f} per "
                f"task, fewer than {MIN_FEATURES_PER_TASK}): the tasks would compete for the same directions, "
                f"so the trunk looks too small for all of them at once (condition 3); separate networks, or a "
                f"trunk with at least {MIN_FEATURES_PER_TASK * n} features")

    def capacity_reason(self) -> str:
        return (f"the capacity check flags {self.n_flagged} of the {self.n_conclusive} tasks it could judge: the "
                "trunk looks too small to hold them all (condition 3); separate networks, or a bigger trunk")


def decide(tasks: Sequence[str], known: Sequence[int], relatedness: np.ndarray, groups: list[list[int]],
           capacity: dict[int, dict[str, Any]], source_name: str,
           width: int | None = None) -> tuple[str, list[str], list[TaskAdvice]]:
    """The overall call, its reasons, and one TaskAdvice per task (see the package docstring for the rules).

    `groups` are the groups of tasks that may share a network: tasks that do not conflict
    (``suggest_groups(relatedness, CONFLICT_THRESHOLD)``). `width`: the number of features of the shared
    representation (None: unknown). First each task's own call (:func:`_task_call`), then the groups in which
    fewer than two tasks still share are dissolved (:func:`_settle_groups`), then the overall call
    (:func:`_overall_call`).

    >>> call, reasons, advice = decide(["a", "b"], [50, 40], np.array([[1, .6], [.6, 1]]), [[0, 1]], {}, "probe")
    >>> call, [a.call for a in advice]
    ('one shared network', ['one shared network', 'one shared network'])
    """
    situation = _Situation(tasks, known, relatedness, groups, capacity, source_name, width)
    advice = [_task_call(situation, t) for t in range(situation.n)]
    real, single_group = _settle_groups(situation, advice)
    call, reasons = _overall_call(situation, advice, real, single_group)
    return call, reasons, advice


# ------------------------------------------------------------------------------------------- per-task rules


def _task_call(s: _Situation, t: int) -> TaskAdvice:
    """The first rule that applies: no labels; flagged by the capacity check (own network or transfer); trunk too
    small for all; alone in its group; otherwise it shares with its group."""
    item = TaskAdvice(s.tasks[t], CALL_SEPARATE, group=s.group_of[t])
    k = int(s.known[t])
    source = _transfer_source(t, s.relatedness, s.known, s.capacity) if s.flagged(t) and k else None
    if k == 0:
        item.reasons.append("it has no known label in the training split, so it cannot be trained at all")
    elif s.flagged(t) and (s.too_small or source is not None):
        _own_network_or_transfer(s, t, item, source)
    elif s.too_small:
        item.reasons.append(s.narrow_reason() if s.narrow else s.capacity_reason())
    elif len(s.groups[s.group_of[t]]) < 2:
        _alone(s, t, item)
    else:
        _shares_with_group(s, t, item)
    return item


def _capacity_fit(c: dict[str, Any]) -> str:
    """The capacity check's finding for a flagged task, in words."""
    held = (f"; on held-out probe rows its own network reaches AP {c['held_own_ap']:.2f} against "
            f"{c['held_shared_ap']:.2f}" if np.isfinite(c.get("held_own_ap", np.nan))
            and np.isfinite(c.get("held_shared_ap", np.nan)) else "")
    return (f"the shared network fits it clearly worse than its own network: training loss "
            f"{c['shared_loss']:.3f} vs {c['own_loss']:.3f} after the same number of epochs, removing "
            f"{c['shared_explained']:.0%} vs {c['own_explained']:.0%} of its baseline loss "
            f"{c['baseline_loss']:.3f}{held}")


def _own_network_or_transfer(s: _Situation, t: int, item: TaskAdvice, source: int | None) -> None:
    """A flagged task: transfer from its source when it has one, else its own network."""
    fit = _capacity_fit(s.capacity[t])
    k, task = int(s.known[t]), s.tasks[t]
    if source is not None:  # source is the best partner: see _transfer_source
        partner_r = _best_partner(s.relatedness, t)[1]
        item.call, item.source = CALL_TRANSFER, s.tasks[source]
        item.reasons.append(
            f"{fit}; but its most related task {s.tasks[source]} (relatedness {partner_r:.2f}) has "
            f"{int(s.known[source])} labels ({s.known[source] / k:.0f}× its {k}): give it its own network "
            f"started from {s.tasks[source]}'s (pretrain on {s.tasks[source]}, then fine-tune on {task})")
    else:
        item.reasons.append(f"{fit} (condition 3: the shared network may be too small for it); give it its "
                            "own network, or try a bigger trunk")


def _alone(s: _Situation, t: int, item: TaskAdvice) -> None:
    """A task alone in its group: unmeasured, or in conflict with every other task."""
    partner, partner_r = _best_partner(s.relatedness, t)
    if partner is None:
        item.reasons.append("its relatedness to the other tasks could not be measured (no co-labelled "
                            "rows in the probe)")
    else:
        item.reasons.append(
            f"it conflicts with every other task: its highest relatedness is {partner_r:.2f} (with "
            f"{s.tasks[partner]}), below {CONFLICT_THRESHOLD} (their gradients pull the shared features "
            f"apart)")


def _shares_with_group(s: _Situation, t: int, item: TaskAdvice) -> None:
    """A task that shares with its group: why (related or independent), and a capacity warning if flagged."""
    members = s.groups[s.group_of[t]]
    others = [j for j in members if j != t]
    related = [j for j in others if s.relatedness[t, j] >= RELATED_THRESHOLD]
    item.call = CALL_SHARED if len(members) == s.n else CALL_GROUPS
    if related:
        _related_reasons(s, t, item, related)
    else:
        partner_r = _best_partner(s.relatedness, t)[1]
        mean_r = float(np.nanmean([s.relatedness[t, j] for j in others]))
        item.reasons.append(
            f"it is independent of the other tasks (mean relatedness {mean_r:.2f}, highest "
            f"{partner_r:.2f}): their gradients neither help nor harm it measurably, so a shared "
            f"network costs it nothing and saves {len(members) - 1} network(s)")
    if related and len(related) < len(others):
        item.reasons.append(f"the other {len(others) - len(related)} task(s) of its group are independent "
                            "of it: sharing with them saves networks")
    group_labels = int(sum(s.known[j] for j in others))
    if not related and group_labels:
        item.reasons.append(f"the others' {group_labels} labels may still train low-level features it "
                            "shares with them (independent labels give orthogonal gradients at the "
                            "representation even when the features below are shared)")
    if s.flagged(t):
        c = s.capacity[t]
        item.reasons.append(
            f"warning: the capacity check flags it (the shared network removed {c['shared_explained']:.0%} "
            f"of its baseline loss, its own network {c['own_explained']:.0%}); one flagged task is weak "
            "evidence, so it keeps sharing: confirm with `multitask compare`, or give it its own network")


def _related_reasons(s: _Situation, t: int, item: TaskAdvice, related: list[int]) -> None:
    """Why a task gains from its related group members' labels (and when transfer is the alternative)."""
    k, task = int(s.known[t]), s.tasks[t]
    partner, partner_r = _best_partner(s.relatedness, t)
    related_labels = int(sum(s.known[j] for j in related))
    item.reasons.append(
        f"it is related to {_names(s.tasks, related)} (relatedness ≥ {RELATED_THRESHOLD}; highest "
        f"{partner_r:.2f} with {s.tasks[partner] if partner is not None else '–'}), whose "
        f"{related_labels} labels ({related_labels / k:.2f}× its own {k}) train the features it "
        "needs" + (" (condition 2 holds)" if related_labels >= DATA_RATIO_LOW * k else ""))
    if partner is not None and partner_r >= STRONG_RELATED and s.known[partner] >= TRANSFER_DATA_FACTOR * k:
        item.reasons.append(
            f"learning it together with {s.tasks[partner]} ({int(s.known[partner])} labels) trains its "
            f"features as pretraining on {s.tasks[partner]} would, in one network; transfer (pretrain on "
            f"{s.tasks[partner]}, fine-tune on {task}) is the alternative if only {task} is needed")


# ------------------------------------------------------------------------------------------- groups, overall


def _settle_groups(s: _Situation, advice: list[TaskAdvice]) -> tuple[list[list[int]], bool]:
    """Dissolve groups in which fewer than two tasks still share; (the groups that really share, whether one
    group holds every task)."""
    sharing = [[t for t in members if advice[t].call in (CALL_SHARED, CALL_GROUPS)] for members in s.groups]
    real = [members for members in sharing if len(members) >= 2]
    for members in sharing:
        if len(members) == 1:  # its partners chose transfer (from it) or their own network
            _left_alone(s, advice, members[0])
    single_group = len(real) == 1 and len(real[0]) == s.n
    for members in real:
        for t in members:
            advice[t].call = CALL_SHARED if single_group else CALL_GROUPS
    return real, single_group


def _left_alone(s: _Situation, advice: list[TaskAdvice], t: int) -> None:
    """The only task of its group still sharing: it trains on its own (and may be a transfer source)."""
    targets = [a.task for a in advice if a.source == s.tasks[t]]
    others = [advice[j].task for j in s.groups[s.group_of[t]] if j != t and advice[j].source != s.tasks[t]]
    advice[t].call = CALL_SEPARATE
    advice[t].reasons = advice[t].reasons[:1]  # keep "related to …", drop the sharing sentence
    if targets:
        advice[t].reasons.append(f"it is the source for transfer to {', '.join(targets)}; train it on its own")
    if others:
        advice[t].reasons.append(f"the other tasks of its group ({', '.join(others)}) get their own "
                                 "networks (see their reasons), so it trains on its own")


def _overall_call(s: _Situation, advice: list[TaskAdvice], real: list[list[int]], single_group: bool
                  ) -> tuple[str, list[str]]:
    """The overall call and its reasons, then notes on transfers and on flagged tasks that still share."""
    transfers = [a for a in advice if a.call == CALL_TRANSFER]
    call, reasons = _main_call(s, advice, real, single_group, transfers)
    if transfers and call != CALL_TRANSFER:
        reasons.append("transfer: " + "; ".join(f"{a.task} from {a.source}" for a in transfers))
    flagged = [s.tasks[t] for t, c in s.capacity.items() if c.get("flagged")]
    if flagged and not s.too_small:
        reasons.append(f"the capacity check flags {len(flagged)} task(s) ({', '.join(flagged)}), too few to call "
                       "the trunk too small: they share, with a warning (see their reasons)")
    return call, reasons


def _main_call(s: _Situation, advice: list[TaskAdvice], real: list[list[int]], single_group: bool,
               transfers: list[TaskAdvice]) -> tuple[str, list[str]]:
    """The first overall rule that applies: one task; narrow representation; trunk too small; one group; groups;
    transfers; otherwise separate networks."""
    n = s.n
    if n == 1:
        return CALL_SEPARATE, ["there is only one task: nothing to share"]
    if s.narrow:
        return CALL_SEPARATE, [s.narrow_reason()]
    if s.too_small:
        return CALL_SEPARATE, [
            f"the capacity check flags {s.n_flagged} of the {s.n_conclusive} tasks it could judge (the shared "
            "network fits them clearly worse than their own networks, also on held-out rows): the trunk looks too "
            "small for all tasks at once; use separate networks, or a bigger trunk"]
    if single_group:
        off = s.relatedness[~np.eye(n, dtype=bool)]
        related_pairs = int(np.sum(off >= RELATED_THRESHOLD) // 2)
        return CALL_SHARED, [
            f"no task conflicts with the others (mean relatedness within the group ≥ {CONFLICT_THRESHOLD}) and no "
            f"capacity problem was confirmed: all {n} tasks can share one network ({related_pairs} related pair(s) "
            f"with relatedness ≥ {RELATED_THRESHOLD}; independent tasks share for cost: one network instead of "
            f"{n})"]
    if real:
        listed = "; ".join("{" + _names(s.tasks, members) + "}" for members in real)
        reasons = [f"{len(real)} group(s) of tasks share a network: {listed}"]
        rest = [a.task for a in advice if a.call == CALL_SEPARATE]
        if rest:
            reasons.append(f"{len(rest)} task(s) get their own network: {', '.join(rest[:8])}"
                           + (" …" if len(rest) > 8 else ""))
        return CALL_GROUPS, reasons
    if transfers:
        return CALL_TRANSFER, ["no group of tasks shares a network with profit, but "
                               + "; ".join(f"{a.task} can start from {a.source}" for a in transfers)]
    return CALL_SEPARATE, [f"every task conflicts with the others (relatedness < {CONFLICT_THRESHOLD} from "
                           f"{s.source_name}) or has its own reason to train alone"]
