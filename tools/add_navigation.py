"""Write the previous/next links at the bottom of every chapter, so nobody maintains them by hand."""

import json
import re
from pathlib import Path

MARK = "<!-- navigation -->"


def title(path: Path) -> str:
    first = json.loads(path.read_text())["cells"][0]["source"]
    text = "".join(first) if isinstance(first, list) else first
    return re.sub(r"^#\s*", "", text.splitlines()[0]).strip()


def main() -> None:
    chapters = sorted(Path("notebooks").glob("[0-9][0-9]_*.ipynb"))
    for index, path in enumerate(chapters):
        links = []
        if index > 0:
            links.append(f"← [{title(chapters[index - 1])}]({chapters[index - 1].name})")
        if index + 1 < len(chapters):
            links.append(f"[{title(chapters[index + 1])}]({chapters[index + 1].name}) →")
        cell = {
            "cell_type": "markdown",
            "id": "navigation",
            "metadata": {},
            "source": f"{MARK}\n---\n" + " · ".join(links),
        }
        notebook = json.loads(path.read_text())
        cells = [c for c in notebook["cells"] if MARK not in "".join(c["source"])]
        notebook["cells"] = [*cells, cell]
        path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
    print(f"navigation written for {len(chapters)} chapters")


if __name__ == "__main__":
    main()
