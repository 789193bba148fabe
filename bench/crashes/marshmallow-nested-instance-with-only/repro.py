"""fields.Nested given a schema *instance* plus `only=` crashed on first use (marshmallow PR #1395)."""

from marshmallow import Schema, fields


class AuthorSchema(Schema):
    name = fields.Str()
    email = fields.Email()


class BookSchema(Schema):
    title = fields.Str()
    author = fields.Nested(AuthorSchema(), only=("name",))


def main() -> None:
    book = {"title": "Dune", "author": {"name": "Frank Herbert", "email": "fh@example.com"}}
    dumped = BookSchema().dump(book)
    assert dumped == {"title": "Dune", "author": {"name": "Frank Herbert"}}, dumped


if __name__ == "__main__":
    main()
