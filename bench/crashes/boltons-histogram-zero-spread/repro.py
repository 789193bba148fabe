"""Data whose middle half is one repeated value still has a histogram: one bin holding everything."""

from boltons.statsutils import Stats

counts = Stats([1, 2, 2, 2, 2, 2, 2, 9]).get_histogram_counts()
assert counts == [(1.0, 8)], counts
