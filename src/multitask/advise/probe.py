"""The advisor's probe: a short training run of the shared network that measures how tasks help each other.

Two measurements are taken while the shared network (the configured trunk, hard sharing, per-task heads)
trains for a few hundred steps on a subsample of the training rows:

* **Gradient cosine** (as in the gradient-conflict literature, e.g. Yu et al. 2020): per batch, the gradient of
  each task's loss with respect to the shared representation z = ``network.representation(x)``, compared
  task against task by the cosine *on the rows where both tasks are known* (elsewhere one of the two gradients
  is zero by construction, which would only dilute the cosine). Averaged over the probe steps after a warm-up
  (the first PROBE_WARMUP_FRACTION of the planned steps, while the heads are still random), over the batches
  in which both tasks have co-labelled rows. The gradient reaches z through each task's own head, so a task
  and its negation (the same features, the opposite sign) get a cosine near +1: they share features, and
  they count as related.
* **Lookahead task affinity** (Fifty et al. 2021, "TAG"), when there are at most TAG_MAX_TASKS tasks: every
  few steps (about a third of the probe's time), for each task i a copy of the shared parameters takes the
  step the optimiser would take on task i's gradient alone (AdamW's current per-parameter scaling), and
  Z[i, j] = 1 − L_j(after) / L_j(before) measures how much that step lowers task j's loss on the same batch.
  Dropout is off and BatchNorm statistics are not updated during the lookahead. Z is not symmetric (row i:
  the task stepped on; column j: the task whose loss changes). Normalised and symmetrised
  (:meth:`ProbeResult.tag_relatedness`) it approximates the cosine of the two tasks' gradients with respect to
  the shared parameters, which also exists for tasks never labelled on the same rows.

The **capacity check** then trains each task's own network (same trunk, one head) for the same number of
epochs over that task's known probe rows, and compares the training fit of the shared network with that of the
task's own network on those rows: the training loss (mean logistic loss per known label), the fraction of the
baseline loss (the entropy of the task's base rate) it removes, and the training AP. A short training mixes
two effects: a network shared by many tasks also learns each of them more slowly per step, so the rule
(:func:`multitask.advise.rules.capacity_flag`) asks for a clear gap only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from multitask.config import RunConfig
from multitask.data.datamodule import feature_statistics
from multitask.data.datasets import eval_transform
from multitask.gradients import representation_gradients, surrogate_objective
from multitask.inference import default_device, predict_logits
from multitask.losses import per_task_losses
from multitask.models.network import MultiTaskNetwork, build_network
from multitask.tables import LabelTable

PROBE_WARMUP_FRACTION = 0.25
"""Gradient cosines of the first quarter of the planned probe steps are not averaged (random heads)."""

TAG_MAX_TASKS = 20
"""The lookahead affinity costs about 3T forward/backward passes per use; only computed for T ≤ this."""

CAPACITY_MAX_TASKS = 6
"""At most this many tasks get their own network in the capacity check (those with the most probe labels)."""

PROBE_MAX_BATCH = 32
"""The probe's batch size is min(train.batch_size, this): more, cheaper steps within the time limit."""

CAPACITY_EVAL_ROWS = 512
"""The capacity check measures training fit on at most this many probe rows (every task's rows included)."""

CAPACITY_HELD_MIN_CLASS = 10
"""The held-out comparison counts only with at least this many held-out positives and negatives of the task (AP
on one or two positives is noise)."""

CAPACITY_MIN_EXPLAINED = 0.1
"""Below this share of the baseline loss removed by the task's own network, the comparison is inconclusive."""

TAG_TIME_SHARE = 3
"""The lookahead runs every max(4, TAG_TIME_SHARE × T / 1.5) steps: about a third of the probe's time."""

EVAL_BATCH = 512

ADAM_BETAS = (0.9, 0.999)
"""The probe's AdamW moment decay rates (torch's defaults, passed explicitly: the lookahead uses the second)."""

ADAM_EPS = 1e-8

DROPOUT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)


@dataclass
class ProbeData:
    """The probe's rows, held in memory: features (float) or images (uint8, N×3×S×S)."""

    x: Tensor
    targets: Tensor
    known: Tensor
    images: bool
    rows: np.ndarray  # indices into the training split

    def __len__(self) -> int:
        return len(self.targets)

    def batch(self, index: Tensor, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        x = self.x[index].to(device)
        if self.images:
            x = eval_transform()(x)  # the datasets' preprocessing: uint8 → float in [0, 1]
        return x, self.targets[index].to(device), self.known[index].to(device)

    def inputs(self) -> Tensor:
        """Every row's input, preprocessed (on the CPU)."""
        return self.batch(torch.arange(len(self)), torch.device("cpu"))[0]


@dataclass
class ProbeResult:
    """What the probe measured; matrices are (T, T) numpy arrays with NaN where nothing was measured."""

    cosine: np.ndarray
    cosine_batches: np.ndarray
    tag: np.ndarray | None
    tag_batches: np.ndarray | None
    steps: int
    epochs: float
    seconds: float
    rows: int
    batch_size: int
    image_size: int | None
    warmup_steps: int
    stopped_by_time: bool
    device: str
    step_seconds: float
    network: MultiTaskNetwork | None = field(default=None, repr=False)

    def tag_relatedness(self) -> np.ndarray | None:
        """Symmetric lookahead relatedness in [−1, 1] from r_ij = Z[i, j] / Z[j, j] (how much a step on task i
        helps task j, relative to a step on j itself): ±√(r_ij · r_ji) when both have the same sign (to first
        order the cosine of the two tasks' preconditioned gradients w.r.t. the shared parameters), else their
        mean."""
        if self.tag is None:
            return None
        own = np.diag(self.tag)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(own[None, :] > 0, self.tag / own[None, :], np.nan)
            product = ratio * ratio.T
            symmetric = np.where(product > 0, np.sign(ratio) * np.sqrt(np.abs(product)), (ratio + ratio.T) / 2)
        return np.clip(symmetric, -1, 1)

    def summary(self) -> dict[str, Any]:
        return {"steps": self.steps, "epochs": self.epochs, "seconds": self.seconds, "rows": self.rows,
                "batch_size": self.batch_size, "image_size": self.image_size, "warmup_steps": self.warmup_steps,
                "stopped_by_time": self.stopped_by_time, "device": self.device,
                "seconds_per_step": self.step_seconds, "tag_computed": self.tag is not None,
                "tag_evaluations": 0 if self.tag_batches is None else int(np.diag(self.tag_batches).max(initial=0))}


# ------------------------------------------------------------------------------------------------ data


def choose_probe_rows(known: np.ndarray, max_rows: int, seed: int) -> np.ndarray:
    """Up to `max_rows` labelled rows: first up to max_rows // (2T) rows of every task (so small tasks are in),
    then uniformly random labelled rows; sorted indices.

    >>> known = np.zeros((100, 2), bool); known[:, 0] = True; known[:3, 1] = True
    >>> rows = choose_probe_rows(known, 20, seed=0)  # quota 20 // 4 = 5 rows per task first
    >>> len(rows), int(known[rows, 1].sum())
    (20, 3)
    """
    labelled = np.flatnonzero(known.any(axis=1))
    if len(labelled) <= max_rows:
        return labelled
    rng = np.random.default_rng(seed)
    quota = max(max_rows // (2 * known.shape[1]), 1)
    picks = [rng.choice(r, min(quota, len(r)), replace=False) for r in
             (np.flatnonzero(known[:, j]) for j in range(known.shape[1])) if len(r)]
    chosen = np.unique(np.concatenate(picks)) if picks else np.zeros(0, dtype=int)
    chosen = chosen[:max_rows] if len(chosen) > max_rows else chosen
    rest = np.setdiff1d(labelled, chosen)
    fill = rng.choice(rest, min(max_rows - len(chosen), len(rest)), replace=False)
    return np.sort(np.concatenate([chosen, fill]).astype(int))


def split_held_out(known: np.ndarray, rows: np.ndarray, fraction: float, max_rows: int, seed: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Split probe rows into (fit, held): a seeded random `fraction` of them (at most `max_rows`) held out, so the
    capacity check can compare the shared network with own networks on rows neither was trained on.

    >>> fit, held = split_held_out(np.ones((100, 2), bool), np.arange(100), 0.25, 20, seed=0)
    >>> len(fit), len(held), len(np.intersect1d(fit, held))
    (80, 20, 0)
    """
    n_held = min(int(round(fraction * len(rows))), max_rows)
    if n_held < 1 or len(rows) - n_held < 2:
        return rows, rows[:0]
    order = np.random.default_rng([seed, 7]).permutation(len(rows))
    held = np.sort(rows[order[:n_held]])
    return np.sort(rows[order[n_held:]]), held


def load_probe_data(train: LabelTable, rows: np.ndarray, image_size: int) -> ProbeData:
    """The selected training rows as tensors (images decoded once, squashed to `image_size`)."""
    part = train.subset(rows)
    if part.features is not None:
        x = torch.as_tensor(part.features, dtype=torch.float32)
        images = False
    else:
        from multitask.data.datasets import load_images

        x = load_images(list(part.images), image_size)
        images = True
    return ProbeData(x, torch.as_tensor(part.targets, dtype=torch.float32), torch.as_tensor(part.known),
                     images, rows)


# ------------------------------------------------------------------------------------------------ helpers


def probe_device(config: RunConfig) -> torch.device:
    """CUDA when available and allowed by train.accelerator, else the CPU."""
    return default_device(config.train.accelerator)


def build_probe_network(config: RunConfig, n_tasks: int, train: LabelTable) -> MultiTaskNetwork:
    """The configured trunk with hard sharing and the configured heads (whatever model.sharing says).

    The heads' last layer starts at zero: with random heads even two identical tasks would send their
    gradients into unrelated directions of z until the heads have learnt; from zero, each head is shaped only
    by its own task's labels (identical tasks get identical heads, a negated task the negated head).
    """
    model = config.model.model_copy(update={"sharing": "hard", "sharing_options": {}})
    mean, std = feature_statistics(train)
    network = build_network(model, n_tasks, train.n_features, feature_mean=mean, feature_std=std)
    weight = getattr(network.task_block, "weight", None)
    if isinstance(weight, nn.Parameter):  # zero last head layer: heads differ only by what their labels teach
        with torch.no_grad():
            weight.zero_()
    return network


def positive_weights(config: RunConfig, train: LabelTable) -> tuple[Tensor, Tensor | None]:
    """Loss weights and positive-class weights per task, as training uses them."""
    from multitask.training import loss_tensors

    return loss_tensors(config.loss, train)


@contextmanager
def _dropout_off(module: nn.Module) -> Iterator[None]:
    dropouts = [m for m in module.modules() if isinstance(m, DROPOUT) and m.training]
    for m in dropouts:
        m.eval()
    try:
        yield
    finally:
        for m in dropouts:
            m.train()


def _batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[Tensor]:
    """Endless shuffled batches of indices (every batch has batch_size rows; batch_size ≤ n)."""
    while True:
        order = torch.randperm(n, generator=generator)
        for start in range(0, n - batch_size + 1, batch_size):
            yield order[start:start + batch_size]


@torch.no_grad()
def evaluate_fit(network: MultiTaskNetwork, data: ProbeData, device: torch.device,
                 columns: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean logistic loss per known label and AP of each output column, on the probe rows (eval mode).

    `columns` maps the network's outputs to label columns of `data` (default: output j is column j).
    """
    from sklearn.metrics import average_precision_score

    logits = torch.from_numpy(predict_logits(network, data.inputs(), EVAL_BATCH, device))
    columns = columns if columns is not None else list(range(logits.shape[1]))
    losses, aps = np.full(len(columns), np.nan), np.full(len(columns), np.nan)
    for out, col in enumerate(columns):
        known = data.known[:, col]
        if not known.any():
            continue
        y = data.targets[known, col]
        s = logits[known, out]
        losses[out] = float(F.binary_cross_entropy_with_logits(s, y))
        if 0 < float(y.sum()) < len(y):
            aps[out] = float(average_precision_score(y.numpy(), s.numpy()))
    return losses, aps


# ------------------------------------------------------------------------------------------------ probe


class SecondMoment:
    """AdamW's per-parameter step scale lr / (√v̂ + ε), from a running second moment of the gradients kept here.

    The probe's optimiser is AdamW with betas :data:`ADAM_BETAS`: :meth:`update` after each backward keeps
    v = β₂ v + (1 − β₂) g² exactly as AdamW does (the same operations), without reading the optimiser's
    internal state. A parameter that has had no gradient yet has scale 0 (it would not move).
    """

    def __init__(self, params: list[nn.Parameter], lr: float) -> None:
        self.params, self.lr, self.beta2 = params, lr, ADAM_BETAS[1]
        self.squares: list[Tensor | None] = [None] * len(params)
        self.steps = [0] * len(params)

    def update(self) -> None:
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            if self.squares[i] is None:
                self.squares[i] = torch.zeros_like(p, memory_format=torch.preserve_format)
            self.squares[i].mul_(self.beta2).addcmul_(p.grad, p.grad, value=1 - self.beta2)
            self.steps[i] += 1

    def scales(self) -> list[Tensor]:
        out = []
        for p, v, step in zip(self.params, self.squares, self.steps, strict=True):
            if v is None:
                out.append(torch.zeros_like(p))
                continue
            correction = 1 - self.beta2 ** float(step)
            out.append(self.lr / ((v / correction).sqrt() + ADAM_EPS))
        return out


def _lookahead(network: MultiTaskNetwork, moment: SecondMoment, x: Tensor, targets: Tensor,
               known: Tensor, z: Tensor, gradients: Tensor, present: Tensor, pos_weight: Tensor | None) -> Tensor:
    """Z[p, j] = 1 − L_j(θ − Δ_p) / L_j(θ) for each present task p (rows) and every task j, where Δ_p is the
    step the optimiser would take on task p's gradient alone: lr · g_p / (√v̂ + ε), with AdamW's current
    second-moment estimate v̂ (:class:`SecondMoment`; parameters without a gradient yet do not move)."""
    names = [n for n, p in network.trunk.named_parameters() if p.requires_grad]
    params = tuple(moment.params)
    scales = moment.scales()
    buffers = dict(network.trunk.named_buffers())
    trunk_input = network.prepare(x)

    def losses_with(values: tuple[Tensor, ...]) -> Tensor:
        state = {**dict(zip(names, values, strict=True)), **{k: b.clone() for k, b in buffers.items()}}
        logits = network.task_logits(functional_call(network.trunk, state, (trunk_input,)))
        return per_task_losses(logits, targets, known, normalization="known", pos_weight=pos_weight)[0]

    out = torch.full((len(present), known.shape[1]), float("nan"), device=x.device)
    with _dropout_off(network):
        with torch.no_grad():
            before = losses_with(tuple(p.detach() for p in params))
        valid = (known.sum(0) > 0) & (before > 0)
        for row in range(len(present)):
            grads = torch.autograd.grad(z, params, grad_outputs=gradients[row].view_as(z), retain_graph=True,
                                        allow_unused=True)
            with torch.no_grad():
                moved = tuple(p.detach() if g is None else p.detach() - scale * g
                              for p, g, scale in zip(params, grads, scales, strict=True))
                after = losses_with(moved)
            out[row] = torch.where(valid, 1 - after / before.clamp(min=1e-12), torch.nan)
    return out


def run_probe(config: RunConfig, train: LabelTable, data: ProbeData, *, steps: int, seconds: float | None,
              image_size: int | None, tag: bool, seed: int = 0,
              log: Callable[[str], None] | None = None) -> ProbeResult:
    """Train the shared network for up to `steps` steps (or `seconds`), measuring task relatedness as it goes."""
    with torch.random.fork_rng(devices=[]):  # dropout draws from a seeded stream: the same in every process
        torch.manual_seed(seed)
        return _run_probe(config, train, data, steps=steps, seconds=seconds, image_size=image_size, tag=tag,
                          log=log, seed=seed)


def _run_probe(config: RunConfig, train: LabelTable, data: ProbeData, *, steps: int, seconds: float | None,
               image_size: int | None, tag: bool, seed: int, log: Callable[[str], None] | None) -> ProbeResult:
    start = time.perf_counter()
    device = probe_device(config)
    n_tasks = train.n_tasks
    network = build_probe_network(config, n_tasks, train).to(device)
    network.train()
    task_weights, pos_weight = positive_weights(config, train)
    task_weights = task_weights.to(device)
    pos_weight = pos_weight.to(device) if pos_weight is not None else None
    optimizer = torch.optim.AdamW(network.parameters(), lr=config.train.lr, weight_decay=config.train.weight_decay,
                                  betas=ADAM_BETAS, eps=ADAM_EPS)
    moment = SecondMoment([p for p in network.trunk.parameters() if p.requires_grad], config.train.lr)
    batch_size = max(min(config.train.batch_size, PROBE_MAX_BATCH, len(data)), 2)
    generator = torch.Generator().manual_seed(seed)
    batches = _batches(len(data), batch_size, generator)
    # [early, late] sums of per-batch cosines and their counts
    cos_sum, cos_count = np.zeros((2, n_tasks, n_tasks)), np.zeros((2, n_tasks, n_tasks), dtype=int)
    tag_sum = np.zeros((n_tasks, n_tasks)) if tag else None
    tag_count = np.zeros((n_tasks, n_tasks), dtype=int) if tag else None
    tag_every = max(4, math.ceil(TAG_TIME_SHARE * n_tasks / 1.5))  # a lookahead costs ≈ (2T + 1) / 3 steps
    planned, done, stopped = steps, 0, False
    warmup = int(PROBE_WARMUP_FRACTION * steps) if steps >= 8 else 0
    timing_from, train_seconds = time.perf_counter(), 0.0
    for step in range(steps):
        if seconds is not None and time.perf_counter() - start > seconds:
            stopped = True
            break
        if step == 5 and seconds is not None:  # re-plan once the time per step is known
            per_step = (time.perf_counter() - timing_from) / 5
            budget = seconds - (time.perf_counter() - start)
            affordable = step + int(budget / per_step / (1.35 if tag else 1.0))
            planned = max(min(steps, affordable), step + 1)
            warmup = int(PROBE_WARMUP_FRACTION * planned) if planned >= 8 else 0
        step_start = time.perf_counter()
        x, targets, known = data.batch(next(batches), device)
        z = network.representation(x)
        taken = representation_gradients(z, lambda shared, targets=targets, known=known: per_task_losses(
            network.task_logits(shared), targets, known, normalization=config.loss.normalization,
            pos_weight=pos_weight))
        if taken.gradients is None:
            continue
        present, gradients = taken.index, taken.gradients
        late = step >= warmup
        _accumulate_cosine(gradients.detach(), known[:, present], present.cpu().numpy(),
                           cos_sum[int(late)], cos_count[int(late)])
        lookahead_seconds = (2 * len(present) + 1) / 3 * train_seconds / max(done, 1)  # ≈ (2P + 1) / 3 steps
        in_time = seconds is None or time.perf_counter() - start + lookahead_seconds < seconds
        if tag_sum is not None and late and (step - warmup) % tag_every == 0 and in_time:
            train_seconds -= time.perf_counter()  # the lookahead's time does not count as a training step
            affinity = _lookahead(network, moment, x, targets, known, z, gradients.detach(), present,
                                  pos_weight).cpu().numpy()
            rows = present.cpu().numpy()
            measured = np.isfinite(affinity)
            tag_sum[rows] += np.where(measured, affinity, 0.0)
            tag_count[rows] += measured
            train_seconds += time.perf_counter()
        direction = (gradients.detach() * task_weights[present].view(-1, *[1] * z.dim())).sum(0)
        objective = surrogate_objective(taken.losses * task_weights, z, direction)
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        moment.update()
        optimizer.step()
        done += 1
        train_seconds += time.perf_counter() - step_start
        if log and done % 50 == 0:
            log(f"probe step {done}/{planned}")
    use_late = cos_count[1] > 0
    total_sum = np.where(use_late, cos_sum[1], cos_sum[0] + cos_sum[1])
    total_count = np.where(use_late, cos_count[1], cos_count[0] + cos_count[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        cosine = np.where(total_count > 0, total_sum / np.maximum(total_count, 1), np.nan)
        tag_mean = None if tag_sum is None else np.where(tag_count > 0, tag_sum / np.maximum(tag_count, 1), np.nan)
    np.fill_diagonal(cosine, np.where(np.diag(total_count) > 0, 1.0, np.nan))
    return ProbeResult(
        cosine=np.clip(cosine, -1, 1), cosine_batches=total_count, tag=tag_mean, tag_batches=tag_count,
        steps=done, epochs=done * batch_size / max(len(data), 1), seconds=time.perf_counter() - start,
        rows=len(data), batch_size=batch_size, image_size=image_size if data.images else None,
        warmup_steps=min(warmup, done), stopped_by_time=stopped, device=str(device),
        step_seconds=train_seconds / max(done, 1), network=network)


def _accumulate_cosine(gradients: Tensor, known: Tensor, tasks: np.ndarray, sums: np.ndarray,
                       counts: np.ndarray) -> None:
    """Add this batch's cosines on co-labelled rows (P present tasks) into sums/counts at [tasks, tasks]."""
    p, n = gradients.shape[0], gradients.shape[1]
    g = gradients.reshape(p, n, -1).double()
    k = known.T.double()  # (P, N)
    dots = g.reshape(p, -1) @ g.reshape(p, -1).T  # only co-labelled rows contribute: g is 0 where unknown
    squares = (g * g).sum(-1)  # (P, N)
    own = squares @ k.T  # own[a, b]: ‖g_a‖² on the rows where b is known (and a, since g_a is 0 elsewhere)
    denominator = torch.sqrt(own * own.T)
    valid = ((k @ k.T) > 0) & (denominator > 0)
    cosine = torch.where(valid, dots / torch.where(valid, denominator, torch.ones_like(denominator)), 0.0)
    index = np.ix_(tasks, tasks)
    sums[index] += cosine.cpu().numpy()
    counts[index] += valid.cpu().numpy()


# ------------------------------------------------------------------------------------------------ capacity


def capacity_evaluation(data: ProbeData, seed: int) -> ProbeData:
    """The probe rows on which the capacity check measures training fit (at most CAPACITY_EVAL_ROWS)."""
    rows = choose_probe_rows(data.known.numpy(), CAPACITY_EVAL_ROWS, seed)
    return ProbeData(data.x[rows], data.targets[rows], data.known[rows], data.images, rows)


def shared_fit(config: RunConfig, network: MultiTaskNetwork, data: ProbeData, held: ProbeData | None,
               seed: int) -> dict[str, np.ndarray]:
    """The probe's shared network on the capacity check's evaluation rows (`loss`, `ap` per task) and, with
    `held`, on the held-out rows (`held_loss`, `held_ap`): all the capacity check needs of that network."""
    device = probe_device(config)
    loss, ap = evaluate_fit(network, capacity_evaluation(data, seed), device)
    out = {"loss": loss, "ap": ap}
    if held is not None and len(held):
        out["held_loss"], out["held_ap"] = evaluate_fit(network, held, device)
    return out


def capacity_order(known: np.ndarray, max_tasks: int = CAPACITY_MAX_TASKS) -> list[int]:
    """The tasks the capacity check takes, in order: most known probe labels first, at most `max_tasks`.

    >>> capacity_order(np.array([[1, 1, 0], [0, 1, 1], [0, 1, 0]], bool), 2)
    [1, 0]
    """
    n_known = known.sum(0)
    return sorted(range(known.shape[1]), key=lambda j: (-n_known[j], j))[:max_tasks]


def capacity_check(config: RunConfig, train: LabelTable, data: ProbeData, probe: ProbeResult, *,
                   seconds: float | None, max_tasks: int = CAPACITY_MAX_TASKS, seed: int = 0,
                   log: Callable[[str], None] | None = None, held: ProbeData | None = None,
                   shared: dict[str, np.ndarray] | None = None, done: dict[int, dict[str, Any]] | None = None,
                   spent: float = 0.0, on_row: Callable[[int, dict[str, Any], float], None] | None = None,
                   ) -> list[dict[str, Any]]:
    """Each checked task's own network, trained for the probe's number of epochs over its known probe rows.

    Tasks are taken in order of most probe labels, at most `max_tasks` of them; a task whose training would
    not fit in the time left (estimated from the probe's time per step) is skipped, so fewer tasks are checked
    properly rather than many poorly. Fit is measured on at most CAPACITY_EVAL_ROWS probe rows.
    Returns per task: baseline, shared and own training loss, the share of the baseline removed, AP, steps.
    With `held` (probe rows neither network was trained on), also the same measures on those rows
    (``held_*`` keys): generalisation, which training fit alone cannot tell from memorising a few rows.
    `shared`: the probe network's :func:`shared_fit` (default: computed from ``probe.network``). To resume,
    `done` gives rows already computed (by task index; reused as they are) and `spent` the seconds they took;
    `on_row(index, row, seconds)` receives each new row as it finishes. Each task's own network starts from
    seed + 1 + its index, with its own random stream: a row does not depend on which rows came before.
    """
    start = time.perf_counter() - spent
    device = probe_device(config)
    if shared is None:
        if probe.network is None:
            raise ValueError("the capacity check needs the probe's trained network or its shared fit")
        shared = shared_fit(config, probe.network, data, held, seed)
    _, pos_weight = positive_weights(config, train)
    evaluation = capacity_evaluation(data, seed)
    held_shared = (shared["held_loss"], shared["held_ap"]) if "held_loss" in shared and held is not None else None
    n_known = data.known.sum(0).numpy()
    results = []
    for j in capacity_order(data.known.numpy(), max_tasks):
        if done and j in done:
            results.append(done[j])
            continue
        row_start = time.perf_counter()
        row = _capacity_row(config, train, data, probe, j, evaluation, held, shared, held_shared, n_known,
                            pos_weight, device, seed, None if seconds is None else start + seconds)
        results.append(row)
        if on_row:
            on_row(j, row, time.perf_counter() - row_start)
        if log and not row.get("skipped"):
            log(f"capacity check: {train.tasks[j]} ({row['own_steps']} steps)")
    return results


def _capacity_row(config: RunConfig, train: LabelTable, data: ProbeData, probe: ProbeResult, j: int,
                  evaluation: ProbeData, held: ProbeData | None, shared: dict[str, np.ndarray],
                  held_shared: tuple[np.ndarray, np.ndarray] | None, n_known: np.ndarray, pos_weight: Tensor | None,
                  device: torch.device, seed: int, deadline: float | None) -> dict[str, Any]:
    """Task j's row of the capacity check (its own network trained until `deadline`, a perf_counter time)."""
    shared_loss, shared_ap = shared["loss"], shared["ap"]
    rows = np.flatnonzero(data.known[:, j].numpy())
    evaluation_known = evaluation.known[:, j]
    y = evaluation.targets[evaluation_known, j]
    baseline = _entropy(float(y.mean())) if len(y) else float("nan")
    row: dict[str, Any] = {"task": train.tasks[j], "labels": int(n_known[j]), "evaluated_on": int(len(y)),
                           "baseline_loss": baseline, "shared_loss": float(shared_loss[j]),
                           "shared_ap": float(shared_ap[j]),
                           "shared_explained": _explained(float(shared_loss[j]), baseline),
                           "own_loss": float("nan"), "own_ap": float("nan"), "own_explained": float("nan"),
                           "own_steps": 0, "planned_steps": 0}
    if held_shared is not None and held is not None:
        y_held = held.targets[held.known[:, j], j]
        held_baseline = _entropy(float(y_held.mean())) if len(y_held) else float("nan")
        if min(float(y_held.sum()), float(len(y_held) - y_held.sum())) < CAPACITY_HELD_MIN_CLASS:
            row["held_inconclusive"] = (f"fewer than {CAPACITY_HELD_MIN_CLASS} held-out positives or negatives: "
                                        "no confirmation possible")
        row.update(held_rows=int(len(y_held)), held_positives=int(y_held.sum()), held_baseline=held_baseline,
                   held_shared_loss=float(held_shared[0][j]), held_shared_ap=float(held_shared[1][j]),
                   held_shared_explained=_explained(float(held_shared[0][j]), held_baseline),
                   held_own_loss=float("nan"), held_own_ap=float("nan"), held_own_explained=float("nan"))
    positives = float(data.targets[rows, j].sum()) if len(rows) else 0.0
    if len(rows) < 2 or positives in (0.0, float(len(rows))) or not 0 < float(y.sum()) < len(y):
        row["skipped"] = "too few known labels or only one class in the probe rows"
        return row
    single = ProbeData(data.x[rows], data.targets[rows][:, j:j + 1], data.known[rows][:, j:j + 1],
                       data.images, rows)
    batch_size = max(min(probe.batch_size, len(single)), 2)
    planned = max(1, math.ceil(probe.epochs * len(single) / batch_size))
    row["planned_steps"] = planned
    left = None if deadline is None else deadline - time.perf_counter()
    needed = planned * probe.step_seconds * batch_size / probe.batch_size
    if left is not None and needed > left:
        row["skipped"] = f"not enough time: needs about {needed:.0f} s, {max(left, 0):.0f} s left"
        return row
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1 + j)
        network = build_probe_network(config, 1, train).to(device)
        network.train()
        optimizer = torch.optim.AdamW(network.parameters(), lr=config.train.lr,
                                      weight_decay=config.train.weight_decay)
        weight = None if pos_weight is None else pos_weight[j:j + 1].to(device)
        batches = _batches(len(single), batch_size, torch.Generator().manual_seed(seed + 1 + j))
        done = 0
        for _ in range(planned):
            if deadline is not None and time.perf_counter() > deadline:
                break
            x, targets, known = single.batch(next(batches), device)
            loss = per_task_losses(network(x), targets, known, normalization=config.loss.normalization,
                                   pos_weight=weight)[0].sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            done += 1
    own_loss, own_ap = evaluate_fit(network, evaluation, device, columns=[j])
    row.update(own_loss=float(own_loss[0]), own_ap=float(own_ap[0]), own_steps=done,
               own_explained=_explained(float(own_loss[0]), baseline))
    if held_shared is not None and held is not None:
        held_loss, held_ap = evaluate_fit(network, held, device, columns=[j])
        row.update(held_own_loss=float(held_loss[0]), held_own_ap=float(held_ap[0]),
                   held_own_explained=_explained(float(held_loss[0]), row["held_baseline"]))
    if row["own_explained"] < CAPACITY_MIN_EXPLAINED:
        row["inconclusive"] = "its own network has not learnt it yet (too short a training)"
    return row


def _entropy(p: float) -> float:
    """The logistic loss of always predicting the base rate p (nats)."""
    if p <= 0 or p >= 1:
        return 0.0
    return float(-(p * math.log(p) + (1 - p) * math.log(1 - p)))


def _explained(loss: float, baseline: float) -> float:
    """The fraction of the baseline loss a network removes: 1 − loss / baseline (NaN without a baseline)."""
    return 1 - loss / baseline if baseline > 0 and math.isfinite(loss) else float("nan")
