"""A small Sheets v4 API on loopback for the real gspread and google-auth to talk to.

It keeps the real API's quirks that matter here: values.get leaves out trailing empty cells and
rows; a new tab is 1000x26; batchUpdate applies all its requests or none; a write past the grid
is refused; `null` in a values write leaves the old value; 429 bodies are shaped like Google's.
The token endpoint verifies the JWT assertion's RS256 signature against the test key. Every
request is recorded, and faults (status codes, bodies, hangs) can be scripted.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from warehouse_assets_tests.sheets.fake_grid import (  # noqa: F401 (re-exported)
    MAX_CELLS,
    ApiError,
    BatchUpdates,
    Tab,
    a1,
    tab_of_range,
)

QUOTA_429 = {"error": {
    "code": 429,
    "message": "Quota exceeded for quota metric 'Write requests' and limit 'Write requests per "
               "minute per user' of service 'sheets.googleapis.com' for consumer "
               "'project_number:000000000000'.",
    "status": "RESOURCE_EXHAUSTED",
    "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED",
                 "domain": "googleapis.com"}],
}}
HTML_500 = "<!DOCTYPE html><html><body><h1>Error 500 (Server Error)!!1</h1></body></html>"
@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any


@dataclass
class Fault:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    times: int | None = 1  # None: forever
    hang: float = 0.0
    match: str = ""  # only requests whose path contains this
    after: int = 0  # let this many matching requests through first


def _b64(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


class FakeSheets(BatchUpdates):
    """The server's state: spreadsheets by id, issued tokens, the request log and faults."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.books: dict[str, dict[str, Any]] = {}
        self.tokens: set[str] = set()
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        self.forbidden: set[str] = set()
        self.lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None

    # --- test-side helpers --------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def service_account_info(self) -> dict[str, str]:
        pem = self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode()
        return {
            "type": "service_account", "project_id": "test-project",
            "private_key_id": "kid-" + secrets.token_hex(16), "private_key": pem,
            "client_email": "loader@test-project.iam.gserviceaccount.com",
            "client_id": "1", "token_uri": f"{self.url}/token",
        }

    def add_spreadsheet(self, sid: str, title: str = "Test book") -> None:
        self.books[sid] = {"title": title, "tabs": [], "next_id": 1000}

    def add_tab(self, sid: str, title: str, values: list[list[Any]] | None = None,
                rows: int = 1000, cols: int = 26) -> Tab:
        book = self.books.setdefault(sid, {"title": "Test book", "tabs": [], "next_id": 1000})
        book["next_id"] += 1
        tab = Tab(book["next_id"], title, len(book["tabs"]), rows, cols)
        for r, row in enumerate(values or []):
            for c, v in enumerate(row):
                if v is not None and v != "":
                    tab.cells[(r, c)] = v
        book["tabs"].append(tab)
        return tab

    def tab(self, sid: str, title: str) -> Tab:
        return next(t for t in self.books[sid]["tabs"] if t.title == title)

    def values(self, sid: str, title: str) -> list[list[Any]]:
        return self.tab(sid, title).values()

    def calls(self, contains: str = "", method: str | None = None) -> list[Recorded]:
        return [r for r in self.requests if contains in r.path and (method is None or
                                                                    r.method == method)]

    def fail(self, status: int, body: Any = None, times: int | None = 1, hang: float = 0.0,
             match: str = "/v4/", headers: dict[str, str] | None = None, after: int = 0) -> None:
        self.faults.append(Fault(status, body, headers or {}, times, hang, match, after))

    def start(self) -> FakeSheets:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, body, headers = fake.dispatch(method, self.path, self.headers, raw)
                data = body if isinstance(body, bytes) else (
                    body.encode() if isinstance(body, str) else json.dumps(body).encode())
                ctype = "text/html" if isinstance(body, str) else "application/json"
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PUT(self) -> None:
                self._handle("PUT")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    # --- the API ------------------------------------------------------------------------------
    def dispatch(self, method: str, raw_path: str, headers: Any, raw: bytes):
        parts = urlsplit(raw_path)
        path, query = unquote(parts.path), parse_qs(parts.query)
        ctype = headers.get("Content-Type") or ""
        if raw and "json" in ctype:
            body = json.loads(raw)
        else:
            body = {k: v[0] for k, v in parse_qs(raw.decode()).items()} if raw else None
        with self.lock:
            self.requests.append(Recorded(method, path, query, body))
            fault = next((f for f in self.faults if f.match in path), None)
            if fault and fault.after:
                fault.after -= 1
                fault = None
            if fault and fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
        if fault:
            if fault.hang:
                time.sleep(fault.hang)
            body = fault.body if fault.body is not None else {
                "error": {"code": fault.status, "message": "scripted", "status": "UNAVAILABLE"}}
            return fault.status, body, fault.headers
        try:
            if path == "/token":
                return 200, self._token(body or {}), {}
            auth = headers.get("Authorization") or ""
            if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
                raise ApiError(401, "Request had invalid authentication credentials.",
                               "UNAUTHENTICATED")
            if not path.startswith("/v4/spreadsheets/"):
                raise ApiError(404, f"not a Sheets v4 path: {path}", "NOT_FOUND")
            rest = path[len("/v4/spreadsheets/"):]
            with self.lock:
                return 200, self._sheets(method, rest, query, body), {}
        except ApiError as exc:
            return exc.code, {"error": {"code": exc.code, "message": exc.message,
                                        "status": exc.status}}, {}

    def _token(self, form: dict[str, str]) -> dict[str, Any]:
        assertion = form.get("assertion", "")
        try:
            head, payload, sig = assertion.split(".")
            public = self.key.public_key()
            public.verify(_b64(sig), f"{head}.{payload}".encode(), padding.PKCS1v15(),
                          hashes.SHA256())
            claims = json.loads(_b64(payload))
        except (ValueError, InvalidSignature):
            raise ApiError(400, "invalid_grant: Invalid JWT Signature.") from None
        if "spreadsheets" not in claims.get("scope", ""):
            raise ApiError(400, "invalid_scope")
        token = "ya29.fake-" + secrets.token_urlsafe(24)
        self.tokens.add(token)
        return {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}

    def _book(self, sid: str) -> dict[str, Any]:
        if sid in self.forbidden:
            raise ApiError(403, "The caller does not have permission", "PERMISSION_DENIED")
        if sid not in self.books:
            raise ApiError(404, "Requested entity was not found.", "NOT_FOUND")
        return self.books[sid]

    def _find(self, book: dict[str, Any], rng: str) -> Tab:
        title = tab_of_range(rng)
        for tab in book["tabs"]:
            if tab.title == title:
                return tab
        raise ApiError(400, f"Unable to parse range: {rng}")

    def _sheets(self, method: str, rest: str, query: dict, body: Any) -> Any:
        if rest.endswith(":batchUpdate") and "/values" not in rest:
            return self._batch_update(rest[:-len(":batchUpdate")], body or {})
        sid, _, tail = rest.partition("/")
        book = self._book(sid)
        if not tail:
            return {"spreadsheetId": sid, "properties": {"title": book["title"], "locale": "de_DE"},
                    "sheets": [{"properties": self._props(t)} for t in book["tabs"]]}
        if tail == "values:batchGet":
            return {"spreadsheetId": sid, "valueRanges": [
                {"range": r, "majorDimension": "ROWS", "values": self._render(
                    self._find(book, r), query)} for r in query.get("ranges", [])]}
        if tail.startswith("values/"):
            rng = tail[len("values/"):]
            if rng.endswith(":clear"):
                tab = self._find(book, rng[:-6])
                tab.cells.clear()
                return {"spreadsheetId": sid, "clearedRange": rng[:-6]}
            tab = self._find(book, rng)
            if method == "GET":
                out = {"range": rng, "majorDimension": "ROWS"}
                values = self._render(tab, query)
                return {**out, "values": values} if values else out
            if method == "PUT":  # values.update from A1: null leaves the old value, as Google's
                for r, row in enumerate(body.get("values", [])):
                    for c, v in enumerate(row):
                        if v is None:
                            continue
                        self._check_grid(tab, r, c)
                        self._set(tab, r, c, v)
                return {"spreadsheetId": sid, "updatedRange": rng}
        raise ApiError(404, f"unsupported: {method} {rest}", "NOT_FOUND")
