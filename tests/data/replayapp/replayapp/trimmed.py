"""Readings: a mean over the readings beyond the first fifteen."""


def mean_beyond(values):
    extra = values[15:]
    return sum(extra) / len(extra)


def fifteen_readings():
    return mean_beyond(list(range(15)))
