"""`GradientConflictCallback`: the measurements of a run written to `conflict.jsonl`, and their summary."""

from __future__ import annotations

import json
import os

from transformers import TrainerCallback

from ..files import CONFLICT_LOG_NAME, CONFLICT_SUMMARY_NAME, json_safe
from .measurement import ConflictMeasurement, summarize


def _read_records(path: str) -> list[dict]:
    """The records of a `conflict.jsonl`; a last line cut short (a run killed while writing it) is dropped."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    records = []
    for number, line in enumerate(lines, start=1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number < len(lines):
                raise ValueError(f"{path}:{number}: not a JSON record; the measurement log is damaged.") from None
    return records


class GradientConflictCallback(TrainerCallback):
    """Writes each gradient measurement to `output_dir/conflict.jsonl` and a summary at the end.

    Added by [`AlignmentTrainer`] when `conflict_every > 0`; the trainer hands it each
    [`ConflictMeasurement`] through [`add`]. Only the main process writes.
    """

    def __init__(self) -> None:
        self.measurements: list[ConflictMeasurement] = []
        self._pending: list[ConflictMeasurement] = []
        self.summary: dict | None = None

    def add(self, measurement: ConflictMeasurement) -> None:
        self.measurements.append(measurement)
        self._pending.append(measurement)

    def on_train_begin(self, args, state, control, **kwargs):
        """Start the log afresh, or on resume keep what was measured before the checkpoint's step."""
        path = os.path.join(args.output_dir, CONFLICT_LOG_NAME)
        kept = []
        if state.global_step > 0 and os.path.isfile(path):
            kept = [record for record in _read_records(path) if record["step"] < state.global_step]
        self.measurements = [ConflictMeasurement.from_record(record) for record in kept]
        self._pending, self.summary = [], None
        if state.is_world_process_zero and os.path.isfile(path):
            with open(path, "w", encoding="utf-8") as f:  # drops a crashed run's steps beyond the checkpoint
                f.writelines(json.dumps(record) + "\n" for record in kept)

    def on_step_end(self, args, state, control, **kwargs):
        if self._pending and state.is_world_process_zero:
            os.makedirs(args.output_dir, exist_ok=True)
            with open(os.path.join(args.output_dir, CONFLICT_LOG_NAME), "a", encoding="utf-8") as f:
                for measurement in self._pending:
                    f.write(json.dumps(measurement.to_record()) + "\n")
        self._pending = []

    def on_train_end(self, args, state, control, **kwargs):
        self.summary = summarize(self.measurements)
        if state.is_world_process_zero and self.measurements:
            os.makedirs(args.output_dir, exist_ok=True)
            with open(os.path.join(args.output_dir, CONFLICT_SUMMARY_NAME), "w", encoding="utf-8") as f:
                json.dump(json_safe(self.summary), f, indent=2)
