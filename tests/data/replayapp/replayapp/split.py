"""Bills split between guests; the guest count arrives as text from a form."""


def share(total, guests):
    guests = int(guests)
    return total / guests


def split_bill(total, guests):
    return round(share(total, guests), 2)
