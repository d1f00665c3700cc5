"""The evaluation stage: scores what training produced (``train.fit``), and ``train``, which
runs both stages for one group and is what the backends call.

Training hands its evaluation samples to ``Evaluation.snapshot`` as it goes (the mode metrics
of every snapshot make the trajectory) and returns its final samples and large set;
``Evaluation.final`` scores them: the samples metrics on the final samples against a real set
of the same size, the trajectory metrics on the snapshots, the distribution metrics on the
large set against a real set of its size. The real sets come from their own evaluation
streams (``train.eval_generator``), the same for every seed and every variant of a config.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import Tensor

from modecov import metrics
from modecov.config import RunConfig
from modecov.data import DATASETS, Dataset
from modecov.device import device_name, resolve
from modecov.train import TrainOutput, TrainState, eval_generator, fit, real_reference


class Evaluation:
    """The scores of one group: snapshots as training goes, then the final scores.

    Args:
        cfg: the group.
        data: its dataset.
        device: where the samples are (metrics run where training does).
    """

    def __init__(self, cfg: RunConfig, data: Dataset, device: torch.device) -> None:
        self.cfg, self.data = cfg, data
        self.real = real_reference(cfg, data, cfg.n_eval).to(device)
        self.names = metrics.snapshot_metrics()
        self.steps: list[int] = []
        self.counts: list[Tensor] = []
        self.scores: list[dict[str, Tensor]] = []

    @property
    def n_large(self) -> int:
        """Samples per seed of the large final set: ``n_eval_large``, or fewer when no
        distribution metric reads that many."""
        return min(self.cfg.n_eval_large, max(metrics.sample_caps("distribution").values()))

    def real_large(self, n: int) -> Tensor:
        """(N, D) float64 true samples for the large set, from their own stream (3)."""
        return self.data.sample(n, eval_generator(self.cfg, 3), dtype=torch.float64)

    def snapshot(self, step: int, fake: Tensor) -> None:
        """Score the (S, N, D) evaluation samples of ``step`` with the snapshot metrics."""
        self.steps.append(step)
        self.counts.append(metrics.mode_counts(fake=fake, data=self.data))
        self.scores.append(
            metrics.score_samples(fake=fake, real=self.real, data=self.data, names=self.names)
        )

    def final(
        self, samples: Tensor, large: Tensor
    ) -> tuple[dict[str, Tensor], Tensor, dict[str, Tensor], Tensor]:
        """The final scores of the (S, N, D) final ``samples`` and the (S, N_large, D)
        ``large`` set, with the trajectory.

        Returns:
            Final metric name -> (S,); the (T,) snapshot steps; trajectory metric name ->
            (T, S); the (T, S, K) HQ counts per mode at each snapshot.
        """
        data = self.data
        steps = torch.tensor(self.steps)
        counts = torch.stack(self.counts)
        traj = {k: torch.stack([s[k] for s in self.scores]) for k in self.scores[0]}
        final = metrics.score_samples(fake=samples, real=self.real, data=data)
        final.update(metrics.score_trajectory(steps=steps, counts=counts, data=data))
        real_large = self.real_large(large.shape[1]).to(large.device)
        final.update(metrics.score_distribution(fake=large, real=real_large, data=data))
        return final, steps, traj, counts


def train(
    cfg: RunConfig, *, callback: Callable[[TrainState, dict], None] | None = None
) -> TrainOutput:
    """Train (or, for reference samplers, sample) every seed of ``cfg``, then score them.

    Args:
        cfg: the group; its ``seeds`` are trained together.
        callback: called as ``callback(state, losses)`` after every step (movies, tests).

    Returns:
        The final scores, the trajectory and the final samples, per seed.
    """
    start = time.perf_counter()
    data = DATASETS[cfg.dataset]
    evaluation = Evaluation(cfg, data, resolve(cfg.device))
    fitted = fit(
        cfg, on_snapshot=evaluation.snapshot, n_large=evaluation.n_large, callback=callback
    )
    final, steps, traj, counts = evaluation.final(fitted.samples, fitted.large)
    return TrainOutput(
        config=cfg,
        final={k: v.detach().cpu() for k, v in final.items()},
        steps=steps,
        trajectory={k: v.detach().cpu() for k, v in traj.items()},
        counts=counts.cpu(),
        status=fitted.status,
        diverged_step=fitted.diverged_step,
        samples=fitted.samples.detach().cpu(),
        wall_time=time.perf_counter() - start,
        device=device_name(fitted.device),
        losses=fitted.losses,
        landscape=fitted.landscape,
    )
