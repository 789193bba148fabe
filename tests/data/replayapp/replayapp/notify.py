"""Notifications: one message per batch, split over its recipients' share."""


def share(email, batches):
    return 100 // batches


def notify_all():
    return share("jane.doe@example.com", 0)
