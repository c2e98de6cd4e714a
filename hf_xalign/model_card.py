"""Model cards for aligned checkpoints, written from the run's own files.

A card is rendered with `huggingface_hub.ModelCard.from_template` from the template in
`hf_xalign/templates/aligned_model.md` (shown to users in `model_cards/`) and the files of a model
folder: `alignment_config.json` (how it was aligned), `results.json` (its [`CellResult`] and the
baseline's, per language) and `conflict_summary.json` (task vs alignment gradients). Nothing about a run is written by hand:
a section whose file is absent is left out.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .data.hub import HUB_COMMITS, is_hub_spec, parse_hub_spec
from .files import (
    ADAPTER_CONFIG_NAME,
    ALIGNMENT_CONFIG_NAME,
    CONFLICT_SUMMARY_NAME,
    MODEL_CONFIG_NAME,
    RESULTS_NAME,
    json_safe,
    read_json,
)
from .formatting import gradient_summary_lines, number, with_interval
from .results import CellResult
from .version import __version__

TEMPLATE_NAME = "aligned_model.md"
TAGS = ("cross-lingual-alignment", "hf-xalign")

PAPER_CITATION = """@misc{veitsman2026alignment,
  title  = {Why Better Cross-Lingual Alignment Fails for Better Cross-Lingual Transfer: Case of Encoders},
  author = {Veitsman and Liu and Sch{\\"u}tze},
  year   = {2026}
}"""


@dataclass(frozen=True)
class TaskKind:
    """How a task appears on the Hub and how it loads."""

    pipeline_tag: str
    title: str  # for the model-index and the prose
    load_task: str | None  # `load_aligned(..., task=)`
    auto_class: str


TASK_KINDS = {
    "token-classification": TaskKind(
        "token-classification", "Token classification", "token-classification", "AutoModelForTokenClassification"
    ),
    "sequence-classification": TaskKind(
        "text-classification", "Text classification", "sequence-classification", "AutoModelForSequenceClassification"
    ),
    "encoder": TaskKind("feature-extraction", "Sentence and token representations", None, "AutoModel"),
}
# A recipe's task (`CellResult.task`) and a saved model's architecture name the same kinds.
RECIPE_TASKS = {"pos": "token-classification", "classification": "sequence-classification"}
TASK_TITLES = {"pos": "Part-of-speech tagging", "classification": "Sentence classification"}


def task_kind_of(architectures: Sequence[str]) -> str:
    """`token-classification`, `sequence-classification` or `encoder`, from `config.json`'s architectures."""
    for name in architectures:
        if name.endswith("ForTokenClassification"):
            return "token-classification"
        if name.endswith("ForSequenceClassification"):
            return "sequence-classification"
    return "encoder"


def template_path() -> str:
    """The card template, a file of the package (`hf_xalign/templates/`; `model_cards/` shows users the same)."""
    return str(Path(__file__).resolve().parent / "templates" / TEMPLATE_NAME)


@dataclass
class RunFiles:
    """What a model folder says about its run; `None` where a file is absent."""

    alignment: dict | None = None
    result: CellResult | None = None
    reference: CellResult | None = None
    conflict: dict | None = None
    architectures: list[str] = field(default_factory=list)
    adapter: dict | None = None  # PEFT's adapter_config.json: the folder holds an adapter, not a whole model

    @classmethod
    def read(cls, folder: str) -> RunFiles:
        results = read_json(folder, RESULTS_NAME) or {}
        alignment = read_json(folder, ALIGNMENT_CONFIG_NAME)
        # An adapter folder has no config.json: the adapted model's class is in alignment_config.json.
        model_config = read_json(folder, MODEL_CONFIG_NAME) or (alignment or {}).get("adapter") or {}
        return cls(
            alignment=alignment,
            result=CellResult.from_dict(results["result"]) if results.get("result") else None,
            reference=CellResult.from_dict(results["reference"]) if results.get("reference") else None,
            conflict=read_json(folder, CONFLICT_SUMMARY_NAME),
            architectures=list(model_config.get("architectures") or []),
            adapter=read_json(folder, ADAPTER_CONFIG_NAME),
        )

    @property
    def adapted_model(self) -> dict:
        """The `adapter` entry of `alignment_config.json` (the model an adapter adapts); empty if none."""
        return (self.alignment or {}).get("adapter") or {}

    @property
    def base_model(self) -> str | None:
        """The checkpoint the run started from (for an adapter: the one it adapts), `None` if unknown."""
        base = (self.alignment or {}).get("base_model") or (self.adapter or {}).get("base_model_name_or_path")
        return base or None

    @property
    def task_kind(self) -> str:
        if self.result is not None and self.result.task in RECIPE_TASKS:
            return RECIPE_TASKS[self.result.task]
        return task_kind_of(self.architectures)

    @property
    def aligned(self) -> bool:
        return bool(self.alignment and self.alignment.get("mode") != "none" and self.alignment.get("losses"))

    @property
    def alignment_only(self) -> bool:
        """Aligned on parallel text alone (no task data): an encoder to fine-tune later."""
        return self.aligned and bool(self.alignment.get("alignment_only"))

    @property
    def languages(self) -> list[str]:
        """The run's languages: those it was scored on and those of its parallel text, sorted."""
        languages = set(self.result.scores) if self.result else set()
        for pair in (self.alignment or {}).get("language_pairs", {}):
            languages.update(code for code in pair.split("-") if code != "?")
        return sorted(languages)

    @property
    def hub_datasets(self) -> list[str]:
        """Hub dataset ids among the run's `hub:` sources; local files are named in the prose."""
        details = self.result.details if self.result else {}
        sources = [*details.get("train_sources", []), *details.get("eval_sources", {}).values()]
        sources += details.get("parallel_sources", [])
        return sorted({parse_hub_spec(source).path for source in sources if is_hub_spec(source)})


def write_results_file(folder: str, result: CellResult, reference: CellResult | None = None) -> str:
    """Write `results.json` (this model's cell result and, if compared, the reference cell's) into `folder`."""
    path = os.path.join(folder, RESULTS_NAME)
    content = {"result": result.to_dict(), "reference": reference.to_dict() if reference else None}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(json_safe(content), f, indent=2, ensure_ascii=False)
    return path


def eval_results(run: RunFiles) -> list[EvalResult]:
    """The `model-index` entries: every score with a fractional value (counts stay in the prose), per
    language, for this model and, labelled as such, for the baseline."""
    if run.result is None:
        return []
    kind = TASK_KINDS[run.task_kind]
    title = TASK_TITLES.get(run.result.task, kind.title)
    sources = run.result.details.get("eval_sources", {})
    commits = run.result.details.get(HUB_COMMITS, {})
    entries = []
    for cell, label in ((run.result, ""), (run.reference, " (baseline without alignment)")):
        if cell is None:
            continue
        for language, scores in cell.scores.items():
            for metric, value in scores.items():
                if not isinstance(value, float) or math.isnan(value):
                    continue
                zero_shot = "source language" if language == cell.source_language else "zero-shot"
                entries.append(
                    EvalResult(
                        task_type=kind.pipeline_tag,
                        task_name=title,
                        dataset_name=f"{language} ({zero_shot})",
                        metric_type=metric,
                        metric_name=f"{metric}{label}",
                        metric_value=value,
                        **_dataset_fields(sources.get(language, language), language, commits),
                    )
                )
    return entries


def _dataset_fields(source: str, language: str, commits: dict[str, str]) -> dict[str, Any]:
    """`model-index` fields of an evaluation source, so that a result says what data it came from: a `hub:` source's
    id, config, split and revision. The revision is the commit the run read (`commits`, by spec) where it was
    recorded, with the revision as the config wrote it (`main` where it named none) in `args`, as `load_dataset`
    was given it; without a recorded commit, the revision as written. A file: its path, the language as config."""
    if not is_hub_spec(source):
        return {"dataset_type": source, "dataset_config": language}
    hub_source = parse_hub_spec(source)
    written = hub_source.revision or "main"
    commit = commits.get(source)
    return {
        "dataset_type": hub_source.path,
        "dataset_config": hub_source.config or language,
        "dataset_split": hub_source.split,
        "dataset_revision": commit or written,
        "dataset_args": {"revision": written} if commit and commit != written else None,
    }


def _alignment_lines(alignment: dict) -> list[str]:
    if alignment.get("mode") == "none" or not alignment.get("losses"):
        return ["Not aligned: task fine-tuning alone (`alignment_mode: none`), the baseline of a comparison."]
    losses = ", ".join(
        f"`{loss['name']}` (weight {loss['weight']:g}"
        + "".join(f", {key} {value}" for key, value in loss.get("config", {}).items())
        + ")"
        for loss in alignment["losses"]
    )
    pairs = alignment.get("language_pairs", {})
    pair_text = ", ".join(f"{pair} {count:,}" for pair, count in pairs.items())
    modes = {
        "joint": "joint: task loss + λ · alignment loss at every step",
        "sequential": f"sequential: {alignment.get('alignment_steps', 0)} alignment-only steps, then the task",
        "alternate": "alternate: the alignment loss is added on every k-th step",
    }
    mode = modes.get(alignment.get("mode"), alignment.get("mode"))
    if alignment.get("alignment_only"):
        mode = "alignment only: no task loss, no task head"
    lines = [
        f"Losses: {losses}.",
        f"λ = {alignment.get('lambda'):g} ({alignment.get('lambda_schedule')} schedule); mode {mode}.",
        f"Layer {alignment.get('layer')} (hidden_states[{alignment.get('layer')}], 0 = embedding output), "
        f"{alignment.get('pooling')} pooling.",
        f"Parallel data: {alignment.get('alignment_pairs', 0):,} pairs"
        + (f" ({pair_text})" if pair_text else "")
        + f", {alignment.get('alignment_batch_size')} pairs per step.",
        f"{alignment.get('steps')} optimizer steps, seed {alignment.get('seed')}; gradient combination "
        f"`{alignment.get('gradient_combination')}`.",
    ]
    if alignment.get("objective"):
        lines.insert(0, f"Objective: `{alignment['objective']}` (a preset of `hf_xalign.experiment.OBJECTIVES`).")
    if alignment.get("base_model"):
        lines.insert(0, f"Base model: `{alignment['base_model']}`.")
    return lines


def _score_table(run: RunFiles) -> str:
    result, reference = run.result, run.reference
    header = ["language", "this model"] + (["baseline (no alignment)", "Δ"] if reference else [])
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    languages = [(language, result.score(language), language) for language in result.languages]
    rows = [*languages, ("**macro avg (targets)**", result.target_average(), None)]
    for label, value, language in rows:
        if language == result.source_language:
            label = f"{language} (source)"
        cells = [with_interval(value, result.intervals.get(language), interval_digits=3)]
        if reference:
            baseline = reference.score(language) if language else reference.target_average()
            cells += [
                with_interval(baseline, reference.intervals.get(language), interval_digits=3),
                with_interval(value - baseline, result.delta_intervals.get(language), signed=True, interval_digits=3),
            ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    note = ""
    if result.intervals:
        note = " Brackets: 95% bootstrap interval over the test examples" + (" (Δ: paired)." if reference else ".")
    return f"{result.metric} per language.{note}\n\n" + "\n".join(lines)


def adapter_description(adapter: dict, trained_in_full: Sequence[str] | None = None) -> str:
    """What an adapter is, from its `adapter_config.json`: `LoRA adapter (r 8; alpha 16; target modules ...)`.

    Args:
        adapter (`dict`): the adapter's `adapter_config.json`.
        trained_in_full (`Sequence[str]`, *optional*): the modules it holds a full copy of, as the trainer found
            them (`alignment_config.json`); by default the config's `modules_to_save`.
    """
    name = {"LORA": "LoRA"}.get(adapter.get("peft_type"), adapter.get("peft_type") or "PEFT")
    details = [f"{key} {adapter[field]}" for key, field in (("r", "r"), ("alpha", "lora_alpha")) if field in adapter]
    targets = adapter.get("target_modules")
    if targets:
        targets = [targets] if isinstance(targets, str) else sorted(targets)  # a regex, or a list of names
        details.append("target modules " + ", ".join(f"`{target}`" for target in targets))
    saved = (adapter.get("modules_to_save") or []) if trained_in_full is None else trained_in_full
    saved = list(dict.fromkeys(saved))  # PEFT may list a name twice
    if saved:
        details.append("trained in full: " + ", ".join(f"`{module}`" for module in saved))
    return f"{name} adapter ({'; '.join(details)})" if details else f"{name} adapter"


def _summary(run: RunFiles) -> str:
    kind = TASK_KINDS[run.task_kind]
    base = run.base_model
    start = f"`{base}`" if base else "A multilingual encoder"
    adapter = ""
    if run.adapter is not None:
        what = adapter_description(run.adapter, run.adapted_model.get("trained_in_full"))
        adapter = (
            f" This repository holds a {what} on {start if base else 'that encoder'}, not the whole model: "
            "the base weights load from there (see Usage)."
        )
    if run.result is None and run.alignment_only:
        alignment = run.alignment
        objective = alignment.get("objective") or " + ".join(loss["name"] for loss in alignment["losses"])
        pairs = ", ".join(alignment.get("language_pairs", {})) or "parallel text"
        return (
            f"An alignment-only checkpoint: {start} aligned with hf-xalign on {pairs} with the `{objective}` "
            f"objective for {alignment.get('steps')} steps, with no task training. Fine-tune it as you would its "
            "base model: a task model loads it as its encoder, with a fresh head." + adapter
        )
    if run.result is None:
        task = "aligned on parallel text" if run.aligned else "fine-tuned"
        return f"{start}, {task} with hf-xalign ({kind.title.lower()}).{adapter}"
    task = TASK_TITLES.get(run.result.task, kind.title)
    how = "with cross-lingual alignment on parallel text" if run.aligned else "without alignment"
    return (
        f"{start} fine-tuned for {task.lower()} on {run.result.source_language} only, {how}, and evaluated "
        f"zero-shot on {', '.join(run.result.target_languages) or 'no other language'}. Trained with hf-xalign."
        + adapter
    )


def build_model_card(
    folder: str,
    repo_id: str | None = None,
    *,
    model_name: str | None = None,
    license: str | None = None,
    tags: Iterable[str] = (),
) -> ModelCard:
    """The card of the model in `folder`, from its files; `repo_id` is what the usage snippet loads.

    Args:
        folder (`str`): a model folder written by `AlignmentTrainer` (and, for the scores, a recipe).
        repo_id (`str`, *optional*): the Hub repository; defaults to the folder's name.
        model_name (`str`, *optional*): the card's title and `model-index` name; defaults to the repo's name.
        license (`str`, *optional*): the `license` metadata.
        tags (`Iterable[str]`, *optional*): tags besides `cross-lingual-alignment` and `hf-xalign`.
    """
    run = RunFiles.read(folder)
    repo_id = repo_id or Path(folder).resolve().name
    model_name = model_name or repo_id.split("/")[-1]
    kind = TASK_KINDS[run.task_kind]
    base_model = run.base_model
    # An adapter is a PEFT repository on the Hub (`library_name: peft`), tagged with its method (`lora`).
    adapter_tags = [str(run.adapter.get("peft_type", "")).lower()] if run.adapter else []
    card_data = ModelCardData(
        language=run.languages or None,
        license=license,
        library_name="peft" if run.adapter else "transformers",
        pipeline_tag=kind.pipeline_tag,
        tags=list(dict.fromkeys([*TAGS, *filter(None, adapter_tags), *tags])),
        # A local folder is not a Hub id: only an id-shaped name goes into the metadata.
        base_model=base_model
        if base_model and not os.path.isabs(base_model) and not base_model.startswith(".")
        else None,
        datasets=run.hub_datasets or None,
        model_name=model_name,
        eval_results=eval_results(run) or None,
    )
    result = run.result
    losses = (run.alignment or {}).get("losses", [])
    citations = list(dict.fromkeys(loss["citation"] for loss in losses if loss.get("citation")))
    baseline_note = None
    if run.reference is not None:
        baseline_note = (
            f"Δ is this model minus the same fine-tuning without alignment. Read it as an effect on transfer only "
            f"where the baseline has learned the task: its source-language {result.metric} is "
            f"{number(run.reference.score(result.source_language))}."
        )
    return ModelCard.from_template(
        card_data,
        template_path=template_path(),
        version=__version__,
        model_name=model_name,
        repo_id=repo_id,
        summary=_summary(run),
        alignment_lines=_alignment_lines(run.alignment) if run.alignment else [],
        score_intro=(f"Trained on {result.source_language}; every other language is zero-shot." if result else ""),
        score_table=_score_table(run) if result else "",
        baseline_note=baseline_note,
        conflict_lines=gradient_summary_lines(run.conflict) if run.conflict else [],
        task_argument=kind.load_task,
        auto_class=kind.auto_class,
        adapter_base=(base_model or "<base model>") if run.adapter else None,
        num_labels=len(run.adapted_model.get("id2label") or {}),
        paper_citation=PAPER_CITATION,
        loss_citations=citations,
    )
