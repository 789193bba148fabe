"""POSIX-style `wcswidth(s, n)` with n larger than the string raised IndexError."""

from wcwidth import wcswidth


def main() -> None:
    # POSIX wcswidth() measures at most n characters; n may exceed the length
    width = wcswidth("\u30b3\u30f3\u30d4\u30e5\u30fc\u30bf", n=80)
    assert width == 12, width  # six wide katakana, two cells each
    assert wcswidth("hello", n=3) == 3


if __name__ == "__main__":
    main()
