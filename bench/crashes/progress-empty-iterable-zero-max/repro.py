"""Wrapping an empty batch in a progress Bar divided by its zero `max` (verigak/progress #70, PR #79)."""

import io

from progress.bar import Bar


def main() -> None:
    out = io.StringIO()
    jobs: list[str] = []  # nothing to process this run
    done = [job for job in Bar("Processing", file=out, check_tty=False).iter(jobs)]
    assert done == []
    # the bar was drawn at 0% and finished instead of crashing
    assert "Processing |" in out.getvalue(), repr(out.getvalue())
    assert "| 0/0\n" in out.getvalue(), repr(out.getvalue())


if __name__ == "__main__":
    main()
