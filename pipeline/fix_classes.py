"""The fix-class taxonomy: what kind of fix an issue calls for, named from its escaping exception,
that exception's message and the code at the crash site.

The classes are the units reviewers and budgets reason about (acceptance per class, a fixability
prior per class in pipeline/triage.py). They never choose a fixer: the templates look at the
exception itself. `external` is the one class that is skipped outright: a timeout, a refused
connection or an OS error is recorded, but there is nothing in the code to patch.
"""

from __future__ import annotations

import enum
import re

from pipeline.records import ErrorEvent, ExceptionInfo


class FixClass(enum.StrEnum):
    NONE_ATTRIBUTE = "none-attribute"  # 'NoneType' object has no attribute 'x'
    NONE_SUBSCRIPT = "none-subscript"  # 'NoneType' object is not subscriptable
    NONE_CALL = "none-call"  # 'NoneType' object is not callable
    NONE_ITERABLE = "none-iterable"  # 'NoneType' object is not iterable, cannot unpack NoneType
    NONE_OPERAND = "none-operand"  # None in arithmetic, a comparison, a concatenation or len()
    MISSING_KEY = "missing-key"  # KeyError from a lookup
    INDEX_RANGE = "index-range"  # IndexError: ... index out of range, pop from empty list
    ZERO_DIVISION = "zero-division"
    PARSE_VALUE = "parse-value"  # int("x"), float("x"), json.loads, strptime, Decimal("x")
    UNBOUND_LOCAL = "unbound-local"  # a local read before any assignment on this path
    EXHAUSTED_ITERATOR = "exhausted-iterator"  # StopIteration from next() on an empty iterator
    TYPE_MISMATCH = "type-mismatch"  # unsupported operand, can only concatenate, not subscriptable
    WRONG_ARGUMENTS = "wrong-arguments"  # missing/unexpected arguments in a call
    MISSING_ATTRIBUTE = "missing-attribute"  # 'Order' object has no attribute 'nme'
    UNDEFINED_NAME = "undefined-name"  # NameError
    RECURSION = "recursion"
    IMPORT_ERROR = "import-error"
    ENCODING = "encoding"  # UnicodeDecodeError, UnicodeEncodeError
    OVERFLOW = "overflow"
    ASSERTION = "assertion"
    VALUE_ERROR = "value-error"  # any other ValueError
    TYPE_ERROR = "type-error"  # any other TypeError
    RAISED = "raised"  # the application raised it on purpose: `raise X(...)` at the crash site
    EXTERNAL = "external"  # timeouts, connection and OS errors: recorded, never attempted
    MESSAGE = "message"  # a logged error with no exception
    OTHER = "other"


_NONE = "'NoneType' object"
_NONE_PHRASES: tuple[tuple[str, tuple[str, ...], FixClass], ...] = (
    ("AttributeError", (f"{_NONE} has no attribute",), FixClass.NONE_ATTRIBUTE),
    ("TypeError", (f"{_NONE} is not subscriptable",), FixClass.NONE_SUBSCRIPT),
    ("TypeError", (f"{_NONE} is not callable",), FixClass.NONE_CALL),
    (
        "TypeError",
        (f"{_NONE} is not iterable", "argument of type 'NoneType' is not iterable",
         "cannot unpack non-iterable NoneType object"),
        FixClass.NONE_ITERABLE,
    ),
)
_NONE_OPERAND = re.compile(
    r"unsupported operand type\(s\) for [^:]+: (?:'NoneType' and|'[\w.]+' and 'NoneType')"
    r"|not supported between instances of (?:'NoneType' and|'[\w.]+' and 'NoneType')"
    r"|can only concatenate \w+ \(not \"NoneType\"\)|object of type 'NoneType' has no len\(\)"
    r"|bad operand type for unary \S+: 'NoneType'"
)
_TYPE_MISMATCH = re.compile(
    r"unsupported operand type|can only concatenate|not supported between instances of|bad operand type"
    r"|must be (?:str|int|real number|a number|bytes)|expected str, bytes|object is not (?:subscriptable|"
    r"callable|iterable)|has no len\(\)|unhashable type|can't multiply sequence|object cannot be interpreted"
)
_WRONG_ARGUMENTS = re.compile(
    r"required (?:positional|keyword-only) argument|takes \d+ positional arguments? but"
    r"|got an unexpected keyword argument|got multiple values for argument|takes no arguments"
)
_PARSE_MESSAGE = re.compile(
    r"invalid literal for|could not convert string|does not match format|unconverted data remains"
    r"|invalid isoformat|Expecting (?:value|property name)|Unterminated string|Extra data"
    r"|badly formed hexadecimal UUID|Invalid \w+ format",
    re.IGNORECASE,
)
_PARSE_CALL = re.compile(r"\b(?:int|float|Decimal|complex|UUID|strptime|fromisoformat|loads|literal_eval)\(")
_PARSE_TYPES = frozenset({"JSONDecodeError", "InvalidOperation", "ConversionSyntax", "ParserError"})

_EXTERNAL_TYPES = frozenset({
    "TimeoutError", "timeout", "ConnectionError", "ConnectionRefusedError", "ConnectionResetError",
    "ConnectionAbortedError", "BrokenPipeError", "OSError", "IOError", "EnvironmentError",
    "FileNotFoundError", "FileExistsError", "PermissionError", "IsADirectoryError", "NotADirectoryError",
    "InterruptedError", "BlockingIOError", "ChildProcessError", "ProcessLookupError", "gaierror", "herror",
    "SSLError", "SSLEOFError", "SSLZeroReturnError", "SSLCertVerificationError", "CertificateError",
    "MemoryError", "IncompleteRead", "RemoteDisconnected", "URLError", "HTTPError", "CancelledError",
})
_EXTERNAL_NAME = re.compile(
    r"(?:Timeout|TimedOut|TimeoutError|TimeoutException|ConnectError|ConnectionError|ConnectTimeout"
    r"|NetworkError|ServiceUnavailable|Unavailable|BusyLoadingError|MaxRetryError"
    r"|NewConnectionError|EndpointConnectionError|ServerDisconnectedError|ClientConnectorError"
    r"|RemoteProtocolError|TooManyRedirects)$"
)
_EXTERNAL_MODULES = re.compile(
    r"^(?:socket|ssl|http\.client|urllib\.error|urllib3(?:\.|$)|requests(?:\.|$)|httpx(?:\.|$)|httpcore"
    r"|aiohttp(?:\.|$)|smtplib|ftplib|paramiko|botocore(?:\.|$)|grpc)"
)
_EXTERNAL_TEXT = re.compile(
    r"timed? ?out|timeout|connection (?:refused|reset|aborted|closed)|could not connect|unreachable"
    r"|name or service not known|temporary failure in name resolution|broken pipe|no space left"
    r"|too many open files|service unavailable|\[Errno \d+\]",
    re.IGNORECASE,
)
# A database driver's OperationalError is a lost or refused connection; sqlite3's is usually a bug.
_EXTERNAL_QUALIFIED = frozenset({
    "psycopg.OperationalError", "psycopg2.OperationalError", "sqlalchemy.exc.OperationalError",
    "pymysql.err.OperationalError", "MySQLdb.OperationalError",
})
_GENERIC = frozenset({"Exception", "RuntimeError", "Error"})


def classify(event: ErrorEvent) -> FixClass:
    """The fix class of an event: the escaping exception, its message and its crash-site line."""
    exc = event.primary
    if exc is None:
        text = event.message_template or event.message or ""
        return FixClass.EXTERNAL if _EXTERNAL_TEXT.search(text) else FixClass.MESSAGE
    line = _crash_line(exc)
    own = _classify_one(exc, line)
    if own is FixClass.RAISED and any(is_external(e) for e in event.exceptions[:-1]):
        return FixClass.EXTERNAL  # a wrapper around a timeout is still a timeout
    return own


def is_external(exc: ExceptionInfo) -> bool:
    if exc.type in _EXTERNAL_TYPES or _EXTERNAL_NAME.search(exc.type) or exc.qualified_type in _EXTERNAL_QUALIFIED:
        return True
    if exc.module and _EXTERNAL_MODULES.match(exc.module):
        return True
    return exc.type in _GENERIC and bool(_EXTERNAL_TEXT.search(exc.value))


def _crash_line(exc: ExceptionInfo) -> str:
    in_app = [f for f in exc.frames if f.in_app]
    frames = in_app or list(exc.frames)
    return (frames[-1].context_line or "").strip() if frames else ""


def _classify_one(exc: ExceptionInfo, line: str) -> FixClass:
    if is_external(exc):
        return FixClass.EXTERNAL
    for exc_type, phrases, name in _NONE_PHRASES:
        if exc.type == exc_type and any(phrase in exc.value for phrase in phrases):
            return name
    if exc.type == "TypeError" and _NONE_OPERAND.search(exc.value):
        return FixClass.NONE_OPERAND
    by_type = _by_type(exc)
    if by_type is not None:
        return by_type
    if line.startswith("raise "):
        return FixClass.RAISED
    return _by_message(exc, line)


def _by_type(exc: ExceptionInfo) -> FixClass | None:
    """Classes that the type alone decides, whoever raised the exception."""
    if exc.type == "UnboundLocalError" or (
        exc.type == "NameError" and "cannot access local variable" in exc.value
    ):
        return FixClass.UNBOUND_LOCAL
    if exc.type in ("StopIteration", "StopAsyncIteration") or "raised StopIteration" in exc.value:
        return FixClass.EXHAUSTED_ITERATOR
    simple = {
        "RecursionError": FixClass.RECURSION, "ImportError": FixClass.IMPORT_ERROR,
        "ModuleNotFoundError": FixClass.IMPORT_ERROR,
    }
    return simple.get(exc.type)


def _by_message(exc: ExceptionInfo, line: str) -> FixClass:
    name = exc.type
    if name == "KeyError":
        return FixClass.MISSING_KEY
    if name == "IndexError":
        return FixClass.INDEX_RANGE
    if name in ("ZeroDivisionError", "DivisionByZero"):
        return FixClass.ZERO_DIVISION
    if name in _PARSE_TYPES or (name == "ValueError" and (_PARSE_MESSAGE.search(exc.value) or _PARSE_CALL.search(line))):
        return FixClass.PARSE_VALUE
    if name == "TypeError":
        if _WRONG_ARGUMENTS.search(exc.value):
            return FixClass.WRONG_ARGUMENTS
        return FixClass.TYPE_MISMATCH if _TYPE_MISMATCH.search(exc.value) else FixClass.TYPE_ERROR
    simple = {
        "ValueError": FixClass.VALUE_ERROR, "AttributeError": FixClass.MISSING_ATTRIBUTE,
        "NameError": FixClass.UNDEFINED_NAME, "UnicodeDecodeError": FixClass.ENCODING,
        "UnicodeEncodeError": FixClass.ENCODING, "UnicodeError": FixClass.ENCODING,
        "OverflowError": FixClass.OVERFLOW, "AssertionError": FixClass.ASSERTION,
    }
    return simple.get(name, FixClass.OTHER)
