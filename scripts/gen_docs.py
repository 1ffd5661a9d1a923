"""Write the generated pages of the docs (command and configuration references) from the code.

Run after changing the argument parser or releasetui/schema.py: ``python scripts/gen_docs.py``.
"""

from pathlib import Path

from releasetui.arguments import build_parser
from releasetui.docgen import write_docs

if __name__ == "__main__":
    for path in write_docs(build_parser(), Path(__file__).resolve().parent.parent / "docs"):
        print(path)
