"""tinyfmt: a stand-in third-party package (the env tests build it into a wheel)."""

__version__ = "1.0"


def pad(text, width=8):
    return text.rjust(width)
