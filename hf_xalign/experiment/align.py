"""Alignment-only training: an encoder aligned on parallel text, saved as a checkpoint to fine-tune later.

[`align_encoder`] reads the parallel text (only the language pairs asked for, without the pairs
that contain held-out text such as evaluation sentences), trains the bare encoder (`AutoModel`)
with [`~hf_xalign.AlignmentTrainer`] and no task data, and saves in `output_dir`: the encoder in
safetensors, its tokenizer, `alignment_config.json` (with the objective's name), the loss-owned
heads (`alignment_losses.safetensors`: the MLM/TLM heads, never published unless asked), the
model card, `config.yaml` (reruns it with `recipes/align.py`), and last the finished marker
(`finished.json`, kind `alignment`, [`read_marker`]), which says what was aligned. A folder with the marker is complete: calling
again returns at once. The checkpoint loads as the encoder of any task model
(`AutoModelForTokenClassification.from_pretrained(folder, num_labels=17)`, a fresh head).

MLM and TLM start from the checkpoint's own LM head when it has one (XLM-R, mBERT), else from a fresh
one (a bare sentence encoder); the finished marker says which (`lm_head`).

Objectives come from the training arguments (`alignment_loss`, weights, layer), or by name from
[`OBJECTIVES`] (`objective: paper_mix` in [`AlignArguments`]; see `objectives.py`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedModel, set_seed

from ..analysis.analyze import analyze
from ..args import AlignmentTrainingArguments
from ..checkpoints import last_complete_checkpoint
from ..data.conllu import read_treebank
from ..data.parallel import drop_pairs_containing, hold_out_pairs, language_pair_counts, load_parallel
from ..files import ALIGNMENT_CONFIG_NAME, ALIGNMENT_KIND, FINISHED_NAME, MODEL_CARD_NAME, read_finished, write_finished
from ..hub import push_aligned
from ..layers import resolve_layer
from ..losses import MaskedLMHead, pretrained_head_state
from ..model_card import build_model_card
from ..trainer import AlignmentTrainer, alignment_only_arguments
from .config import ConfigError, resolved_config, save_config
from .console import quiet_console, use_console_log
from .objectives import OBJECTIVES, objective_arguments, unknown_objective_error
from .output_dir import RecipeOutput

__all__ = [
    "ALIGNMENT_FILES",
    "OBJECTIVES",
    "AlignArguments",
    "align_encoder",
    "alignment_settings",
    "alignment_summary",
    "read_marker",
]

RETRIEVAL = "retrieval_src_to_tgt"  # the measure the summary shows before and after alignment


@dataclass(kw_only=True)
class AlignArguments:
    """What to align: the encoder, the parallel text and its language pairs, the objective by name."""

    model_name_or_path: str = field(metadata={"help": "Hub id or local folder of the encoder."})
    parallel_data: list[str] = field(metadata={"help": "Parallel TSV/JSONL file(s) or hub:PATH[:CONFIG]:SPLIT."})
    language_pairs: list[str] = field(
        default_factory=list, metadata={"help": "Language pairs to align on, e.g. en-fr en-tr; empty: every pair."}
    )
    objective: str | None = field(
        default=None,
        metadata={
            "help": f"Preset objective ({', '.join(OBJECTIVES)}); its options replace alignment_loss, "
            "alignment_loss_weights, alignment_layer, alignment_token_distance. Unset: those options as given."
        },
    )
    held_out_files: list[str] = field(
        default_factory=list,
        metadata={"help": "Text (one sentence a line) or CoNLL-U files: pairs containing their sentences are dropped."},
    )
    eval_pairs: int = field(
        default=0,
        metadata={"help": "Pairs per language pair kept out of training to measure retrieval before/after (0: none)."},
    )

    def __post_init__(self) -> None:
        if self.objective is not None and self.objective not in OBJECTIVES:
            raise unknown_objective_error(self.objective)
        malformed = [pair for pair in self.language_pairs if len(pair.split("-")) != 2 or "" in pair.split("-")]
        if malformed:
            raise ValueError(f"language_pairs: {', '.join(map(repr, malformed))} not of the form SRC-TGT (e.g. en-fr).")
        if self.eval_pairs == 1 or self.eval_pairs < 0:
            raise ValueError(
                f"eval_pairs must be 0 (none) or >= 2 (retrieval needs candidates), got {self.eval_pairs}."
            )


def select_language_pairs(pairs: datasets.Dataset, language_pairs: Iterable[str]) -> datasets.Dataset:
    """The rows of `pairs` whose `"{src_lang}-{tgt_lang}"` is one of `language_pairs` (all rows when empty).

    Raises:
        [`ConfigError`]: a language pair with no rows, naming it and the pairs the data has.
    """
    wanted = list(language_pairs)
    if not wanted:
        return pairs
    available = language_pair_counts(pairs)
    missing = [pair for pair in wanted if pair not in available]
    if missing:
        raise ConfigError(
            f"language_pairs: no parallel text for {', '.join(missing)}; the parallel data has "
            f"{', '.join(f'{pair} ({count})' for pair, count in available.items())} "
            "(languages come from the src_lang/tgt_lang columns or the file names)."
        )
    keys = [f"{s or '?'}-{t or '?'}" for s, t in zip(pairs["src_lang"], pairs["tgt_lang"])]
    return pairs.select([i for i, key in enumerate(keys) if key in wanted])


def read_held_out_files(paths: Iterable[str]) -> list[str]:
    """The sentences of `paths`: CoNLL-U files (`.conllu`) as their words joined, other files line by line."""
    texts: list[str] = []
    for path in paths:
        if str(path).endswith(".conllu"):
            texts += [" ".join(words) for words in read_treebank(path)["words"]]
        else:
            texts += [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    return texts


def read_marker(folder: str) -> dict[str, Any] | None:
    """What `folder`'s finished marker records of its alignment, or `None` when the folder is not a finished one."""
    return read_finished(folder, ALIGNMENT_KIND)


def _retrieval(
    model: PreTrainedModel, tokenizer: Any, pairs: datasets.Dataset | None, layer: int, max_length: int
) -> dict[str, float] | None:
    """`{language pair: P@1 source → target}` at `layer` on the held-out `pairs`; `None` without them."""
    if pairs is None:
        return None
    rows = analyze(model, tokenizer, pairs, layers=[layer], max_length=max_length)
    return {row["pair"]: row["value"] for row in rows if row["measure"] == RETRIEVAL}


def _first_and_last(log_history: list[dict[str, Any]], key: str) -> dict[str, float] | None:
    values = [entry[key] for entry in log_history if key in entry]
    return {"first": values[0], "last": values[-1]} if values else None


def _start_from_pretrained_lm_head(trainer: AlignmentTrainer, model_name_or_path: str) -> str | None:
    """Give the MLM/TLM losses' heads the checkpoint's own LM head, when it has one; says which they start from.

    A fresh head on a pretrained encoder starts with a loss far above the model's own (≈30 instead of ≈2
    on XLM-R) and sends that head's noise into the encoder; the checkpoint's head continues its
    pretraining. Returns `"pretrained"`, `"fresh"` (no head in the checkpoint), or `None` (no MLM/TLM loss).
    The optimizer is not built yet: the weights are copied into the heads it will train.
    """
    heads = [loss.head for loss in trainer.alignment_losses if isinstance(getattr(loss, "head", None), MaskedLMHead)]
    if not heads:
        return None
    state = pretrained_head_state(model_name_or_path)
    if state is None:
        return "fresh"
    for head in heads:
        head.load_state_dict(state)
    return "pretrained"


def _record_objective(folder: str, objective: str | None, repo_id: str | None) -> None:
    """Add the objective's name to `alignment_config.json` and write the card again from it."""
    path = os.path.join(folder, ALIGNMENT_CONFIG_NAME)
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    config["objective"] = objective
    with open(path, "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
    build_model_card(folder, repo_id).save(os.path.join(folder, MODEL_CARD_NAME))


def _with_objective(
    script_args: AlignArguments, training_args: AlignmentTrainingArguments
) -> AlignmentTrainingArguments:
    """`training_args` with the loss options of `script_args.objective`, when one is named."""
    if script_args.objective is None:
        return training_args
    num_layers = AutoConfig.from_pretrained(script_args.model_name_or_path).num_hidden_layers
    return objective_arguments(training_args, script_args.objective, num_layers)


def alignment_settings(script_args: AlignArguments, training_args: AlignmentTrainingArguments) -> dict[str, Any]:
    """What an alignment writes into `config.yaml`: the resolved options, a named objective's applied."""
    return resolved_config(script_args, _with_objective(script_args, training_args))


# recipes/align.py: its finished marker is written last and holds what was aligned.
ALIGNMENT_FILES = RecipeOutput(finished_kind=ALIGNMENT_KIND, results_name=FINISHED_NAME, settings=alignment_settings)


def align_encoder(
    script_args: AlignArguments,
    training_args: AlignmentTrainingArguments,
    held_out_texts: Iterable[str] | None = None,
) -> str:
    """Align an encoder on parallel text alone and save it in `training_args.output_dir`; returns that folder.

    Args:
        script_args ([`AlignArguments`]): the encoder, parallel text, language pairs, objective name.
        training_args ([`AlignmentTrainingArguments`]): the training (`max_steps` must be set) and the
            alignment losses; a named `script_args.objective` replaces the loss options.
        held_out_texts (`Iterable[str]`, *optional*): sentences that must not be aligned (evaluation
            text): every pair with one of them on either side is dropped, as are those of
            `script_args.held_out_files`.

    The gradient measurement and combining rules (`conflict_every`, `gradient_combination`) are off:
    they compare with a task gradient, and there is none. A folder that already holds a finished
    alignment ([`read_marker`]) is returned at once, untrained; one without it is trained again, from its last
    complete checkpoint when it has one (`save_strategy: steps`). With `push_to_hub`
    the folder is pushed to `hub_model_id` (card included) before the marker is written. Every
    process of a distributed launch must call it; the main process writes the files.
    """
    output_dir = training_args.output_dir
    if read_marker(output_dir) is not None:
        return output_dir
    quiet_console(training_args)
    training_args = _with_objective(script_args, training_args)
    num_layers = AutoConfig.from_pretrained(script_args.model_name_or_path).num_hidden_layers
    pairs = select_language_pairs(load_parallel(script_args.parallel_data), script_args.language_pairs)
    held_out = [*(held_out_texts or ()), *read_held_out_files(script_args.held_out_files)]
    kept = drop_pairs_containing(pairs, held_out) if held_out else pairs
    if len(kept) == 0:
        raise ConfigError(f"No parallel text left: all {len(pairs)} pairs contain held-out text.")
    measured = None
    if script_args.eval_pairs:
        kept, measured = hold_out_pairs(kept, script_args.eval_pairs, training_args.seed)

    # Before the trainer exists: resolving builds fresh arguments, which resets accelerate's shared state.
    config = resolved_config(script_args, training_args)
    tokenizer = AutoTokenizer.from_pretrained(script_args.model_name_or_path)
    set_seed(training_args.seed)
    model = AutoModel.from_pretrained(script_args.model_name_or_path)
    layer = resolve_layer(training_args.alignment_layer, num_layers)
    before = _retrieval(model, tokenizer, measured, layer, training_args.alignment_max_length)
    # As the sequential mode's alignment stage trains (arguments shared with a study's task cells may ask for a
    # measurement, evaluation or a push that alignment alone cannot do); the folder is pushed below.
    trainer = AlignmentTrainer(
        model=model,
        args=alignment_only_arguments(training_args),
        alignment_dataset=kept,
        processing_class=tokenizer,
    )
    lm_head = _start_from_pretrained_lm_head(trainer, script_args.model_name_or_path)
    if trainer.is_world_process_zero():
        save_config(config, output_dir, "recipes/align.py")
    use_console_log(trainer)
    started = time.perf_counter()
    # A run killed before its end (no marker) goes on from its last complete checkpoint, if it saved one.
    trainer.train(resume_from_checkpoint=last_complete_checkpoint(output_dir))
    seconds = time.perf_counter() - started
    trainer.save_model()
    after = _retrieval(model, tokenizer, measured, layer, training_args.alignment_max_length)
    if not trainer.is_world_process_zero():
        return output_dir
    # As Trainer does, a push without hub_model_id goes to a repository named after the folder.
    repo_id = training_args.hub_model_id or Path(output_dir).resolve().name
    _record_objective(output_dir, script_args.objective, repo_id)
    pushed = None
    if training_args.push_to_hub:
        pushed = push_aligned(
            output_dir,
            repo_id,
            token=training_args.hub_token,
            private=training_args.hub_private_repo,
            revision=training_args.hub_revision,
            include_loss_heads=training_args.hub_push_loss_heads,
        )
    history = trainer.state.log_history
    marker = {
        "model": script_args.model_name_or_path,
        "objective": script_args.objective,
        "losses": list(training_args.alignment_loss),
        "loss_weights": trainer.alignment_loss_weights,
        "layer": layer,
        "lm_head": lm_head,
        "language_pairs": language_pair_counts(kept),
        "pairs_dropped_as_held_out": len(pairs) - len(kept) - (len(measured) if measured else 0),
        "steps": trainer.state.global_step,
        "seconds": seconds,
        # The weighted sum, then each loss unweighted: their first and last logged values.
        "logged_losses": {
            key: _first_and_last(history, key)
            for key in ["align_loss", *(f"align/{name}" for name in trainer.alignment_loss_names)]
        },
        "retrieval_layer": layer,
        "retrieval_before": before,
        "retrieval_after": after,
        "pushed": pushed,
    }
    write_finished(output_dir, ALIGNMENT_KIND, marker)
    return output_dir


def alignment_summary(marker: dict[str, Any]) -> str:
    """A few lines for the console: pairs, steps and time, the loss's first and last logged values, retrieval."""
    pairs = ", ".join(f"{pair} {count}" for pair, count in marker["language_pairs"].items())
    objective = marker["objective"] or " + ".join(marker["losses"])
    lines = [
        f"aligned {marker['model']} with {objective} on {pairs} pairs "
        f"({marker['pairs_dropped_as_held_out']} dropped as held-out text)",
        f"{marker['steps']} steps in {marker['seconds']:.0f} s",
    ]
    for key, logged in marker["logged_losses"].items():
        if logged:
            lines.append(f"{key} {logged['first']:.4f} (first log) -> {logged['last']:.4f} (last log)")
    before, after = marker["retrieval_before"], marker["retrieval_after"]
    for pair in before or {}:
        lines.append(
            f"retrieval P@1 {pair} at layer {marker['retrieval_layer']}: {before[pair]:.3f} -> {after[pair]:.3f}"
        )
    if marker["lm_head"]:
        lines.append(f"MLM/TLM head: {marker['lm_head']} (the checkpoint's own LM head when it has one)")
    if marker["pushed"]:
        lines.append(f"pushed: {marker['pushed']}")
    return "\n".join(lines)
