"""A small app with crashes whose call paths the replay tests record with the real sentry-sdk."""
