"""Meters: a plain class whose instances Sentry can only show as `<Meter object at 0x...>`."""


class Meter:
    def __init__(self, readings):
        self.readings = readings

    def mean(self):
        return sum(self.readings) / len(self.readings)


def check(readings):
    return Meter(readings).mean()
