"""Run the Python blocks of one documentation page in order, in one namespace, as a reader would paste them.

    python tests/_doc_page_runner.py BLOCKS.json

BLOCKS.json: `[{"page": "docs/x.md", "line": 12, "code": "..."}]`. Line numbers in a traceback are the page's.
A failing block prints `PAGE:LINE: this block failed` and its traceback; exit status 1.
"""

from __future__ import annotations

import json
import sys
import traceback


def main(blocks_file: str) -> int:
    with open(blocks_file, encoding="utf-8") as f:
        blocks = json.load(f)
    namespace = {"__name__": "__main__"}
    for block in blocks:
        # Blank lines before the code keep the page's line numbers in tracebacks.
        source = "\n" * (block["line"] - 1) + block["code"]
        try:
            exec(compile(source, block["page"], "exec"), namespace)
        except Exception:
            print(f"{block['page']}:{block['line']}: this block failed", file=sys.stderr)
            traceback.print_exc()
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
