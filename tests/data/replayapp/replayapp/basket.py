"""Baskets: the discount shared out over the items."""

from dataclasses import dataclass, field


@dataclass
class Basket:
    items: list = field(default_factory=list)
    discount: float = 0.0

    def per_item(self):
        return self.discount / len(self.items)


def empty_basket_share(discount):
    return Basket([], discount).per_item()
