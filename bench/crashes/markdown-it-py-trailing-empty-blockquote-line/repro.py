"""Rendering a document whose last line is an empty blockquote marker (`>`) raised IndexError."""

from markdown_it import MarkdownIt


def main() -> None:
    md = MarkdownIt("commonmark")
    html = md.render("> Quoted advice.\n>")
    assert html == "<blockquote>\n<p>Quoted advice.</p>\n</blockquote>\n", repr(html)


if __name__ == "__main__":
    main()
