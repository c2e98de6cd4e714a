"""The alignment-vs-transfer report of one or more runs (`xalign report`).

- `inputs`: a run folder's files, read and checked.
- `stats`: every number the report writes, computed from them.
- `text`: the sentences that state each finding with its numbers.
- `sections`: the report's sections and their plots.
- `build`: [`~build.build_report`], the report folder written whole, and the `xalign report` command.
"""
