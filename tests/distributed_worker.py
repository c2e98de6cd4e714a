"""One process of the 2-process DDP test (tests/test_distributed.py); run under torchrun.

Each rank trains one step of a float64 tiny tagger with a contrastive + MLM alignment and
saves what it saw (its task batch, its alignment batch) and the gradients right before the
optimizer step, so the test can rebuild the expected gradient independently.
"""

from __future__ import annotations

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


def main(out_dir: str, combination: str) -> None:
    transformers.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    tokenizer = build_tokenizer()
    task = tag_dataset(tokenizer, synthetic_sentences(32, seed=2))
    collate = DataCollatorForTokenClassification(tokenizer)
    seen = []

    def recording_collator(rows):
        batch = collate(rows)
        seen.append({k: v.clone() for k, v in batch.items()})
        return batch

    model = make_model(tokenizer).double()
    args = AlignmentTrainingArguments(
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
        gradient_combination=combination,
    )
    trainer_ref = []
    capture = CaptureGradients(trainer_ref)
    trainer = AlignmentTrainer(
        model=model,
        args=args,
        train_dataset=task,
        alignment_dataset=build_parallel(),
        processing_class=tokenizer,
        data_collator=recording_collator,
        callbacks=[capture],
    )
    trainer_ref.append(trainer)
    initial_head = {k: v.clone() for k, v in trainer.alignment_losses.state_dict().items()}
    trainer.train()
    rank = args.process_index
    torch.save(
        {
            "world_size": args.world_size,
            "task_batch": seen[0],
            "alignment_batch": trainer.alignment_stream.batch(0, 0),
            "grads": capture.grads,
            "initial_head": initial_head,
            "measurement": trainer.conflict_callback.measurements[0].to_record(),
        },
        os.path.join(out_dir, f"rank{rank}.pt"),
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "sum")
