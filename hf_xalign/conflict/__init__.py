"""Task vs alignment gradients: measured from two backward passes and one buffer.

Per optimizer step the trainer runs the task backward and then one backward per alignment
group. The total gradient `G` accumulates in `.grad` as usual; a parameter-sized buffer
`T` collects the task part (`T -= grad` before the task backward, `T += grad` after), so
at the optimizer step the task gradient is `T` and the alignment gradient is `A = G - T`,
across any number of accumulation micro-steps. Alignment groups are the losses that share
a forward (one backward for all of them) and each loss with a forward of its own (MLM,
TLM); every group but the last gets a buffer of its own, the last is `A` minus the others.

Statistics are partial sums (`T·A`, `|T|²`, `|A|²` per parameter group, in float64) in one
small tensor. Under DDP they are by default those of the step's averaged gradients (the
trainer averages `T` too on measured steps), or with `conflict_statistic="pooled"` each
process's own sums added up. With fp16 loss scaling the values are unscaled before they are
multiplied (the sums of the unscaled gradients), so a step is recorded as skipped exactly when a
gradient is not finite, which is when `GradScaler` skips the optimizer step; a skipped step is
left out of every mean. The
groups are named by [`parameter_group`]: `layer.<k>` follows the layer numbering of
[`hf_xalign.layers`], so `layer.k` holds the parameters that produce `hidden_states[k]`.

`GradientConflictCallback` writes each measurement to `conflict.jsonl` and a summary at
the end of training; the trainer merges the values into its logs.

One module per job: `measurement` (a step's statistics, the parameter groups, means and summary),
`splitter` (the buffers and the partial sums), `callback` (the measurement log and its summary on disk).
"""

from .callback import CONFLICT_LOG_NAME, CONFLICT_SUMMARY_NAME, GradientConflictCallback
from .measurement import ALIGN, TASK, ConflictMeasurement, json_safe, mean_logs, parameter_group, summarize
from .splitter import GradientSplitter

__all__ = [
    "ALIGN",
    "CONFLICT_LOG_NAME",
    "CONFLICT_SUMMARY_NAME",
    "TASK",
    "ConflictMeasurement",
    "GradientConflictCallback",
    "GradientSplitter",
    "json_safe",
    "mean_logs",
    "parameter_group",
    "summarize",
]
