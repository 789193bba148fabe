"""Copying a page out of a PDF whose first bytes are not UTF-8 crashed in PdfReader.pdf_header.

Some generators write a few junk bytes before the "%PDF-" marker; viewers (and pypdf's own
non-strict reader) open such files, but PdfWriter.add_page() reads the source's pdf_header to
carry the PDF version over (pypdf #1758, fixed by PR #1768).
"""

import io

from pypdf import PdfReader, PdfWriter


def make_pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def main() -> None:
    damaged = b"\x83\xff\r\n" + make_pdf()  # junk before the %PDF- header
    reader = PdfReader(io.BytesIO(damaged))
    assert len(reader.pages) == 1

    merged = PdfWriter()
    merged.add_page(reader.pages[0])
    out = io.BytesIO()
    merged.write(out)
    assert len(PdfReader(io.BytesIO(out.getvalue())).pages) == 1


if __name__ == "__main__":
    main()
