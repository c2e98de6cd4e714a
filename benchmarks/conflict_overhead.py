"""What measuring task-vs-alignment gradients at every step costs, in time and memory.

    .venv/bin/python benchmarks/conflict_overhead.py --threads 1   # ~8 min on 2 CPU cores
    .venv/bin/python benchmarks/conflict_overhead.py --quick       # ~1-2 min smoke run
    python benchmarks/conflict_overhead.py --device cuda --dtype bf16 --shape base   # (a) and (b) on a GPU

Off the CPU or in bf16 only (a) and (b) run, with their step peaks and (b)'s kept buffers: the
hand loops (c) and (d), the pieces timed alone and the profile are the fp32 CPU table's.

Goal (DESIGN.md, "The training step"): a joint step that measures the gradient conflict at
every step costs at most 1.02x the same step without measurement, and at most one extra
parameter-sized buffer of memory.

Variants, each on its own copy of the same randomly initialised model, with the same batches
at the same step (shapes are fixed, see `_fixtures.py`):

(a) `AlignmentTrainer` joint step, `conflict_every=0`   (the baseline)
(b) `AlignmentTrainer` joint step, `conflict_every=1`   (the split method: one buffer T)
(c) the naive method, by hand: task and alignment gradients from two `torch.autograd.grad`
    calls, cosine and norms from them (per tensor, float64 sums, as the splitter does), then
    `.grad = g_task + g_align` and the optimizer step
(d) the same hand loop without any measurement (plain `backward` twice), so that (c)/(d) is
    the price of the naive measurement alone

(a) and (b) run the same code, `AlignmentTrainer.training_step` followed by what
`Trainer._run_epoch` does at a sync step without clipping (optimizer step, scheduler step,
`zero_grad`); only the flag differs. (c) and (d) use the optimizer the Trainer builds (same
class, arguments and parameter groups). The script prints median per-step times, their ratios
to (a), the memory each method adds, and where the time of (b) goes. Last, (a) and (b) again at
realistic task shapes (32 sentences x 128 tokens, rows of the same data joined end to end; the
alignment batch unchanged), interleaved, to show how the ratio falls as the step's compute grows.
"""

from __future__ import annotations

import copy
import math
import tempfile

import torch
from _environment import done
from _fixtures import ALIGN_PAIRS, alignment_batches, parameter_bytes, print_setup
from _hand_loop import HandLoop, hand_contrastive
from _profiling import peak_allocated, print_profile_overheads, profile_calls
from _setup import Bench, set_up
from _timing import Variant, interleave, measure, print_pieces, print_ratios, timed_steps
from _trainer_driving import TrainerStepper

from hf_xalign._compat import private
from hf_xalign.conflict import TASK

TITLE = "conflict_overhead: cost of measuring task vs alignment gradients at every step"
LAMBDA = 1.0


def fill_gradients(trainer, task: dict, align: dict) -> None:
    """`.grad` = G and the splitter's T = task part, as after the backward passes of a measured step."""
    splitter = trainer.gradient_splitter
    trainer.model.zero_grad()
    splitter.start_step()
    with splitter.capture(TASK):
        trainer.model(**task).loss.backward()
    (LAMBDA * hand_contrastive(trainer.model.base_model, align)).backward()


def tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors if t is not None)


def reference_cosine(splitter) -> float:
    """The exact global cosine: every tensor cast to float64 first."""
    dot = task_sq = align_sq = 0.0
    for param, task in zip(splitter.params, splitter.buffers[TASK]):
        t = task.double()
        a = param.grad.double() - t if param.grad is not None else -t
        dot += float(torch.dot(t.flatten(), a.flatten()))
        task_sq += float(torch.dot(t.flatten(), t.flatten()))
        align_sq += float(torch.dot(a.flatten(), a.flatten()))
    return dot / math.sqrt(task_sq * align_sq)


def cosine_of(sums: torch.Tensor) -> float:
    dot, task_sq, align_sq = sums.view(-1, 3).sum(0).tolist()
    return dot / math.sqrt(task_sq * align_sq)


REALISTIC_TASK = (32, 128)  # sentences, tokens: the second configuration's task batches


def realistic_batches(batches: list[dict[str, torch.Tensor]], count: int = 4) -> list[dict[str, torch.Tensor]]:
    """`count` task batches of `REALISTIC_TASK` shape: consecutive 32-token rows joined end to end."""
    rows, tokens = REALISTIC_TASK
    joined = {key: torch.cat([b[key] for b in batches]) for key in batches[0]}  # (rows_total, 32)
    per_row = tokens // joined["input_ids"].shape[1]
    wide = {key: value[: value.shape[0] // per_row * per_row].reshape(-1, tokens) for key, value in joined.items()}
    n = wide["input_ids"].shape[0]
    return [
        {key: value[[(i * rows + j) % n for j in range(rows)]] for key, value in wide.items()} for i in range(count)
    ]


def trainer_variants_only(bench: Bench, trainer_a, trainer_b, batches: list[dict[str, torch.Tensor]]) -> None:
    """(a) and (b) alone, on the bench's device and precision: their step-time ratio and memory."""
    stepper_a, stepper_b = TrainerStepper(trainer_a, batches), TrainerStepper(trainer_b, batches)
    dtype = "bf16 autocast" if bench.bf16 else "fp32"
    print(f"timing: {bench.steps} steps per variant per round, up to {bench.rounds} rounds or {bench.budget:.0f} s")
    variants = [
        Variant("(a) trainer conflict_every=0", lambda n: timed_steps(stepper_a.step, n)),
        Variant("(b) trainer conflict_every=1", lambda n: timed_steps(stepper_b.step, n)),
    ]
    interleave(variants, bench.rounds, bench.steps, warmup=1 if bench.quick else 2, budget_s=bench.budget)
    a, b = variants
    print(f"\n-- per-step time (wall clock) on {bench.device}, {dtype}; ratio = median / median of (a) --")
    print_ratios(variants, a, goal={b.name: 1.02})
    print(
        f"time(b)/time(a) = {b.wall.median / a.wall.median:.3f}   (goal <= 1.02; task "
        f"{tuple(batches[0]['input_ids'].shape)}, {bench.device}, {dtype})"
    )
    peaks = {variant.name: peak_allocated(step)[0] for variant, step in ((a, stepper_a.step), (b, stepper_b.step))}
    splitter = trainer_b.gradient_splitter
    kept = sum(tensor_bytes(buf) for buf in splitter.buffers.values()) + tensor_bytes(splitter._scratch.values())
    print(
        f"peak memory per step: (a) {peaks[a.name] / 2**20:.1f} MiB, (b) {peaks[b.name] / 2**20:.1f} MiB; "
        f"(b) keeps {kept / 2**20:.1f} MiB across steps (T and partial_sums' scratch; parameters "
        f"{parameter_bytes(bench.base) / 2**20:.1f} MiB fp32)"
    )


def main() -> None:
    bench = set_up(TITLE, __doc__.splitlines()[0], default_rounds=40, default_steps=2, device_options=True)
    batches, base = bench.batches, bench.base

    trainer_a = bench.new_trainer(conflict_every=0)
    trainer_b = bench.new_trainer(conflict_every=1)
    align = alignment_batches(trainer_a, 8)  # what the trainers collate at steps 0..7 (every step has these shapes)
    print_setup(base, batches[0], align)
    if not bench.on_cpu_in_fp32:
        trainer_variants_only(bench, trainer_a, trainer_b, batches)
        done(bench.wall_start)
        return
    stepper_a, stepper_b = TrainerStepper(trainer_a, batches), TrainerStepper(trainer_b, batches)
    naive = HandLoop(copy.deepcopy(base), trainer_a.args, batches, align, measure=True, lam=LAMBDA)
    plain = HandLoop(copy.deepcopy(base), trainer_a.args, batches, align, measure=False, lam=LAMBDA)
    print(
        f"optimizer: {type(naive.optimizer).__name__} ({trainer_a.args.optim.value}) lr={trainer_a.args.learning_rate}, "
        f"weight decay 0, no clipping; alignment: contrastive, lambda={LAMBDA}, {ALIGN_PAIRS} pairs"
    )
    print(
        f"timing: {bench.steps} steps per variant per round, up to {bench.rounds} rounds or {bench.budget:.0f} s, "
        "order a b c d / d c b a"
    )

    variants = [
        Variant("(a) trainer conflict_every=0", lambda n: timed_steps(stepper_a.step, n)),
        Variant("(b) trainer conflict_every=1", lambda n: timed_steps(stepper_b.step, n)),
        Variant("(c) naive 2x autograd.grad", lambda n: timed_steps(naive.step, n)),
        Variant("(d) hand loop, no measurement", lambda n: timed_steps(plain.step, n)),
    ]
    interleave(variants, bench.rounds, bench.steps, warmup=1 if bench.quick else 2, budget_s=bench.budget)
    a, b, c, d = variants

    print("\n-- per-step time (wall clock); ratio = median / median of (a) --")
    print_ratios(variants, a, goal={b.name: 1.02})
    med = {v.name: v.wall.median for v in variants}
    cpu = {v.name: v.cpu.median for v in variants}
    print(
        "process CPU time per step (both threads), median: "
        + ", ".join(f"{v.name[:3]} {1e3 * cpu[v.name]:.0f} ms" for v in variants)
    )
    print(
        f"time(b)/time(a) = {med[b.name] / med[a.name]:.3f}   (goal <= 1.02; CPU-time ratio {cpu[b.name] / cpu[a.name]:.3f}; "
        f"task {tuple(batches[0]['input_ids'].shape)})"
    )
    print(f"time(c)/time(a) = {med[c.name] / med[a.name]:.3f}   (CPU-time ratio {cpu[c.name] / cpu[a.name]:.3f})")
    print(
        f"time(c)/time(d) = {med[c.name] / med[d.name]:.3f}   (the naive measurement against the same hand loop without it)"
    )

    # ---- memory ----
    param_bytes = parameter_bytes(base)
    splitter = trainer_b.gradient_splitter
    buffers = sum(tensor_bytes(buf) for buf in splitter.buffers.values())
    print(f"\n-- memory, in parameter-sized buffers ({param_bytes / 2**20:.1f} MiB each) --")
    peaks = {}
    for variant, step in ((a, stepper_a.step), (b, stepper_b.step), (c, naive.step), (d, plain.step)):
        peaks[variant.name], _ = peak_allocated(step)
    print(
        "peak growth of allocations during one step (torch.profiler memory events: activations, gradients, temporaries;"
    )
    print("tensors that live across steps, such as T and the optimizer state, are not in it):")
    for variant in variants:
        print(f"  {variant.name:<34} {peaks[variant.name] / 2**20:7.1f} MiB = {peaks[variant.name] / param_bytes:5.2f}")
    fill_gradients(trainer_b, batches[0], align[0])  # G and T as after a measured step's backward passes
    partial_peak, _ = peak_allocated(splitter.partial_sums)
    scratch = tensor_bytes(splitter._scratch.values()) / param_bytes  # kept between steps
    step_extra_b = max(0, peaks[b.name] - peaks[a.name]) / param_bytes
    print(
        f"(b) split method: T buffers kept across steps {buffers / param_bytes:.2f} ({len(splitter.buffers)} objective buffered) "
        f"+ partial_sums' kept scratch matrix {scratch:.3f}; step peak above (a) {step_extra_b:.2f}"
    )
    print(
        f"    partial_sums() alone: peak {partial_peak / param_bytes:.3f} buffers ({partial_peak / 2**20:.2f} MiB) of "
        "temporaries beyond its kept scratch"
    )
    print(
        f"memory (b): +{buffers / param_bytes + scratch + step_extra_b:.2f} parameter-sized buffers (goal <= 1; "
        "the activations are freed before partial_sums() runs, so at this batch size the step peak does not move)"
    )
    naive.step()  # records the bytes of gradient tensors alive when it sets .grad
    held = naive.held_gradient_bytes / param_bytes
    step_extra_c = max(0, peaks[c.name] - peaks[d.name]) / param_bytes
    print(
        f"(c) naive: g_task + g_align + .grad = g_task + g_align alive together: {held:.2f} buffers, where the plain step "
        f"holds .grad (1.00); step peak above (d) {step_extra_c:.2f}"
    )
    print(
        f"memory (c): +{held - 1:.2f} parameter-sized buffers (live gradient tensors counted), "
        f"+{step_extra_c:.2f} in the step peak at this batch size"
    )

    # ---- where the time of (b) goes ----
    print("\n-- where (b)'s extra time goes: pieces timed alone on real gradients (torch.utils.benchmark) --")
    fill_gradients(trainer_b, batches[0], align[0])
    grads = [p.grad for p in splitter.params if p.grad is not None]
    task_buffer = [buf for buf, p in zip(splitter.buffers[TASK], splitter.params) if p.grad is not None]
    sums = splitter.partial_sums()
    foreach_copy_, foreach_add_, foreach_sub_ = (private("torch", f"_foreach_{op}_") for op in ("copy", "add", "sub"))
    timings = {
        "capture(), first micro-step: foreach_copy_(T, grad) after the task backward": measure(
            lambda: foreach_copy_(task_buffer, grads), bench.min_run_time
        ),
        "capture(), later micro-steps: foreach_sub_ before + foreach_add_ after": measure(
            lambda: (foreach_sub_(task_buffer, grads), foreach_add_(task_buffer, grads)),
            bench.min_run_time,
        ),
        "partial_sums(): per segment cat T, A = G - T per tensor, chunked Gram (bmm), f64 sums": measure(
            splitter.partial_sums, bench.min_run_time
        ),
        "measurement(sums): small tensor to python floats": measure(
            lambda: splitter.measurement(sums, 0, LAMBDA), bench.min_run_time
        ),
    }
    fill_gradients(trainer_b, batches[0], align[0])  # T matches G again after the adds above
    measurement = splitter.measurement(splitter.partial_sums(), 0, LAMBDA)
    callback = trainer_b.conflict_callback
    with tempfile.TemporaryDirectory() as tmp:
        args = copy.copy(trainer_b.args)
        args.output_dir = tmp

        def write_record() -> None:
            callback._pending = [measurement]
            callback.on_step_end(args, trainer_b.state, trainer_b.control)

        timings["callback on_step_end(): one conflict.jsonl record"] = measure(write_record, bench.min_run_time)
    print_pieces(timings, med[a.name], "(a)")
    exact = reference_cosine(splitter)
    library = cosine_of(splitter.partial_sums()[: 3 * len(splitter.group_names)])
    print(
        f"  global cosine: exact (float64 copies) {exact:+.8f}; library {library:+.8f} "
        f"(rel. error {abs(library - exact) / abs(exact):.1e})"
    )

    n_profiled = 2 if bench.quick else 4
    profiler = profile_calls(lambda: timed_steps(stepper_b.step, n_profiled))
    print_profile_overheads(profiler, n_profiled, "(b) trainer conflict_every=1")

    # ---- the same two variants at realistic task shapes ----
    big = realistic_batches(batches)
    big_a, big_b = TrainerStepper(trainer_a, big), TrainerStepper(trainer_b, big)
    large = [
        Variant("(a') conflict_every=0, task 32x128", lambda n: timed_steps(big_a.step, n)),
        Variant("(b') conflict_every=1, task 32x128", lambda n: timed_steps(big_b.step, n)),
    ]
    budget = bench.budget * 0.8
    print(
        f"\n-- (a) and (b) at task {tuple(big[0]['input_ids'].shape)} (sentences, tokens), alignment unchanged: "
        f"1 step per variant per round, up to {budget:.0f} s, order a' b' / b' a' --"
    )
    interleave(large, bench.rounds, 1, warmup=1, budget_s=budget)
    print_ratios(large, large[0], goal={large[1].name: 1.02})
    first, second = (v.wall.median for v in large)
    small_ratio = med[b.name] / med[a.name]
    print(
        f"time(b')/time(a') = {second / first:.3f} at task {REALISTIC_TASK[0]}x{REALISTIC_TASK[1]} "
        f"(step {1e3 * first:.0f} ms) against time(b)/time(a) = {small_ratio:.3f} at task "
        f"{tuple(batches[0]['input_ids'].shape)} (step {1e3 * med[a.name]:.0f} ms): the measurement's cost is "
        "fixed per step (parameter-sized passes), so its share falls as the step's compute grows"
    )
    done(bench.wall_start)


if __name__ == "__main__":
    main()
