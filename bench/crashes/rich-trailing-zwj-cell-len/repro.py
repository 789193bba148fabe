"""Measuring text that ends with a zero width joiner (a cut-off emoji sequence) crashed Rich."""

from rich.text import Text


def main() -> None:
    # a truncated family emoji: WOMAN + ZERO WIDTH JOINER with nothing after it
    label = Text("Reviewer: \U0001f469\u200d")
    width = label.cell_len
    assert width == 12, width  # 10 narrow cells + one wide emoji; the joiner takes none


if __name__ == "__main__":
    main()
