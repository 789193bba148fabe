"""pyflakes must report on any valid module; `print += 1` made the checker crash."""

import io

from pyflakes.api import check
from pyflakes.reporter import Reporter


def main() -> None:
    out, err = io.StringIO(), io.StringIO()
    warnings = check("print += 1\n", "example.py", Reporter(out, err))
    # valid (if odd) code: no syntax error and no crash, just a normal run
    assert err.getvalue() == "", err.getvalue()
    assert warnings == 0, out.getvalue()


if __name__ == "__main__":
    main()
