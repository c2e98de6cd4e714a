"""What every recipe shares: YAML configs, zero-shot evaluation per language, the result table.

A recipe (recipes/pos.py, recipes/xnli.py) tells the story of one experiment: read the
data, build the model, train with and without alignment, evaluate on each language. The
pieces it reuses live here.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from transformers import HfArgumentParser, PrinterCallback, ProgressCallback, Trainer, TrainerCallback

from .conflict import json_safe

ALIGNED, BASELINE = "aligned", "baseline"
RESULTS_JSON, RESULTS_MARKDOWN = "results.json", "results.md"


def _config_path(argv: list[str]) -> str | None:
    """Take the config file out of `argv`: a first positional `*.yaml`, or `--config PATH`."""
    if argv and argv[0].endswith((".yaml", ".yml")):
        return argv.pop(0)
    if "--config" in argv:
        index = argv.index("--config")
        if index + 1 >= len(argv):
            raise ValueError("--config needs a path to a YAML file.")
        path = argv[index + 1]
        del argv[index : index + 2]
        return path
    return None


def config_errors(values: Mapping[str, Any], dataclass_types: Sequence[type], source: str) -> list[str]:
    """Every problem of a config at once: unknown keys (with the closest known names), bad values."""
    known: dict[str, type] = {}
    errors = []
    for cls in dataclass_types:
        for f in dataclasses.fields(cls):
            if f.init and known.setdefault(f.name, cls) is not cls:  # argparse would refuse the second one
                errors.append(f"option {f.name!r} is defined by both {known[f.name].__name__} and {cls.__name__}")
    for key in values:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=3)
            errors.append(
                f"{source}: unknown option {key!r}" + (f" (did you mean: {', '.join(close)}?)" if close else "")
            )
    for cls in dataclass_types:
        own = {k: v for k, v in values.items() if known.get(k) is cls}
        try:
            cls(**own)
        except (TypeError, ValueError) as error:
            errors.append(f"{source}: {cls.__name__}: {error}")
    return errors


def parse_config(dataclass_types: Sequence[type], argv: Sequence[str] | None = None) -> tuple:
    """`script.py [config.yaml | --config config.yaml] [--option value ...]` into dataclass instances.

    The YAML file gives the values; flags on the command line override them (the TRL
    convention). Unknown keys in the file are an error that names them.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    path = _config_path(argv)
    parser = HfArgumentParser(dataclass_types)
    if path is not None:
        with open(path, encoding="utf-8") as f:
            values = yaml.safe_load(f) or {}
        known = {f.name for t in dataclass_types for f in dataclasses.fields(t)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError("\n".join(config_errors({k: values[k] for k in unknown}, dataclass_types, path)))
        parser.set_defaults(**values)
        for action in parser._actions:  # a value from the file satisfies a required option
            if action.dest in values:
                action.required = False
    return parser.parse_args_into_dataclasses(args=argv)


def parse_language_paths(entries: Sequence[str], option: str) -> dict[str, str]:
    """`["tr=path/a.conllu", "fr=path/b"]` into `{"tr": "path/a.conllu", "fr": "path/b"}`."""
    languages: dict[str, str] = {}
    for entry in entries:
        language, sep, path = entry.partition("=")
        if not sep or not language or not path:
            raise ValueError(f"{option}: {entry!r} is not LANG=PATH (e.g. tr=data/tr/test.conllu).")
        if language in languages:
            raise ValueError(f"{option}: language {language!r} is given twice.")
        languages[language] = path
    return languages


class ConsoleLogCallback(TrainerCallback):
    """One short line per log on the console: the losses, λ and the global gradient cosine.

    The full logs (per layer, per loss) still reach `report_to` targets and `state.log_history`;
    the Trainer's own printer would dump all of them as one long dict.
    """

    KEYS = ("loss", "task_loss", "align_loss", "align_lambda", "conflict/cosine", "conflict/norm_ratio")

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs and "loss" in logs:
            shown = "  ".join(f"{key}={logs[key]:.4g}" for key in self.KEYS if key in logs)
            print(f"[{args.output_dir}] step {state.global_step}/{state.max_steps}  {shown}", flush=True)


class _ProgressBarOnly(ProgressCallback):
    """The Trainer's progress bar without its dump of every log dict."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        pass


def use_console_log(trainer: Trainer) -> None:
    """Swap the Trainer's log printing (the long dicts) for [`ConsoleLogCallback`]."""
    trainer.remove_callback(PrinterCallback)
    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(_ProgressBarOnly())
    trainer.add_callback(ConsoleLogCallback())


def evaluate_languages(
    trainer: Trainer,
    eval_sets: Mapping[str, Any],
    score: Callable[[Any, Any], dict[str, float]],
) -> dict[str, dict[str, float]]:
    """Zero-shot evaluation: `score(predictions, label_ids)` for each language's evaluation set.

    Every process takes part in `trainer.predict` (predictions are gathered); all get the scores.
    """
    results = {}
    for language, dataset in eval_sets.items():
        output = trainer.predict(dataset, metric_key_prefix=f"test_{language}")
        results[language] = score(output.predictions, output.label_ids)
    return results


@dataclass
class ZeroShotReport:
    """Per-language scores of one experiment, aligned and (optionally) without alignment.

    Args:
        metric (`str`): the score shown in the table (e.g. `"accuracy"`).
        source_language (`str`): the training language (left out of the zero-shot average).
        runs (`dict[str, dict[str, dict[str, float]]]`): variant (`aligned`, `baseline`) -> language -> scores.
        conflict_summary (`dict`, *optional*): the gradient-conflict summary of the aligned run.
        details (`dict`): anything else worth keeping with the results (model, losses, steps).
    """

    metric: str
    source_language: str
    runs: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    conflict_summary: dict | None = None
    details: dict = field(default_factory=dict)

    @property
    def languages(self) -> list[str]:
        seen: list[str] = []
        for scores in self.runs.values():
            seen += [language for language in scores if language not in seen]
        return seen

    def score(self, variant: str, language: str) -> float:
        return self.runs.get(variant, {}).get(language, {}).get(self.metric, math.nan)

    def average(self, variant: str) -> float:
        """Macro average over the target languages (all but the source language)."""
        values = [self.score(variant, lang) for lang in self.languages if lang != self.source_language]
        values = [v for v in values if not math.isnan(v)]
        return sum(values) / len(values) if values else math.nan

    def to_markdown(self) -> str:
        variants = [v for v in (ALIGNED, BASELINE) if v in self.runs] + [
            v for v in self.runs if v not in (ALIGNED, BASELINE)
        ]
        compare = ALIGNED in self.runs and BASELINE in self.runs
        header = ["language"] + variants + (["Δ (aligned − baseline)"] if compare else [])
        lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]

        def row(label: str, values: list[float]) -> str:
            cells = [f"{v:.4f}" if not math.isnan(v) else "–" for v in values]
            if compare:
                delta = values[0] - values[1]
                cells.append(f"{delta:+.4f}" if not math.isnan(delta) else "–")
            return f"| {label} | " + " | ".join(cells) + " |"

        for language in self.languages:
            label = f"{language} (source)" if language == self.source_language else language
            lines.append(row(label, [self.score(v, language) for v in variants]))
        lines.append(row("**macro avg (targets)**", [self.average(v) for v in variants]))
        return f"{self.metric} per language, trained on {self.source_language} only\n\n" + "\n".join(lines) + "\n"

    def to_dict(self) -> dict:
        return {
            "metric": self.metric,
            "source_language": self.source_language,
            "runs": self.runs,
            "macro_average_targets": {variant: self.average(variant) for variant in self.runs},
            "conflict_summary": self.conflict_summary,
            "details": self.details,
        }

    def save(self, output_dir: str) -> None:
        """Write `results.json` and `results.md` into `output_dir`."""
        os.makedirs(output_dir, exist_ok=True)
        with open(os.path.join(output_dir, RESULTS_JSON), "w", encoding="utf-8") as f:
            json.dump(json_safe(self.to_dict()), f, indent=2)
        with open(os.path.join(output_dir, RESULTS_MARKDOWN), "w", encoding="utf-8") as f:
            f.write(self.to_markdown())
            if self.conflict_summary:
                f.write("\n" + conflict_markdown(self.conflict_summary))


def conflict_markdown(summary: Mapping[str, Any]) -> str:
    """The gradient-conflict summary as a short Markdown section."""

    def number(value: Any) -> str:
        return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"

    lines = [
        "Task vs alignment gradients (aligned run)",
        "",
        f"- measured steps: {summary.get('measured_steps', 0)}",
        f"- mean cosine: {number(summary.get('mean_cosine'))}, median: {number(summary.get('median_cosine'))}",
        f"- steps with a negative cosine: {number(summary.get('negative_cosine_fraction'))}",
        f"- mean ‖align‖ / ‖task‖: {number(summary.get('mean_norm_ratio'))}",
        "",
        "| group | mean cosine | mean ‖align‖/‖task‖ |",
        "|---|---:|---:|",
    ]
    for group, values in summary.get("per_group", {}).items():
        lines.append(f"| {group} | {number(values.get('mean_cosine'))} | {number(values.get('mean_norm_ratio'))} |")
    return "\n".join(lines) + "\n"
