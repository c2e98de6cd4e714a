"""POS tagging on Universal Dependencies: fine-tune on one language, evaluate zero-shot on others,
with and without cross-lingual alignment.

    accelerate launch recipes/pos.py recipes/configs/pos.yaml            # xlm-roberta-base, real UD
    python recipes/pos.py recipes/configs/pos_demo.yaml                  # offline demo (make demo)
    accelerate launch --multi_gpu --num_processes 2 recipes/pos.py recipes/configs/pos_demo.yaml  # 2 CPU processes
    python recipes/pos.py recipes/configs/pos_demo.yaml --max_steps 20 --compare false   # overrides

The story: read the source-language treebank and one test treebank per target language;
train an `AutoModelForTokenClassification` with `AlignmentTrainer` (alignment joint with
the task, or as a stage before it, as the config says); evaluate token accuracy on every
language; then, with `compare: true`, train the same model without alignment and print
both columns and their difference. Results go to `output_dir/results.{json,md}`.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

import datasets
import evaluate
import numpy as np
import transformers
from transformers import AutoModelForTokenClassification, AutoTokenizer, DataCollatorForTokenClassification, set_seed

from hf_xalign import AlignmentTrainer, AlignmentTrainingArguments
from hf_xalign.data import drop_pairs_containing, load_parallel
from hf_xalign.data.conllu import GOOGLE_UNIVERSAL_TAG_MAP, UPOS_TAGS, read_treebank, tokenize_and_align_labels
from hf_xalign.experiment import (
    ALIGNED,
    BASELINE,
    ZeroShotReport,
    evaluate_languages,
    parse_config,
    parse_language_paths,
    use_console_log,
)
from hf_xalign.metrics import metric_path

TAG_MAPS = {"none": None, "google_universal": GOOGLE_UNIVERSAL_TAG_MAP}


@dataclass
class PosArguments:
    """The experiment: model, treebanks, parallel text."""

    model_name_or_path: str = field(metadata={"help": "Hub id or local folder of the encoder."})
    train_treebank: list[str] = field(
        metadata={"help": "Source-language CoNLL-U file(s), folder(s), glob(s), or hub:PATH[:CONFIG]:SPLIT."}
    )
    eval_treebanks: list[str] = field(metadata={"help": "LANG=PATH per evaluation language (source included)."})
    source_language: str = field(default="en", metadata={"help": "Language of the training treebank."})
    parallel_data: list[str] = field(default_factory=list, metadata={"help": "Parallel TSV/JSONL file(s)."})
    tag_map: str = field(default="none", metadata={"help": f"Tag renaming: {', '.join(TAG_MAPS)}."})
    max_length: int = field(default=128, metadata={"help": "Max tokens per sentence."})
    label_all_subtokens: bool = field(default=False, metadata={"help": "Label every sub-token, not only the first."})
    compare: bool = field(default=True, metadata={"help": "Also train without alignment and show the difference."})

    def __post_init__(self) -> None:
        if self.tag_map not in TAG_MAPS:
            raise ValueError(f"tag_map must be one of {', '.join(TAG_MAPS)}, got {self.tag_map!r}.")
        self.eval_languages = parse_language_paths(self.eval_treebanks, "eval_treebanks")


def token_accuracy(predictions: np.ndarray, label_ids: np.ndarray) -> dict[str, float]:
    metric = evaluate.load(metric_path("token_accuracy"))
    return metric.compute(predictions=predictions.argmax(-1).tolist(), references=label_ids.tolist())


def train_and_evaluate(variant, script_args, training_args, tokenizer, train, eval_sets, parallel):
    set_seed(training_args.seed)
    model = AutoModelForTokenClassification.from_pretrained(
        script_args.model_name_or_path,
        num_labels=len(UPOS_TAGS),
        id2label=dict(enumerate(UPOS_TAGS)),
        label2id={tag: i for i, tag in enumerate(UPOS_TAGS)},
    )
    overrides = {"output_dir": os.path.join(training_args.output_dir, variant)}
    if variant == BASELINE:
        overrides["alignment_mode"] = "none"
    args = dataclasses.replace(training_args, **overrides)
    trainer = AlignmentTrainer(
        model=model,
        args=args,
        train_dataset=train,
        alignment_dataset=parallel if variant == ALIGNED else None,
        processing_class=tokenizer,
        data_collator=DataCollatorForTokenClassification(tokenizer),
    )
    use_console_log(trainer)
    trainer.train()
    trainer.save_model()
    scores = evaluate_languages(trainer, eval_sets, token_accuracy)
    summary = trainer.conflict_callback.summary if trainer.conflict_callback else None
    return scores, summary, trainer.is_world_process_zero()


def main(script_args: PosArguments, training_args: AlignmentTrainingArguments) -> ZeroShotReport:
    transformers.utils.logging.set_verbosity(training_args.get_process_log_level())  # as HF's examples do
    tokenizer = AutoTokenizer.from_pretrained(script_args.model_name_or_path)
    tag_map = TAG_MAPS[script_args.tag_map]

    treebanks = {
        language: read_treebank(path, language=language, tag_map=tag_map)
        for language, path in script_args.eval_languages.items()
    }
    columns = ["words", "upos", "lang", "sent_id"]

    def tokenized(treebank):
        encoded = tokenize_and_align_labels(
            treebank, tokenizer, script_args.max_length, script_args.label_all_subtokens
        )
        return encoded.remove_columns(columns)

    train = tokenized(read_treebank(script_args.train_treebank, language=script_args.source_language, tag_map=tag_map))
    eval_sets = {language: tokenized(treebank) for language, treebank in treebanks.items()}
    parallel, dropped = None, 0
    if script_args.parallel_data and training_args.alignment_mode != "none":
        pairs = datasets.concatenate_datasets([load_parallel(path) for path in script_args.parallel_data])
        # Zero-shot test sentences must not be aligned: drop the pairs that contain a target-language
        # test sentence. (Source-language test text is not zero-shot; dropping it would also drop its
        # translations into every other language, which share the English side.)
        target_words = (
            words for lang, t in treebanks.items() if lang != script_args.source_language for words in t["words"]
        )
        parallel = drop_pairs_containing(pairs, (" ".join(words) for words in target_words))
        dropped = len(pairs) - len(parallel)

    report = ZeroShotReport(
        metric="accuracy",
        source_language=script_args.source_language,
        details={
            "model": script_args.model_name_or_path,
            "train_sentences": len(train),
            "eval_sentences": {language: len(data) for language, data in eval_sets.items()},
            "parallel_pairs": len(parallel) if parallel is not None else 0,
            "parallel_pairs_dropped_as_test_text": dropped,
            "alignment_loss": training_args.alignment_loss,
            "alignment_mode": training_args.alignment_mode,
        },
    )
    variants = [ALIGNED, BASELINE] if script_args.compare else [ALIGNED]
    main_process = True
    for variant in variants:
        scores, summary, main_process = train_and_evaluate(
            variant, script_args, training_args, tokenizer, train, eval_sets, parallel
        )
        report.runs[variant] = scores
        if variant == ALIGNED:
            report.conflict_summary = summary
    if main_process:
        report.save(training_args.output_dir)
        print("\n" + report.to_markdown())
    return report


if __name__ == "__main__":
    main(*parse_config((PosArguments, AlignmentTrainingArguments)))
