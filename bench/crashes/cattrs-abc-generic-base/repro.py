"""An attrs class that is also an Iterable[int] structures from a dict like any other attrs class."""

import collections.abc

import cattrs
from attrs import define


@define
class Bag(collections.abc.Iterable[int]):
    size: int = 0

    def __iter__(self):
        return iter([self.size])


bag = cattrs.Converter().structure({"size": 3}, Bag)
assert bag == Bag(size=3), bag
