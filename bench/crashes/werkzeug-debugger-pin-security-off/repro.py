"""Wrapping an app in the debugger with the PIN check turned off crashed at start-up."""

from werkzeug.debug import DebuggedApplication


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def main() -> None:
    debugged = DebuggedApplication(app, evalex=True, pin_security=False)
    # with pin security off there is no PIN to show or check
    assert debugged.pin is None
    assert debugged.app is app


if __name__ == "__main__":
    main()
