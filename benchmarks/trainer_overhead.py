"""What the `AlignmentTrainer` costs over a hand-written PyTorch loop doing the same work.

    .venv/bin/python benchmarks/trainer_overhead.py           # ~4 min on 2 CPU cores
    .venv/bin/python benchmarks/trainer_overhead.py --quick   # ~30-60 s smoke run

Goal: one `AlignmentTrainer` joint step costs at most 1.05x a hand-written loop with the same
forwards and backwards.

Baseline (h), the hand loop, on pre-collated batches: task forward + backward; the alignment
forward of source and target rows in one batch (the very batches the trainer's alignment
stream cuts, collated in advance), contrastive loss, backward; the optimizer the Trainer
builds (same class, arguments, parameter groups); `zero_grad`. No clipping anywhere, weight
decay 0, λ = 1, constant learning rate.

Trainer variants, each on its own copy of the same model:

(s0) / (s1) `training_step` + optimizer step + scheduler step + `zero_grad`, driven by hand
            on the same pre-collated task batches, `conflict_every=0` / `1`: the cost of
            `AlignmentTrainer.training_step` itself (the alignment stream collates its batch
            inside the step, as in training).
(t0) / (t1) `Trainer.train()` over chunks of steps, `conflict_every=0` / `1`: the whole loop
            per step (data loader, callbacks, the Trainer's gradient-norm report, the
            accelerate optimizer wrapper), timed between consecutive `on_step_end` events so
            that `train()`'s set-up is not counted.

All variants see the same shapes at every step (see `_fixtures.py`). The script prints the
median per-step times, their ratios to (h), and the pieces of the trainer's overhead.
"""

from __future__ import annotations

import copy
import itertools

import torch
from _environment import done
from _fixtures import ALIGN_PAIRS, alignment_batches, print_setup
from _hand_loop import HandLoop
from _profiling import print_profile_overheads, profile_calls
from _setup import set_up
from _timing import Variant, interleave, measure, print_pieces, print_ratios, timed_steps
from _trainer_driving import StepClock, TrainerStepper, train_loop_chunk

TITLE = "trainer_overhead: AlignmentTrainer joint step vs a hand-written PyTorch loop"


def main() -> None:
    bench = set_up(TITLE, __doc__.splitlines()[0], default_rounds=30, default_steps=3)
    batches, base = bench.batches, bench.base

    step_trainers = [bench.new_trainer(conflict_every=c) for c in (0, 1)]
    loop_trainers = [bench.new_trainer(conflict_every=c) for c in (0, 1)]
    clocks = [StepClock(), StepClock()]
    for trainer, clock in zip(loop_trainers, clocks):
        trainer.add_callback(clock)
    # What the trainers collate at steps 0..7 (every step has these shapes).
    align = alignment_batches(step_trainers[0], 8)
    print_setup(base, batches[0], align)
    steppers = [TrainerStepper(trainer, batches) for trainer in step_trainers]
    hand = HandLoop(copy.deepcopy(base), step_trainers[0].args, batches, align)
    args = step_trainers[0].args
    print(
        f"optimizer: {type(hand.optimizer).__name__} ({args.optim.value}) lr={args.learning_rate}, weight decay 0, "
        f"no clipping (max_grad_norm=0), constant lr; alignment: contrastive, lambda=1, {ALIGN_PAIRS} pairs"
    )
    print(
        f"timing: {bench.steps} steps per variant per round, up to {bench.rounds} rounds or {bench.budget:.0f} s, "
        f"order alternating; Trainer.train() chunks run {bench.steps + 1} steps and time the last {bench.steps}"
    )

    variants = [
        Variant("(h) hand loop", lambda n: timed_steps(hand.step, n)),
        Variant("(s0) training_step, conflict_every=0", lambda n: timed_steps(steppers[0].step, n)),
        Variant("(s1) training_step, conflict_every=1", lambda n: timed_steps(steppers[1].step, n)),
        Variant("(t0) Trainer.train, conflict_every=0", lambda n: train_loop_chunk(loop_trainers[0], clocks[0], n)),
        Variant("(t1) Trainer.train, conflict_every=1", lambda n: train_loop_chunk(loop_trainers[1], clocks[1], n)),
    ]
    interleave(variants, bench.rounds, bench.steps, warmup=1 if bench.quick else 2, budget_s=bench.budget)
    h, s0, s1, t0, t1 = variants

    print("\n-- per-step time (wall clock); ratio = median / median of (h) --")
    print_ratios(variants, h, goal={s0.name: 1.05, t0.name: 1.05})
    med = {v.name: v.wall.median for v in variants}
    cpu = {v.name: v.cpu.median for v in variants}
    print(
        "process CPU time per step (both threads), median: "
        + ", ".join(f"{v.name.split()[0]} {1e3 * cpu[v.name]:.0f} ms" for v in variants)
    )
    for variant in (s0, s1, t0, t1):
        print(
            f"{variant.name.split()[0]}/(h) = {med[variant.name] / med[h.name]:.3f}  (CPU-time ratio "
            f"{cpu[variant.name] / cpu[h.name]:.3f})  {variant.name.split(' ', 1)[1]}"
        )

    # ---- pieces of the trainer's overhead, timed alone ----
    print("\n-- trainer work the hand loop does not do, timed alone (torch.utils.benchmark) --")
    trainer = step_trainers[0]
    model = trainer.model
    model.zero_grad()
    model(**batches[0]).loss.backward()
    params = [p for p in model.parameters() if p.grad is not None]
    # blocked_autorange calls it more often than one epoch has batches: a fresh pass after each epoch, as in training.
    loader_iter = itertools.chain.from_iterable(itertools.repeat(trainer.get_train_dataloader()))
    pieces = {
        "alignment_stream.batch_at(p): dataset rows + pad (tokenized once), per step": measure(
            lambda: trainer.alignment_stream.batch_at(3), bench.min_run_time
        ),
        "Trainer._get_grad_norm: clip_grad_norm_(params, inf) every step": measure(
            lambda: trainer.accelerator.clip_grad_norm_(params, float("inf")), bench.min_run_time
        ),
        "data loader: next task batch (default_data_collator, 16 rows)": measure(
            lambda: next(loader_iter), bench.min_run_time
        ),
        "_record(): 3 running sums of logged scalars": measure(
            lambda: [
                trainer._record(k, torch.ones(()), False) for k in ("task_loss", "align_loss", "align/contrastive")
            ],
            bench.min_run_time,
        ),
    }
    model.zero_grad()
    trainer._metric_sums.clear()
    trainer._metric_steps.clear()
    print_pieces(pieces, med[h.name], "(h)")

    n_profiled = 2 if bench.quick else 4
    for variant_name, run in (
        ("(s0) training_step, conflict_every=0", lambda: timed_steps(steppers[0].step, n_profiled)),
        ("(t0) Trainer.train, conflict_every=0", lambda: train_loop_chunk(loop_trainers[0], clocks[0], n_profiled)),
    ):
        loop = variant_name.startswith("(t")
        print_profile_overheads(
            profile_calls(run), n_profiled + loop, variant_name + (" (train() set-up included)" if loop else "")
        )
    done(bench.wall_start)


if __name__ == "__main__":
    main()
