"""Greetings: the first word of a name, capitalised."""


def first_word(text):
    return text.split()[0]


def greet(name):
    return "Hello, " + first_word(name).capitalize() + "!"
