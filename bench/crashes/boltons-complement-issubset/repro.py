"""Everything but {1, 2} is a subset of everything but {1}."""

from boltons.setutils import complement

assert complement({1, 2}).issubset(complement({1})) is True
assert complement({1}).issubset(complement({1, 2})) is False
