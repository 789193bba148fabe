"""Labels for the share of a prize, padded by the third-party tinyfmt."""

import tinyfmt


def share_label(winners):
    return tinyfmt.pad(str(100 // winners))
