"""Fail when a notebook is committed with outputs or execution counts (they must be stripped)."""

import json
import sys
from pathlib import Path

dirty = [
    str(path)
    for path in sorted(Path("notebooks").glob("*.ipynb"))
    if any(
        cell.get("outputs") or cell.get("execution_count")
        for cell in json.loads(path.read_text())["cells"]
    )
]
if dirty:
    print("Notebooks with outputs (run: make format):", *dirty)
    sys.exit(1)
print(f"{len(list(Path('notebooks').glob('*.ipynb')))} notebooks, no outputs")
