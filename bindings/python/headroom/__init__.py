"""headroom -- Python binding of libheadroom (include/headroom/headroom.h).

Standard library only (ctypes). The library is found through $HEADROOM_LIBRARY
(a path), else the system's linker paths (libheadroom.so.1).

    import headroom
    client = headroom.Client("/etc/headroom/headroom.conf")        # offline
    client = headroom.Client(url="http://127.0.0.1:8787")          # attached to a headroomd

    client.session_stats()        # {"session": {...}, "config": {...}, "transforms": {...}}
    client.get_metrics(start_time=datetime.utcnow() - timedelta(hours=1), limit=100)
    client.get_summary()          # {"total_requests", "total_tokens_saved", "avg_compression_ratio", ...}
    client.validate_setup()       # {"valid": bool, "issues": [...]}
    client.compress(messages, model="gpt-4o")
"""

import calendar
import ctypes
import ctypes.util
import datetime as _dt
import json
import os

__all__ = ["Client", "RequestMetrics", "CompressResult", "HeadroomError", "version", "count_tokens"]

API_MAJOR = 1


class HeadroomError(Exception):
    """A libheadroom call failed. `code` is the HEADROOM_E* value (negative);
    `http_status` the status a running daemon answered with (401: it wants
    a token), 0 when none answered."""

    def __init__(self, message, code=-1, http_status=0):
        super().__init__(message)
        self.code = code
        self.http_status = http_status


class _CompressResult(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("body", ctypes.c_void_p),
        ("body_len", ctypes.c_size_t),
        ("tokens_before", ctypes.c_uint64),
        ("tokens_after", ctypes.c_uint64),
        ("tokens_saved", ctypes.c_uint64),
        ("tags", ctypes.POINTER(ctypes.c_char_p)),
        ("n_tags", ctypes.c_size_t),
        ("wire_format", ctypes.c_char_p),
    ]


def _load():
    path = os.environ.get("HEADROOM_LIBRARY") or ctypes.util.find_library("headroom") or "libheadroom.so.1"
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        raise ImportError("cannot load libheadroom (%s): install headroomd's library or set HEADROOM_LIBRARY "
                          "to the path of libheadroom.so.1" % e) from None
    P, S, I, D = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_double
    sig = {
        "hr_version": (S, []),
        "hr_api_version": (ctypes.c_uint, []),
        "hr_last_error": (S, []),
        "hr_last_status": (I, []),
        "hr_free": (None, [P]),
        "hr_client_open": (P, [S]),
        "hr_client_attach": (P, [S, S]),
        "hr_client_set_token": (I, [P, S]),
        "hr_client_close": (None, [P]),
        "hr_compress": (I, [P, S, ctypes.c_size_t, ctypes.POINTER(_CompressResult)]),
        "hr_compress_result_free": (None, [ctypes.POINTER(_CompressResult)]),
        "hr_session_stats": (P, [P]),
        "hr_get_metrics": (P, [P, D, D, ctypes.c_size_t, S]),
        "hr_get_summary": (P, [P, D, D]),
        "hr_get_history": (P, [P, S]),
        "hr_validate_setup": (P, [S]),
        "hr_token_count": (I, [S, S, S, ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t)]),
    }
    # Since API 1.1: bound when the library has it, daemon_setup() says so otherwise.
    optional = {"hr_daemon_setup": (P, [S]), "hr_last_http_status": (I, [])}  # 1.1, 1.2
    sig.update({k: v for k, v in optional.items() if hasattr(lib, k)})
    for name, (res, args) in sig.items():
        f = getattr(lib, name)
        f.restype = res
        f.argtypes = args
    if lib.hr_api_version() >> 16 != API_MAJOR:
        raise ImportError("libheadroom API %d.x found, this binding needs %d.x"
                          % (lib.hr_api_version() >> 16, API_MAJOR))
    return lib


_lib = _load()


def _enc(s):
    return None if s is None else os.fsencode(s) if isinstance(s, os.PathLike) else s.encode()


def _error():
    msg = (_lib.hr_last_error() or b"").decode(errors="replace")
    http = _lib.hr_last_http_status() if hasattr(_lib, "hr_last_http_status") else 0
    return HeadroomError(msg or "libheadroom call failed", _lib.hr_last_status(), http)


def _take_text(ptr):
    """Copy and free a char * returned by the library; raise on NULL."""
    if not ptr:
        raise _error()
    try:
        return ctypes.string_at(ptr).decode()
    finally:
        _lib.hr_free(ptr)


def _seconds(t):
    """datetime (naive = UTC, as datetime.utcnow() gives), date, or Unix seconds -> float; None -> 0."""
    if t is None:
        return 0.0
    if isinstance(t, _dt.datetime):
        if t.tzinfo is None:
            return calendar.timegm(t.timetuple()) + t.microsecond / 1e6
        return t.timestamp()
    if isinstance(t, _dt.date):
        return float(calendar.timegm(t.timetuple()))
    return float(t)


def version():
    """libheadroom's release, e.g. '0.1.0'."""
    return _lib.hr_version().decode()


def count_tokens(text, model=None, encoding=None):
    """Tokens in `text` (str or bytes) as headroomd counts them."""
    data = text.encode() if isinstance(text, str) else bytes(text)
    n = ctypes.c_size_t()
    if _lib.hr_token_count(_enc(model), _enc(encoding), data, len(data), ctypes.byref(n)):
        raise _error()
    return n.value


def daemon_setup(config=None):
    """Where a headroomd started with `config` (None = defaults) and the
    HEADROOM_* variables listens and keeps its state, read as headroomd reads
    them: {"host", "port", "url", "state_root"}. Raises HeadroomError
    ("file:line:col: ...") on a config error."""
    if not hasattr(_lib, "hr_daemon_setup"):
        raise HeadroomError("daemon_setup() needs libheadroom API 1.1 or later; this library is %d.%d"
                            % (_lib.hr_api_version() >> 16, _lib.hr_api_version() & 0xffff))
    return json.loads(_take_text(_lib.hr_daemon_setup(_enc(config))))


class RequestMetrics:
    """One stored request (a row of the metrics database). Attributes are the
    seed's fields: timestamp (naive UTC datetime, like datetime.utcnow()),
    model, provider, tokens_input_before, tokens_input_after, tokens_output,
    cost_usd, savings_usd, transforms, ... (every key of hr_get_metrics)."""

    def __init__(self, row):
        self._row = dict(row)
        for k, v in row.items():
            setattr(self, k, v)
        self.unix_time = row.get("timestamp")
        self.timestamp = _dt.datetime(1970, 1, 1) + _dt.timedelta(seconds=row.get("timestamp") or 0)

    def as_dict(self):
        return dict(self._row)

    def __repr__(self):
        return "RequestMetrics(%s %s %s -> %s)" % (self.timestamp.isoformat(), self.model,
                                                   self.tokens_input_before, self.tokens_input_after)


class CompressResult:
    """What compress() gives: the compressed `messages` (or `input` items),
    the whole `request` as headroomd would forward it (`body`, the exact
    bytes), token counts and the stages' tags."""

    def __init__(self, body, request, items_key, tokens_before, tokens_after, tokens_saved, tags, wire_format):
        self.body = body
        self.request = request
        self.messages = request.get(items_key) if isinstance(request, dict) else None
        self.tokens_before = tokens_before
        self.tokens_after = tokens_after
        self.tokens_saved = tokens_saved
        self.compression_ratio = tokens_after / tokens_before if tokens_before else 1.0
        self.transforms_applied = tags
        self.wire_format = wire_format

    def __repr__(self):
        return "CompressResult(%d -> %d tokens, %s)" % (self.tokens_before, self.tokens_after, self.transforms_applied)


class Client:
    """A libheadroom client.

    Client(config=None): offline -- loads `config` (headroom.conf path, or
    None for defaults) and its transforms in-process; no daemon needed.
    Client(url="http://127.0.0.1:8787", config=None, token=None): attached to
    a running headroomd (session stats and compression ask it); `config`
    locates the metrics database and, unless `token` is given, gives the
    daemon's stats_token and api_token. Only one offline client per process."""

    def __init__(self, config=None, url=None, token=None):
        self._config = config
        self._c = _lib.hr_client_attach(_enc(url), _enc(config)) if url else _lib.hr_client_open(_enc(config))
        if not self._c:
            raise _error()
        if token:
            _lib.hr_client_set_token(self._c, _enc(token))

    def close(self):
        if self._c:
            _lib.hr_client_close(self._c)
            self._c = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass

    def _handle(self):
        if not self._c:
            raise HeadroomError("the client is closed")
        return self._c

    def session_stats(self):
        """The seed's session stats: {"session", "config", "transforms"} (no database)."""
        return json.loads(_take_text(_lib.hr_session_stats(self._handle())))

    def get_metrics(self, start_time=None, end_time=None, limit=100, model=None):
        """Stored requests with start_time <= timestamp < end_time, newest first."""
        text = _take_text(_lib.hr_get_metrics(self._handle(), _seconds(start_time), _seconds(end_time),
                                              int(limit or 0), _enc(model)))
        return [RequestMetrics(r) for r in json.loads(text)]

    def get_summary(self, start_time=None, end_time=None):
        """Aggregates over the stored metrics: total_requests, total_tokens_saved,
        avg_compression_ratio, total_cost_saved_usd, total_tokens_before/after, ..."""
        return json.loads(_take_text(_lib.hr_get_summary(self._handle(), _seconds(start_time), _seconds(end_time))))

    def get_history(self, series=None, format=None, history_mode=None):
        """The durable savings history (the /stats-history document; CSV text for format="csv")."""
        q = "&".join("%s=%s" % (k, v) for k, v in (("series", series), ("format", format),
                                                    ("history_mode", history_mode)) if v)
        text = _take_text(_lib.hr_get_history(self._handle(), q.encode()))
        return text if format == "csv" else json.loads(text)

    def validate_setup(self):
        """{"valid": bool, "issues": ["... Fix: ..."], "checks": [...]} for this client's config."""
        return json.loads(_take_text(_lib.hr_validate_setup(_enc(self._config))))

    def compress_request(self, request):
        """Compress a whole request (dict, str or bytes); returns a CompressResult."""
        if isinstance(request, dict):
            data = json.dumps(request, separators=(",", ":")).encode()
        elif isinstance(request, str):
            data = request.encode()
        else:
            data = bytes(request)
        r = _CompressResult()
        if _lib.hr_compress(self._handle(), data, len(data), ctypes.byref(r)):
            raise _error()
        try:
            body = ctypes.string_at(r.body, r.body_len)
            tags = [r.tags[i].decode() for i in range(r.n_tags)]
            wire = (r.wire_format or b"").decode()
            out_req = json.loads(body)
            key = "input" if wire == "openai_responses" else "messages"
            return CompressResult(body, out_req, key, r.tokens_before, r.tokens_after, r.tokens_saved, tags, wire)
        finally:
            _lib.hr_compress_result_free(ctypes.byref(r))

    def compress(self, messages, model="gpt-4o", **request_fields):
        """Compress a conversation (OpenAI Chat or Anthropic Messages list) for `model`."""
        request = {"model": model, "messages": messages}
        request.update(request_fields)
        return self.compress_request(request)
