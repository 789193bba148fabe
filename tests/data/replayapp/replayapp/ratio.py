"""Ratios with an off-by-one adjustment applied to the divisor."""


def ratio(a, b):
    b = b - 1
    return a / b


def unit_ratio():
    return ratio(3, 1)
