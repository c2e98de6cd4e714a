"""Shared set-up of the ratio benchmarks: the machine line, the model, the data, the timing loop.

Nothing here touches the network. The model is a randomly initialised XLM-R token tagger
(6 layers, hidden 384, ~13.5M parameters with a 16k vocabulary) built from a config with a
tokenizer trained here on the Django UI strings that ship with the repository plus synthetic
pseudo-words (the real text alone gives only ~6k pieces). Shapes are fixed so that every
variant does the same arithmetic at every step: task batches are 16 sentences of 32 tokens;
alignment batches are 16 translation pairs (32 rows of 32 tokens in one forward), each pair a
run of consecutive Django translations joined until both sides exceed 32 tokens.

Benchmarks print ratios against a baseline measured in the same run; they never assert times.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import math
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # kineto prints start/stop lines on stderr otherwise

import datasets  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import transformers  # noqa: E402
from transformers import Trainer, XLMRobertaForTokenClassification  # noqa: E402

from hf_xalign import AlignmentTrainer, AlignmentTrainingArguments  # noqa: E402
from hf_xalign.conflict import parameter_group  # noqa: E402
from hf_xalign.data import load_parallel  # noqa: E402
from hf_xalign.tiny import tiny_xlmr_config, train_tokenizer  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PARALLEL_DIR = REPO / "recipes" / "data" / "django" / "parallel"

THREADS = 2
HIDDEN_SIZE = 384
NUM_LAYERS = 6
VOCAB_SIZE = 16_000
NUM_LABELS = 17  # UPOS tags
TASK_BATCH = 16  # sentences per task batch
TASK_SEQ = 32  # tokens per task sentence (padded)
ALIGN_PAIRS = 16  # translation pairs per alignment batch (32 rows in the forward)
ALIGN_MAX_LENGTH = 32  # tokens per parallel sentence
LEARNING_RATE = 1e-4
TEMPERATURE = 0.05
SEED = 0


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="~30 s smoke run: few rounds, numbers are noisy.")
    parser.add_argument("--rounds", type=int, default=None, help="Interleaved rounds (overrides the mode's default).")
    parser.add_argument("--steps", type=int, default=None, help="Timed steps per variant and round.")
    parser.add_argument(
        "--budget", type=float, default=None, help="Seconds of interleaved timing before rounds stop early."
    )
    parser.add_argument("--threads", type=int, default=THREADS, help="torch intra-op threads (default 2).")
    return parser.parse_args()


def configure(threads: int = THREADS) -> None:
    """Fixed threads, quiet libraries, fixed seeds."""
    torch.set_num_threads(threads)
    transformers.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    random.seed(SEED)
    torch.manual_seed(SEED)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def print_machine() -> None:
    print(
        f"machine: {cpu_name()}, {os.cpu_count()} logical CPUs | python {platform.python_version()} | "
        f"torch {torch.__version__} (threads={torch.get_num_threads()}, interop={torch.get_num_interop_threads()}) | "
        f"transformers {transformers.__version__}"
    )


# ---- data and model ----


def _pseudo_words(count: int, seed: int) -> list[str]:
    """Made-up words from a syllable inventory: enough distinct strings for a 16k-piece vocabulary."""
    rng = random.Random(seed)
    onsets = ["", "b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "ch", "sh", "tr", "kl"]
    vowels = ["a", "e", "i", "o", "u", "ai", "ou", "ei"]
    codas = ["", "", "n", "r", "s", "l", "k", "m"]
    words = set()
    while len(words) < count:
        syllables = rng.randint(1, 4)
        words.add("".join(rng.choice(onsets) + rng.choice(vowels) + rng.choice(codas) for _ in range(syllables)))
    return sorted(words)


def load_pairs() -> datasets.Dataset:
    """The parallel Django UI strings (English to seven languages), ~2.3k pairs."""
    return datasets.concatenate_datasets([load_parallel(path) for path in sorted(PARALLEL_DIR.glob("en-*.tsv"))])


def build_tokenizer(pairs: datasets.Dataset):
    rng = random.Random(SEED)
    words = _pseudo_words(40_000, seed=SEED)
    synthetic = [" ".join(rng.choice(words) for _ in range(12)) for _ in range(8_000)]
    return train_tokenizer(list(pairs["src"]) + list(pairs["tgt"]) + synthetic, vocab_size=VOCAB_SIZE)


def build_parallel_dataset(tokenizer, pairs: datasets.Dataset, rows: int = 512) -> datasets.Dataset:
    """Pairs of joined consecutive translations (same language pair), each side over `ALIGN_MAX_LENGTH` tokens.

    Every alignment batch is then truncated to exactly `ALIGN_MAX_LENGTH` tokens: all steps
    and all variants run the same shapes.
    """
    by_language: dict[str, list[tuple[str, str]]] = {}
    for src, tgt, lang in zip(pairs["src"], pairs["tgt"], pairs["tgt_lang"]):
        by_language.setdefault(lang, []).append((src, tgt))
    rng = random.Random(SEED + 2)
    languages = sorted(by_language)
    data: dict[str, list] = {"src": [], "tgt": [], "src_lang": [], "tgt_lang": [], "alignment": []}
    while len(data["src"]) < rows:
        lang = languages[len(data["src"]) % len(languages)]
        candidates = by_language[lang]
        start = rng.randrange(len(candidates))
        src_parts: list[str] = []
        tgt_parts: list[str] = []
        for offset in range(len(candidates)):
            src, tgt = candidates[(start + offset) % len(candidates)]
            src_parts.append(src)
            tgt_parts.append(tgt)
            lengths = [
                len(tokenizer(" ".join(parts).split(), is_split_into_words=True)["input_ids"])
                for parts in (src_parts, tgt_parts)
            ]
            if min(lengths) > ALIGN_MAX_LENGTH:
                break
        data["src"].append(" ".join(src_parts))
        data["tgt"].append(" ".join(tgt_parts))
        data["src_lang"].append("en")
        data["tgt_lang"].append(lang)
        data["alignment"].append([])
    return datasets.Dataset.from_dict(data)


def build_task_dataset(tokenizer, pairs: datasets.Dataset, rows: int) -> datasets.Dataset:
    """Token-classification rows padded to `TASK_SEQ`: a random tag on each word's first piece, -100 elsewhere."""
    rng = random.Random(SEED + 1)
    texts = list(pairs["src"]) + list(pairs["tgt"])
    data = {"input_ids": [], "attention_mask": [], "labels": []}
    for _ in range(rows):
        words: list[str] = []
        while len(words) < TASK_SEQ:  # join sentences so most rows fill all 32 tokens
            words += rng.choice(texts).split()
        encoded = tokenizer(words, is_split_into_words=True, truncation=True, max_length=TASK_SEQ, padding="max_length")
        labels, previous = [], None
        for word_id in encoded.word_ids():
            labels.append(-100 if word_id is None or word_id == previous else rng.randrange(NUM_LABELS))
            previous = word_id
        data["input_ids"].append(encoded["input_ids"])
        data["attention_mask"].append(encoded["attention_mask"])
        data["labels"].append(labels)
    return datasets.Dataset.from_dict(data)


def build_model(tokenizer, seed: int = SEED) -> XLMRobertaForTokenClassification:
    """The random XLM-R tagger; dropout left at the config default (0.1)."""
    torch.manual_seed(seed)
    config = tiny_xlmr_config(tokenizer, hidden_size=HIDDEN_SIZE, num_layers=NUM_LAYERS, num_labels=NUM_LABELS)
    return XLMRobertaForTokenClassification(config)


def parameter_bytes(model: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)


def task_batches(dataset: datasets.Dataset, count: int) -> list[dict[str, torch.Tensor]]:
    """`count` task batches of `TASK_BATCH` rows, as the Trainer would collate them (already padded)."""
    batches = []
    for i in range(count):
        rows = [(i * TASK_BATCH + j) % len(dataset) for j in range(TASK_BATCH)]
        batches.append({key: torch.tensor(value) for key, value in dataset[rows].items()})
    return batches


def make_args(output_dir: str, conflict_every: int, max_steps: int = 10**6) -> AlignmentTrainingArguments:
    """Arguments of every trainer variant: only `conflict_every` differs between them."""
    return AlignmentTrainingArguments(
        output_dir=output_dir,
        use_cpu=True,
        seed=SEED,
        max_steps=max_steps,
        per_device_train_batch_size=TASK_BATCH,
        learning_rate=LEARNING_RATE,
        weight_decay=0.0,
        max_grad_norm=0.0,  # no clipping (the hand loops do not clip either)
        lr_scheduler_type="constant",
        logging_steps=10**6,
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        dataloader_num_workers=0,
        alignment_loss=["contrastive"],
        alignment_temperature=TEMPERATURE,
        alignment_lambda=1.0,
        alignment_batch_size=ALIGN_PAIRS,
        alignment_max_length=ALIGN_MAX_LENGTH,
        conflict_every=conflict_every,
    )


def make_trainer(
    model, tokenizer, task_dataset, pairs, conflict_every: int, max_steps: int = 10**6
) -> AlignmentTrainer:
    output_dir = tempfile.mkdtemp(prefix=f"xalign-bench-c{conflict_every}-")
    atexit.register(shutil.rmtree, output_dir, True)  # conflict.jsonl and summaries of the timed runs
    trainer = AlignmentTrainer(
        model=model,
        args=make_args(output_dir, conflict_every, max_steps),
        train_dataset=task_dataset,
        alignment_dataset=pairs,
        processing_class=tokenizer,
        data_collator=transformers.default_data_collator,  # rows are already padded to TASK_SEQ
    )
    trainer.remove_callback(transformers.PrinterCallback)  # it would print train_runtime after every timed chunk
    return trainer


# ---- driving a trainer one optimizer step at a time ----


class TrainerStepper:
    """One optimizer step of an `AlignmentTrainer` without `Trainer.train`'s loop around it.

    Runs what `Trainer._run_epoch` runs at a sync step with no clipping, minus callbacks,
    logging and the gradient-norm report: `training_step`, `optimizer.step()`,
    `lr_scheduler.step()`, `model.zero_grad()`, `global_step += 1`.
    """

    def __init__(self, trainer: AlignmentTrainer, batches: list[dict[str, torch.Tensor]]) -> None:
        self.trainer = trainer
        self.batches = batches
        trainer.create_optimizer_and_scheduler(num_training_steps=10**6)
        trainer.current_gradient_accumulation_steps = 1
        trainer.state.max_steps = 10**6
        trainer.accelerator.gradient_state._set_sync_gradients(True)
        trainer.model.train()

    @property
    def step_index(self) -> int:
        return self.trainer.state.global_step

    def step(self) -> None:
        trainer, model = self.trainer, self.trainer.model
        inputs = self.batches[self.step_index % len(self.batches)]
        trainer.training_step(model, inputs)
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
        model.zero_grad()
        trainer.state.global_step += 1


class StepClock(transformers.TrainerCallback):
    """`(wall, cpu)` stamps at each optimizer step's end inside `Trainer.train` (the whole loop per step)."""

    def __init__(self) -> None:
        self.stamps: list[tuple[float, float]] = []

    def on_train_begin(self, args, state, control, **kwargs):
        self.stamps = []

    def on_step_end(self, args, state, control, **kwargs):
        self.stamps.append((time.perf_counter(), time.process_time()))


def train_loop_chunk(trainer: AlignmentTrainer, clock: StepClock, steps: int) -> list[tuple[float, float]]:
    """Run `trainer.train()` for `steps + 1` steps; per-step times are the gaps between step ends,
    so the set-up of `train()` and its first step are not counted."""
    trainer.args.max_steps = steps + 1
    trainer.train()
    return [(b[0] - a[0], b[1] - a[1]) for a, b in zip(clock.stamps, clock.stamps[1:])]


# ---- the hand-written loop ----


def optimizer_like_trainer(args: AlignmentTrainingArguments, model: torch.nn.Module) -> torch.optim.Optimizer:
    """The optimizer `Trainer.create_optimizer` builds (same class, kwargs and parameter groups)."""
    optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
    decay = set(Trainer.get_decay_parameter_names(None, model))
    groups = [
        {
            "params": [p for n, p in model.named_parameters() if n in decay and p.requires_grad],
            "weight_decay": args.weight_decay,
        },
        {"params": [p for n, p in model.named_parameters() if n not in decay and p.requires_grad], "weight_decay": 0.0},
    ]
    return optimizer_cls(groups, **optimizer_kwargs)


def hand_contrastive(
    encoder: torch.nn.Module, batch: dict[str, torch.Tensor], temperature: float = TEMPERATURE
) -> torch.Tensor:
    """Symmetric InfoNCE over mean-pooled last-layer states; source and target rows in ONE forward."""
    pairs = batch["input_ids"].shape[0] // 2
    states = encoder(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
    ).last_hidden_state  # (2p, seq, dim)
    keep = (batch["attention_mask"] * (1 - batch["special_tokens_mask"])).unsqueeze(-1).to(states.dtype)  # (2p, seq, 1)
    sentences = F.normalize((states * keep).sum(1) / keep.sum(1).clamp_min(1.0), dim=-1)  # (2p, dim)
    src, tgt = sentences[:pairs], sentences[pairs:]
    logits = src @ tgt.T / temperature  # (p, p)
    labels = torch.arange(pairs, device=logits.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


class HandLoop:
    """The joint step written by hand in plain PyTorch, on pre-collated batches.

    `measure=False`: task forward + `backward`, alignment forward (source and target rows in
    one batch) + contrastive loss + `backward`, optimizer step, `zero_grad`. `measure=True` is
    the naive measurement: the two gradients from two `torch.autograd.grad` calls (no graph
    retained), per-group `[T·A, |T|², |A|²]` float64 sums from them as `GradientSplitter`
    computes them, a python-float cosine, then `.grad = g_task + g_align` and the same step.
    """

    def __init__(
        self, model, args, task: list[dict], align: list[dict], measure: bool = False, lam: float = 1.0
    ) -> None:
        self.model = model
        self.task, self.align = task, align
        self.measure = measure
        self.lam = lam
        self.optimizer = optimizer_like_trainer(args, model)
        self.params = [p for p in model.parameters() if p.requires_grad]
        groups = [
            parameter_group(name, model.base_model_prefix) for name, p in model.named_parameters() if p.requires_grad
        ]
        names = sorted(set(groups))
        self.group_index = torch.tensor([names.index(g) for g in groups])
        self.n_groups = len(names)
        self.index = 0
        self.last_cosine = float("nan")
        self.held_gradient_bytes = 0  # naive: bytes of distinct gradient tensors alive when .grad is set
        model.train()

    def step(self) -> None:
        task = self.task[self.index % len(self.task)]
        align = self.align[self.index % len(self.align)]
        self.index += 1
        if self.measure:
            self._naive_gradients(task, align)
        else:
            self.model(**task).loss.backward()
            (self.lam * hand_contrastive(self.model.base_model, align)).backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def _naive_gradients(self, task, align) -> None:
        task_loss = self.model(**task).loss
        task_grad = torch.autograd.grad(task_loss, self.params, allow_unused=True)
        align_loss = self.lam * hand_contrastive(self.model.base_model, align)
        align_grad = torch.autograd.grad(align_loss, self.params, allow_unused=True)
        rows = []  # per tensor [T·A, |T|², |A|²], float64 sums
        for t, a in zip(task_grad, align_grad):
            t = torch.zeros_like(a) if t is None else t
            a = torch.zeros_like(t) if a is None else a
            rows.append(torch.stack([_dot64(t, a), _dot64(t, t), _dot64(a, a)]))
        per_group = torch.zeros(self.n_groups, 3, dtype=torch.float64).index_add_(
            0, self.group_index, torch.stack(rows)
        )
        dot, task_sq, align_sq = per_group.sum(0).tolist()
        self.last_cosine = dot / math.sqrt(task_sq * align_sq) if task_sq * align_sq > 0 else float("nan")
        for p, t, a in zip(self.params, task_grad, align_grad):
            p.grad = t if a is None else (a if t is None else t + a)
        live = {
            g.data_ptr(): g.numel() * g.element_size()
            for g in (*task_grad, *align_grad, *(p.grad for p in self.params))
            if g is not None
        }
        self.held_gradient_bytes = sum(live.values())


def _dot64(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    return (first * second).sum(dtype=torch.float64)


def alignment_batches(trainer: AlignmentTrainer, count: int) -> list[dict[str, torch.Tensor]]:
    """The alignment batches the trainer uses at steps 0..count-1, collated in advance."""
    return [trainer.alignment_stream.batch(step, 0) for step in range(count)]


# ---- interleaved timing ----


@dataclass
class Variant:
    """A way of running optimizer steps; `run_chunk(n)` runs n steps and returns n `(wall, cpu)` times in seconds."""

    name: str
    run_chunk: Callable[[int], list[tuple[float, float]]]
    times: list[float] = field(default_factory=list)  # wall seconds per step
    cpu_times: list[float] = field(default_factory=list)  # process CPU seconds per step (all threads)
    round_medians: list[float] = field(default_factory=list)


def timed_steps(step: Callable[[], None], steps: int) -> list[tuple[float, float]]:
    times = []
    for _ in range(steps):
        wall, cpu = time.perf_counter(), time.process_time()
        step()
        times.append((time.perf_counter() - wall, time.process_time() - cpu))
    return times


def interleave(
    variants: list[Variant], rounds: int, steps: int, warmup: int, budget_s: float, min_rounds: int = 3
) -> None:
    """Warm each variant up, then up to `rounds` rounds of `steps` steps of each variant.

    The order alternates A B C, C B A, ... so that no variant always runs right after
    another. Rounds stop early once `budget_s` seconds have passed (after `min_rounds`).
    """
    for variant in variants:
        variant.run_chunk(warmup)
    start = time.perf_counter()
    for r in range(rounds):
        order = variants if r % 2 == 0 else variants[::-1]
        for variant in order:
            gc.collect()
            times = variant.run_chunk(steps)
            variant.times += [wall for wall, _ in times]
            variant.cpu_times += [cpu for _, cpu in times]
            variant.round_medians.append(statistics.median(wall for wall, _ in times))
        elapsed = time.perf_counter() - start
        print(
            f"  round {r + 1:>2}/{rounds} ({elapsed:4.0f} s): "
            + ", ".join(f"{v.name.split()[0]} {1e3 * v.round_medians[-1]:.0f}" for v in variants)
            + " ms",
            flush=True,
        )
        if r + 1 >= min(min_rounds, rounds) and elapsed > budget_s:
            print(f"  (time budget of {budget_s:.0f} s reached after {r + 1} rounds)")
            break


def time_call(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """`(median, min)` wall seconds of `fn()` over `repeats` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def print_ratios(variants: list[Variant], baseline: Variant, goal: dict[str, float] | None = None) -> None:
    """Median per-step time of each variant and its ratio to the baseline's.

    `ratio` is median(variant) / median(baseline) over all timed steps; `paired` is the median
    over rounds of the ratio of the two round medians (robust to slow drift of the machine),
    with the smallest and largest round ratio.
    """
    goal = goal or {}
    base = statistics.median(baseline.times)
    print(f"{'variant':<34} {'median ms':>9} {'p25-p75 ms':>15} {'ratio':>7} {'paired [min-max]':>22} {'goal':>7}")
    for variant in variants:
        median = statistics.median(variant.times)
        spread = f"{1e3 * quantile(variant.times, 0.25):.1f}-{1e3 * quantile(variant.times, 0.75):.1f}"
        paired = [v / b for v, b in zip(variant.round_medians, baseline.round_medians)]
        paired_text = f"{statistics.median(paired):.3f} [{min(paired):.3f}-{max(paired):.3f}]"
        target = f"<={goal[variant.name]:.2f}" if variant.name in goal else ""
        print(
            f"{variant.name:<34} {1e3 * median:>9.1f} {spread:>15} {median / base:>7.3f} {paired_text:>22} {target:>7}"
        )


def print_setup(
    model: torch.nn.Module, task_batch: dict[str, torch.Tensor], align_batches: list[dict[str, torch.Tensor]]
) -> None:
    n_params = sum(p.numel() for p in model.parameters())
    embeddings = model.get_input_embeddings().weight
    seqs = sorted({b["input_ids"].shape[1] for b in align_batches})
    print(
        f"model: XLMRobertaForTokenClassification, {NUM_LAYERS} layers, hidden {HIDDEN_SIZE}, vocab {embeddings.shape[0]}, "
        f"{n_params / 1e6:.2f}M parameters ({parameter_bytes(model) / 2**20:.1f} MiB fp32; word embeddings "
        f"{embeddings.numel() / n_params:.0%}), dropout {model.config.hidden_dropout_prob}"
    )
    print(
        f"batches: task {tuple(task_batch['input_ids'].shape)} (sentences, tokens); alignment "
        f"{ALIGN_PAIRS} pairs -> ({2 * ALIGN_PAIRS}, {seqs[0]}..{seqs[-1]}) rows x tokens in one forward"
    )


def peak_allocated(fn: Callable[[], None]) -> tuple[int, int]:
    """`(peak, end)` bytes allocated by `fn` on the CPU above what was live before it, from torch.profiler.

    Reads the allocation / free events of the profiler's memory tracing in time order; tensors
    alive before `fn` and freed inside it count negative, so `peak` is the working-set growth.
    """
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]")
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return peak, live


def done(start: float) -> None:
    print(f"total wall time {time.perf_counter() - start:.0f} s", file=sys.stderr)


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


def print_profile_overheads(profiler, steps: int, title: str, limit: int = 10) -> None:
    """The loop's own Python functions (not the model's arithmetic) by cumulative time per step.

    From a cProfile run; functions in the trainer, transformers' Trainer, accelerate, the
    optimizer module, minus `ARITHMETIC_WRAPPERS` (whose cumulative time is
    the forwards, backwards and optimizer update that every variant runs).
    """
    import pstats

    stats = pstats.Stats(profiler)
    total = stats.total_tt
    keep = (
        "/hf_xalign/",
        "/transformers/trainer",
        "/accelerate/",
        "/torch/optim/",
        "/transformers/data/",
        "/torch/nn/utils/clip_grad",
        "/datasets/",
    )
    rows = []
    for (filename, line, function), (_, calls, _, cumulative, _) in stats.stats.items():
        if any(part in filename for part in keep) and function not in ARITHMETIC_WRAPPERS:
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


@dataclass
class Bench:
    """What both benchmarks start from: the options, the timing plan, and the model and data."""

    quick: bool
    rounds: int
    steps: int
    budget: float
    repeats: int
    wall_start: float
    tokenizer: object
    pairs: datasets.Dataset
    task_data: datasets.Dataset
    batches: list
    base: XLMRobertaForTokenClassification


def set_up(title: str, description: str, default_rounds: int, default_steps: int) -> Bench:
    """Parse the options, fix the threads, print the header and the machine, build model and data."""
    options = parse_args(description)
    quick = options.quick
    wall_start = time.perf_counter()
    configure(options.threads)
    print(f"== {title} ==")
    print_machine()
    raw_pairs = load_pairs()
    tokenizer = build_tokenizer(raw_pairs)
    task_data = build_task_dataset(tokenizer, raw_pairs, rows=16 * 8)
    return Bench(
        quick=quick,
        rounds=options.rounds or (2 if quick else default_rounds),
        steps=options.steps or (2 if quick else default_steps),
        budget=options.budget or (10.0 if quick else 150.0),
        repeats=3 if quick else 7,
        wall_start=wall_start,
        tokenizer=tokenizer,
        pairs=build_parallel_dataset(tokenizer, raw_pairs),
        task_data=task_data,
        batches=task_batches(task_data, 8),
        base=build_model(tokenizer),
    )
