"""Ratings: the mean rating of a product, rounded for the product page."""


def average(values):
    return sum(values) / len(values)


def summary(ratings):
    return {"mean": round(average(ratings), 2), "count": len(ratings)}
