"""Flattening a form whose first widget is a signature field raised UnboundLocalError (pypdf #3634)."""

import io

from pypdf import PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    FloatObject,
    NameObject,
    TextStringObject,
)


def widget(name: str, field_type: str, bottom: float) -> DictionaryObject:
    """A merged field/widget annotation dictionary, as form designers write them."""
    return DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Annot"),
            NameObject("/Subtype"): NameObject("/Widget"),
            NameObject("/FT"): NameObject(field_type),
            NameObject("/T"): TextStringObject(name),
            NameObject("/Rect"): ArrayObject(
                [FloatObject(72), FloatObject(bottom), FloatObject(300), FloatObject(bottom + 24)]
            ),
        }
    )


def build_form() -> PdfWriter:
    """A one-page PDF form with an (unsigned) signature field followed by a text field."""
    writer = PdfWriter()
    writer.add_blank_page(width=612, height=792)
    signature = writer.add_annotation(0, widget("Signature1", "/Sig", 100))
    name = writer.add_annotation(0, widget("Name", "/Tx", 700))
    writer.root_object[NameObject("/AcroForm")] = DictionaryObject(
        {NameObject("/Fields"): ArrayObject([signature.indirect_reference, name.indirect_reference])}
    )
    return writer


def main() -> None:
    writer = build_form()
    writer.update_page_form_field_values(
        writer.pages[0], {"Signature1": None, "Name": "Ada Lovelace"}, flatten=True
    )
    out = io.BytesIO()
    writer.write(out)
    fields = PdfReader(io.BytesIO(out.getvalue())).get_fields()
    assert fields is not None and fields["Name"].get("/V") == "Ada Lovelace", fields


if __name__ == "__main__":
    main()
