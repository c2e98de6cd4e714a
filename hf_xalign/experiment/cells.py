"""An experiment is a list of cells: one cell trains one model and scores it on every language.

A cell is (task, model source, alignment settings, seed): [`run_cell`] builds a fresh model,
trains it with [`~hf_xalign.AlignmentTrainer`], evaluates it per language through
`Trainer.evaluate(eval_dataset={lang: dataset})` (so `eval_<lang>_accuracy` and friends reach
`state.log_history` and every `report_to` target) and returns a [`CellResult`]. "Compare" is a
grid of two cells, the aligned model and its baseline (`alignment_mode: none`); the study is a
grid of many. Reports and model cards read `CellResult`s, never recipe internals.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import set_seed

from ..analysis.bootstrap import MIN_BOOTSTRAP_EXAMPLES, delta_interval, labelled_examples, score_interval
from ..analysis.report.inputs import read_outcomes
from ..checkpoints import last_complete_checkpoint
from ..data.hub import HUB_COMMITS, resolved_revisions
from ..files import OUTCOMES_NAME
from ..results import CellResult
from ..trainer import AlignmentTrainer
from ..version import __version__
from .config import resolved_config
from .console import use_console_log
from .task import ZeroShotTask, predicted_ids

logger = transformers.utils.logging.get_logger(__name__)

ALIGNED, BASELINE = "aligned", "baseline"
# `Trainer.evaluate` adds these to the metric module's scores: the loss (it stays in `log_history`) and speed.
_NOT_SCORES = ("loss", "runtime", "samples_per_second", "steps_per_second")


def evaluate_languages(
    trainer: AlignmentTrainer, task: ZeroShotTask
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, list[int]]]]:
    """Zero-shot evaluation, one language at a time: `Trainer.evaluate(eval_dataset={lang: dataset})`.

    The Trainer logs `eval_<lang>_<score>` (to `log_history` and every `report_to` target); the
    result keeps each language's scores from the metric module, without the prefix, and the
    per-example outcomes of the main metric (`correct`, `total` per example) for confidence
    intervals. One language per call keeps the prefixes apart (`en` and `en_gb` would share `eval_en_`).
    """
    scores, outcomes = {}, {}
    for language, dataset in task.eval_datasets.items():
        prefix = f"eval_{language}_"
        metrics = trainer.evaluate(eval_dataset={language: dataset})
        scores[language] = {
            key[len(prefix) :]: value
            for key, value in metrics.items()
            if key.startswith(prefix) and key[len(prefix) :] not in _NOT_SCORES
        }
        correct, total = task.last_outcomes
        outcomes[language] = {"correct": correct.tolist(), "total": total.tolist()}
    return scores, outcomes


def _versions() -> dict[str, str]:
    return {"hf_xalign": __version__, "transformers": transformers.__version__, "torch": torch.__version__}


def run_cell(task: ZeroShotTask, name: str, overrides: Mapping[str, Any] | None = None) -> CellResult:
    """Train and evaluate one cell: `task`'s data, its training arguments with `overrides`.

    The cell works in `output_dir/<name>`: the model and `trainer_state.json` are saved there (training goes on
    from the last complete checkpoint there, when a run was interrupted), and
    `cell_result.json` is written last (by the main process) to mark the cell complete. Every
    process must call it.
    """
    base = task.training_args
    # The experiment publishes the cell it chooses, with every cell's results: no cell's trainer pushes.
    args = dataclasses.replace(
        base, output_dir=os.path.join(base.output_dir, name), **{**dict(overrides or {}), "push_to_hub": False}
    )
    set_seed(args.seed)
    started = time.perf_counter()
    trainer = AlignmentTrainer(
        model=task.build_model(),
        args=args,
        train_dataset=task.train_dataset,
        eval_dataset=task.eval_datasets,
        alignment_dataset=task.alignment_dataset if args.alignment_mode != "none" else None,
        processing_class=task.tokenizer,
        data_collator=task.data_collator,
        compute_metrics=task.compute_metrics,
        preprocess_logits_for_metrics=predicted_ids,
    )
    use_console_log(trainer)
    # A run interrupted before its end (same settings: the output-folder rule let it go on) resumes from the
    # cell's last complete checkpoint, if it saved one.
    train_output = trainer.train(resume_from_checkpoint=last_complete_checkpoint(args.output_dir))
    trainer.save_model()
    trained = time.perf_counter()
    scores, outcomes = evaluate_languages(trainer, task)
    seconds = {"train": trained - started, "evaluate": time.perf_counter() - trained}
    result = CellResult(
        name=name,
        task=task.name,
        metric=task.metric,
        source_language=task.source_language,
        scores=scores,
        intervals=score_intervals(outcomes),
        config=resolved_config(task.script_args, args),
        conflict_summary=trainer.conflict_callback.summary if trainer.conflict_callback else None,
        model_path=args.output_dir,
        train_metrics=dict(train_output.metrics),
        seconds=seconds,
        # Every `hub:` source this process read, with the commit it read: the card records both.
        details={**task.details, HUB_COMMITS: dict(resolved_revisions)},
        versions=_versions(),
    )
    trainer.save_state()  # trainer_state.json: log_history with the training logs and eval_<lang>_* scores
    if trainer.is_world_process_zero():
        with open(os.path.join(args.output_dir, OUTCOMES_NAME), "w", encoding="utf-8") as f:
            json.dump(outcomes, f)
        result.save(args.output_dir)
    return result


def score_intervals(outcomes: Mapping[str, Mapping[str, Any]]) -> dict[str, list[float]]:
    """The 95% bootstrap interval of each language's score; none for a language with fewer test examples than a
    bootstrap needs (its score stands alone in the tables, and the console says why)."""
    intervals = {}
    for language, outcome in outcomes.items():
        examples = labelled_examples(outcome["total"])
        if examples < MIN_BOOTSTRAP_EXAMPLES:
            logger.warning(
                f"{language}: {examples} test example(s) with labels: its score has no 95% interval "
                f"(a bootstrap resamples examples and needs {MIN_BOOTSTRAP_EXAMPLES})"
            )
            continue
        intervals[language] = list(score_interval(**outcome))
    return intervals


def add_delta_intervals(results: list[CellResult], reference: str | None) -> None:
    """Give every cell but `reference` the paired 95% interval of its Δ to the reference, per language.

    Both cells were scored on the same test examples, so the bootstrap resamples the same examples
    for both ([`~hf_xalign.analysis.bootstrap.delta_interval`]).
    """
    by_name = {result.name: result for result in results}
    if reference not in by_name:
        return
    reference_outcomes = read_outcomes(Path(by_name[reference].model_path, OUTCOMES_NAME))
    for result in results:
        if result.name == reference:
            continue
        own = read_outcomes(Path(result.model_path, OUTCOMES_NAME))
        result.reference = reference
        result.delta_intervals = {
            language: list(
                delta_interval(
                    own[language]["correct"],
                    own[language]["total"],
                    reference_outcomes[language]["correct"],
                    reference_outcomes[language]["total"],
                )
            )
            for language in own
            if language in reference_outcomes and language in result.intervals
        }
        result.save(result.model_path)


def compare_cells(compare: bool) -> list[tuple[str, dict[str, Any]]]:
    """The grid of a comparison: the configured (aligned) cell, and with `compare` its baseline."""
    cells: list[tuple[str, dict[str, Any]]] = [(ALIGNED, {})]
    if compare:
        cells.append((BASELINE, {"alignment_mode": "none"}))
    return cells
