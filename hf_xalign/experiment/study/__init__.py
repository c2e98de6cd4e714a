"""The study: the paper's grid of cells, run and reported as one.

- `spec`: the study's YAML, its cells and its folder layout ([`~spec.expand_grid`]).
- `checks`: every cell's inputs checked before any training.
- `runner`, `executor`: the study's guarantees (resume, each alignment once, a failed cell stops nothing) above
  an executor that runs a cell (in this process, or one torchrun launch per cell).
- `inputs`, `stats`, `sections`, `findings`, `report`: the study report, from the finished cells' folders; they
  read each cell as the run report reads a run (`hf_xalign.analysis.report`).
"""
