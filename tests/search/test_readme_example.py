"""The README's search example runs and does what it says."""

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_search_example_runs():
    text = README.read_text()
    section = text[text.index("\n## Search\n") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    assert out.getvalue().strip() == "{'op0': 'conv5', 'op1': 'pool', 'width': 64}"
