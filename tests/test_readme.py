"""The README's Python snippets run, in order, in one namespace: the tour stays true."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def python_blocks(text):
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_readme_python_snippets_run():
    blocks = python_blocks(README.read_text(encoding="utf-8"))
    assert blocks, "the README should hold runnable ```python snippets"
    namespace = {}
    for number, block in enumerate(blocks, start=1):
        exec(compile(block, f"README.md python block {number}", "exec"), namespace)
