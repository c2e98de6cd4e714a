"""One process of the 2-process DDP tests (tests/test_distributed.py); run under torchrun.

Each rank trains one step of a float64 tiny tagger with a contrastive + MLM alignment and
saves what it saw (its task batch, its alignment batch) and the gradients right before the
optimizer step, so the test can rebuild the expected gradient independently. With
`skip-nonfinite` as the second argument, rank 1's task loss is NaN at step 0 instead, and each
rank saves what it skipped and its parameters after two steps (`skip-nonfinite-accumulated`: the
same with 2 micro-steps per step, both NaN on rank 1). With `accumulate`, two steps of 2 micro-steps,
measured every other step: each rank also saves every `all_reduce` it made and every alignment
forward, in order. With `clean-exit`, a good run ends as a user's script often does: two steps, then
the mean training loss over the processes printed; at exit, each rank prints how many of gloo's
threads it still has.
"""

from __future__ import annotations

import atexit
import os
import sys

import torch
import transformers
from transformers import DataCollatorForTokenClassification, TrainerCallback

sys.path.insert(0, os.path.dirname(__file__))
import datasets  # noqa: E402
from conftest import make_model, synthetic_sentences, tag_dataset, translate  # noqa: E402

from hf_xalign import AlignmentTrainer, AlignmentTrainingArguments  # noqa: E402
from hf_xalign.tiny import train_tokenizer  # noqa: E402

LAMBDA = 0.7


def build_tokenizer():
    texts = []
    for words in synthetic_sentences(200, seed=0):
        texts += [" ".join(words), " ".join(translate(words))]
    return train_tokenizer(texts, vocab_size=120)


def build_parallel():
    sentences = synthetic_sentences(64, seed=1)
    return datasets.Dataset.from_dict(
        {"src": [" ".join(w) for w in sentences], "tgt": [" ".join(translate(w)) for w in sentences]}
    )


class CaptureGradients(TrainerCallback):
    def __init__(self, trainer_ref):
        self.trainer_ref, self.grads = trainer_ref, None

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        if self.grads is None:
            named = self.trainer_ref[0]._named_trainable_parameters()
            self.grads = {n: p.grad.detach().clone() for n, p in named if p.grad is not None}


class NonfiniteTaskOnRank1(AlignmentTrainer):
    """The task loss is NaN at step 0 on rank 1 only."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        return loss * float("nan") if (self.state.global_step, self.args.process_index) == (0, 1) else loss


def build_trainer(
    out_dir: str, tokenizer, collate, callbacks, trainer_class=AlignmentTrainer, **overrides
) -> AlignmentTrainer:
    """A float64 tiny tagger with contrastive + MLM alignment, one step unless `overrides` say otherwise."""
    options = dict(
        output_dir=os.path.join(out_dir, "run"),
        max_steps=1,
        per_device_train_batch_size=4,
        alignment_batch_size=4,
        max_grad_norm=0.0,
        learning_rate=1e-3,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        seed=7,
        alignment_lambda=LAMBDA,
        alignment_loss=["contrastive", "mlm"],
    )
    options.update(overrides)
    return trainer_class(
        model=make_model(tokenizer).double(),
        args=AlignmentTrainingArguments(**options),
        train_dataset=tag_dataset(tokenizer, synthetic_sentences(32, seed=2)),
        alignment_dataset=build_parallel(),
        processing_class=tokenizer,
        data_collator=collate,
        callbacks=callbacks,
    )


class RecordingCollectives(AlignmentTrainer):
    """Records, in order, each alignment forward and each `torch.distributed.all_reduce` (size, asynchronous or not),
    with the optimizer step it belongs to."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.events: list[tuple] = []
        all_reduce = torch.distributed.all_reduce

        def recording_all_reduce(tensor, *args, async_op=False, **kwargs):
            self.events.append((self.state.global_step, "all_reduce", tensor.numel(), async_op))
            return all_reduce(tensor, *args, async_op=async_op, **kwargs)

        torch.distributed.all_reduce = recording_all_reduce

    def compute_alignment_loss(self, model, batch):
        self.events.append((self.state.global_step, "alignment forward"))
        return super().compute_alignment_loss(model, batch)


def main(out_dir: str, combination: str) -> None:
    """One step (`sum` or `balance`), or with `accumulate` two steps of 2 micro-steps, measured every other step."""
    accumulate = combination == "accumulate"
    seen = []
    tokenizer = build_tokenizer()
    collate = DataCollatorForTokenClassification(tokenizer)

    def recording_collator(rows):
        batch = collate(rows)
        seen.append({k: v.clone() for k, v in batch.items()})
        return batch

    trainer_ref = []
    capture = CaptureGradients(trainer_ref)
    if accumulate:
        options = dict(trainer_class=RecordingCollectives, max_steps=2, gradient_accumulation_steps=2, conflict_every=2)
    else:
        options = dict(gradient_combination=combination)
    trainer = build_trainer(out_dir, tokenizer, recording_collator, [capture], **options)
    trainer_ref.append(trainer)
    initial_head = {k: v.clone() for k, v in trainer.alignment_losses.state_dict().items()}
    trainer.train()
    rank = trainer.args.process_index
    torch.save(
        {
            "world_size": trainer.args.world_size,
            "task_batches": seen[: trainer.args.gradient_accumulation_steps],  # step 0's micro-batches
            "alignment_batches": [
                trainer.alignment_stream.batch(0, micro) for micro in range(trainer.args.gradient_accumulation_steps)
            ],
            "grads": capture.grads,
            "initial_head": initial_head,
            "measurement": trainer.conflict_callback.measurements[0].to_record(),
            "measured_steps": [m.step for m in trainer.conflict_callback.measurements],
            "events": getattr(trainer, "events", []),
        },
        os.path.join(out_dir, f"rank{rank}.pt"),
    )


def skip_on_one_rank(out_dir: str, accumulation: int) -> None:
    """Step 0's task loss is NaN on rank 1 only: with skip_nonfinite_steps=1 both ranks must skip it."""
    trainer_ref = []
    capture = CaptureGradients(trainer_ref)
    tokenizer = build_tokenizer()
    trainer = build_trainer(
        out_dir,
        tokenizer,
        DataCollatorForTokenClassification(tokenizer),
        [capture],
        trainer_class=NonfiniteTaskOnRank1,
        max_steps=2,
        skip_nonfinite_steps=1,
        gradient_accumulation_steps=accumulation,
    )
    trainer_ref.append(trainer)
    initial = {n: p.detach().clone() for n, p in trainer._named_trainable_parameters()}
    trainer.train()
    torch.save(
        {
            "skipped": trainer.nonfinite.skipped,
            "grads_at_step_0": capture.grads,
            "initial": initial,
            "final": {n: p.detach().clone() for n, p in trainer._named_trainable_parameters()},
            "measured_steps": [m.step for m in trainer.conflict_callback.measurements],
        },
        os.path.join(out_dir, f"rank{trainer.args.process_index}.pt"),
    )


def print_gloo_threads() -> None:
    """Print how many of gloo's threads this process still has (Linux thread names, /proc/self/task)."""
    names = []
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/comm", encoding="utf-8") as f:
            names.append(f.read().strip())
    print(f"gloo threads left: {sum(name.startswith(('pt_gloo', 'gloo')) for name in names)}", flush=True)


def train_then_print_mean_loss(out_dir: str) -> None:
    """Two steps (alignment and gradient measurement on, `sum`), then the mean training loss over the processes.

    That last collective comes right before the interpreter exits: gloo's worker thread may drop its
    tensors after Python began shutting down, which aborted 1 in 30 of these launches here before
    `hf_xalign.process_group`. The last exit handler prints how many gloo threads are left (none, once
    the group is destroyed).
    """
    atexit.register(print_gloo_threads)  # before the trainer's own exit handler: runs after it
    tokenizer = build_tokenizer()
    collate = DataCollatorForTokenClassification(tokenizer)
    trainer = build_trainer(out_dir, tokenizer, collate, [], max_steps=2, conflict_every=1, gradient_combination="sum")
    output = trainer.train()
    mean_loss = trainer.accelerator.reduce(torch.tensor([output.training_loss]), reduction="mean").item()
    print(f"mean training loss over {trainer.args.world_size} processes: {mean_loss:.4f}")


if __name__ == "__main__":
    transformers.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    if sys.argv[2:3] == ["skip-nonfinite"]:
        skip_on_one_rank(sys.argv[1], accumulation=1)
    elif sys.argv[2:3] == ["skip-nonfinite-accumulated"]:
        skip_on_one_rank(sys.argv[1], accumulation=2)
    elif sys.argv[2:3] == ["clean-exit"]:
        train_then_print_mean_loss(sys.argv[1])
    else:
        main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "sum")
