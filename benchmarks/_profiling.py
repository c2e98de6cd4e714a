"""Where a step's memory and Python time go: peak allocations from `torch.profiler`, the loop's own functions from cProfile."""

from __future__ import annotations

import cProfile
import pstats
from collections.abc import Callable

import torch
from torch.profiler import ProfilerActivity, profile


def peak_allocated(fn: Callable[[], None]) -> tuple[int, int]:
    """`(peak, end)` bytes allocated by `fn` above what was live before it.

    On the CPU, from torch.profiler: reads the allocation / free events of its memory tracing in
    time order; tensors alive before `fn` and freed inside it count negative, so `peak` is the
    working-set growth. Once this process has started CUDA, the same growth on the GPU from
    `torch.cuda.max_memory_allocated` (the CPU's allocations are then not counted).
    """
    if torch.cuda.is_initialized():
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before, torch.cuda.memory_allocated() - before
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]")
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return peak, live


# Python wrappers around the model's arithmetic (forwards, backwards, optimizer update), left out of
# the profile listing so that what remains is the loop's own work.
ARITHMETIC_WRAPPERS = frozenset(
    {
        "backward",
        "_engine_run_backward",
        "compute_alignment_loss",
        "<dictcomp>",
        "forward",
        "sentence_embeddings",
        "layer",
        "hidden_states",
        "encode",
        "training_step",
        "compute_loss",
        "wrapper",
        "step",
        "_use_grad",
        "train",
        "_inner_training_loop",
        "_run_epoch",
        "_wrapped_call_impl",
        "_call_impl",
        "_naive_gradients",
        "adamw",
        "_fused_adamw",
        "maybe_fallback",
    }
)

# Where the loop's own functions live: the trainer, transformers' Trainer, accelerate, the optimizer
# module, the collators, gradient clipping and the datasets library.
LOOP_SOURCES = (
    "/hf_xalign/",
    "/transformers/trainer",
    "/accelerate/",
    "/torch/optim/",
    "/transformers/data/",
    "/torch/nn/utils/clip_grad",
    "/datasets/",
)


def profile_calls(fn: Callable[[], object]) -> cProfile.Profile:
    """A cProfile of one call of `fn`."""
    profiler = cProfile.Profile()
    profiler.enable()
    fn()
    profiler.disable()
    return profiler


def print_profile_overheads(profiler: cProfile.Profile, steps: int, title: str, limit: int = 10) -> None:
    """The loop's own Python functions (not the model's arithmetic) by cumulative time per step.

    From a cProfile run of `steps` steps; functions in `LOOP_SOURCES`, minus `ARITHMETIC_WRAPPERS`
    (whose cumulative time is the forwards, backwards and optimizer update that every variant runs).
    """
    stats = pstats.Stats(profiler)
    total = stats.total_tt
    rows = []
    for (filename, line, function), (_, calls, _, cumulative, _) in stats.stats.items():
        if any(part in filename for part in LOOP_SOURCES) and function not in ARITHMETIC_WRAPPERS:
            short = filename.split("site-packages/")[-1].split("/main/")[-1]
            rows.append((cumulative, calls, f"{short}:{line}({function})"))
    rows.sort(reverse=True)
    print(
        f"\n-- {title}: cProfile of {steps} steps ({total / steps * 1e3:.0f} ms/step under the profiler); "
        f"the loop's own functions by cumulative time (forward/backward/optimizer wrappers left out) --"
    )
    for cumulative, calls, name in rows[:limit]:
        print(
            f"  {name:<72} {calls / steps:6.1f} calls/step {cumulative / steps * 1e3:8.2f} ms/step {cumulative / total:6.1%}"
        )
