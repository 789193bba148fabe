"""Ledgers: plain objects all the way down, which sentry-sdk by default sends only as reprs
(`<replayapp.ledger.Ledger object at 0x...>`); an app that adds pipeline.sdk_objects sends their state."""


class Entry:
    __slots__ = ("amount", "note")

    def __init__(self, amount, note=""):
        self.amount = amount
        self.note = note


class Account:
    def __init__(self, owner, entries, password=None):
        self.owner = owner
        self.entries = entries
        self.password = password
        self.ledger = None  # the ledger that keeps it: a cycle


class Ledger:
    def __init__(self, account):
        self.account = account
        account.ledger = self

    def average(self):
        entries = self.account.entries
        return sum(entry.amount for entry in entries) / len(entries)
