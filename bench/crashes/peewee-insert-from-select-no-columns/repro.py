"""`Table.insert(select_query)` without an explicit column list crashed while rendering SQL."""

from peewee import SqliteDatabase, Table


def main() -> None:
    db = SqliteDatabase(":memory:")
    db.execute_sql("CREATE TABLE archive (id INTEGER, name TEXT)")
    db.execute_sql("CREATE TABLE users (id INTEGER, name TEXT)")
    db.execute_sql("INSERT INTO users VALUES (1, 'ada'), (2, 'bob')")
    users = Table("users").bind(db)
    archive = Table("archive").bind(db)

    # copy every row: INSERT INTO "archive" SELECT ... FROM "users", no column list
    archive.insert(users.select(users.c.id, users.c.name)).execute()

    rows = db.execute_sql("SELECT id, name FROM archive ORDER BY id").fetchall()
    assert rows == [(1, "ada"), (2, "bob")], rows


if __name__ == "__main__":
    main()
