"""A `global` statement inside a class body made pyflakes crash."""

import io

from pyflakes.api import check
from pyflakes.reporter import Reporter

SOURCE = """\
counter = 0


class Config:
    global counter
    counter = 1
"""


def main() -> None:
    out, err = io.StringIO(), io.StringIO()
    warnings = check(SOURCE, "example.py", Reporter(out, err))
    # the global is assigned in the class body, so nothing is unused
    assert err.getvalue() == "", err.getvalue()
    assert warnings == 0, out.getvalue()


if __name__ == "__main__":
    main()
