"""A fake CCS backend on 127.0.0.1 for the real ``mftsccs`` client (import name ``ccs``).

It implements what the client's write and read paths call (see /work/shared/notes/ccs.md §1):

* ``POST /api/oauth/token`` (form ``client_id``, ``client_secret``, ``application_name``) → ``access_token``;
* ``POST /api/v1/local-concepts`` (Bearer; JSON ``{"concepts": [...], "connections": [...]}`` with negative
  ghost ids) → every ghost gets a real id (concepts 100000+, connections 500000+), in two passes so
  references inside a batch resolve in any order, negative references resolve through the ghost map
  of the token's client (including earlier batches); a re-sent ghost id is an upsert (same real id).
  Response ``{"concepts": [{..., "id": real, "ghostId": ghost}], "connections": [...]}``;
* ``POST /api/getConcept`` (form ``id``), ``POST /api/get_concept_bulk`` / ``/api/get_connection_bulk``
  (JSON list of ids);
* ``POST /api/freeschema-query``: ``conceptIds`` (or ``type``) at the top, nested ``freeschemaQueries``
  follow connections whose ``typeCharacter`` equals ``typeConnection`` (``reverse`` flips direction).
  ``outputFormat=6`` (ALLID) answers ``{"conceptIds": [every id matched at any level], "linkers":
  [connection ids], "mainCompositionIds": [top ids], "internalConnections": {}, "reverse": [],
  "countinfo": []}``. The real server's ALLID semantics for nested queries are not public: this is
  the fake's own choice.

Failure modes per endpoint (``oauth_token``, ``sync``, ``get_concept``, ``query``, ``concept_bulk``,
``connection_bulk``), optionally for N calls: ``500``, ``503``, ``400``, ``401``, ``error_json``,
``not_json``, ``hang:<seconds>``, ``drop`` (close the socket without answering). ``stop()`` and
``start()`` again keep the data and the port (a server that is down for a while).
Everything received is recorded in ``records`` (secrets included: the tests check they never
leak *elsewhere*).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

ENDPOINTS = {
    "/api/oauth/token": "oauth_token",
    "/api/v1/local-concepts": "sync",
    "/api/getConcept": "get_concept",
    "/api/get_concept_bulk": "concept_bulk",
    "/api/get_connection_bulk": "connection_bulk",
    "/api/freeschema-query": "query",
}


class FakeCCS:
    """The fake backend. ``with FakeCCS(client_id="4242", client_secret="s3cret") as srv: srv.url``."""

    def __init__(self, client_id: str = "4242", client_secret: str = "s3cret-XYZ-0123456789",
                 application_name: str | None = None, port: int = 0) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.application_name = application_name
        self.lock = threading.RLock()
        self.records: list[dict[str, Any]] = []
        self.concepts: dict[int, dict[str, Any]] = {}
        self.connections: dict[int, dict[str, Any]] = {}
        self.ghosts: dict[str, dict[int, int]] = {}  # client -> ghost -> real (concepts)
        self.conn_ghosts: dict[str, dict[int, int]] = {}
        self.sync_batches: list[dict[str, Any]] = []
        self.tokens: dict[str, str] = {}  # token -> client id
        self.issued: list[str] = []  # every token ever issued
        #: a sync batch containing this text anywhere is refused with 400 (a "poison" event)
        self.reject_if_contains: str | None = None
        self._modes: dict[str, list[tuple[str, int | None]]] = {}
        self._next_concept = 100000
        self._next_connection = 500000
        self._next_token = 0
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> FakeCCS:
        handler = _make_handler(self)
        server = ThreadingHTTPServer(("127.0.0.1", self._port), handler)
        server.daemon_threads = True
        self._port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeCCS:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    # -- control ---------------------------------------------------------------------------------------
    def set_mode(self, endpoint: str, mode: str, times: int | None = None) -> None:
        """Fail *endpoint* with *mode* for the next *times* calls (None: until cleared)."""
        with self.lock:
            self._modes.setdefault(endpoint, []).append((mode, times))

    def clear_modes(self) -> None:
        with self.lock:
            self._modes.clear()

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    def _take_mode(self, endpoint: str) -> str | None:
        with self.lock:
            queue = self._modes.get(endpoint)
            if not queue:
                return None
            mode, times = queue[0]
            if times is not None:
                if times <= 1:
                    queue.pop(0)
                else:
                    queue[0] = (mode, times - 1)
            return mode

    # -- queries for the tests -------------------------------------------------------------------------
    def requests_to(self, endpoint: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.records if r["endpoint"] == endpoint]

    def concepts_of_type(self, type_character: str) -> list[dict[str, Any]]:
        with self.lock:
            return [c for c in self.concepts.values() if c.get("typeCharacter") == type_character]

    def usage_events(self) -> list[dict[str, Any]]:
        """Every stored ``the_llm_usage`` concept's JSON, in arrival order."""
        return [json.loads(c["characterValue"]) for c in sorted(self.concepts_of_type("the_llm_usage"),
                                                                 key=lambda c: c["id"])]

    def links_from(self, concept_id: int, type_character: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [c for c in self.connections.values() if c["ofTheConceptId"] == concept_id
                    and (type_character is None or c.get("typeCharacter") == type_character)]

    def links_to(self, concept_id: int, type_character: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [c for c in self.connections.values() if c["toTheConceptId"] == concept_id
                    and (type_character is None or c.get("typeCharacter") == type_character)]

    def unresolved(self) -> list[Any]:
        with self.lock:
            return [ref for b in self.sync_batches for ref in b["unresolved"]]

    # -- request handling ------------------------------------------------------------------------------
    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any, str]:
        norm = "/" + "/".join(p for p in path.split("?")[0].split("/") if p)
        endpoint = ENDPOINTS.get(norm, "unknown")
        record: dict[str, Any] = {"endpoint": endpoint, "raw_path": path, "path": norm, "headers": headers,
                                  "body": body.decode("utf-8", "replace"), "ts": time.time()}
        with self.lock:
            self.records.append(record)
        mode = self._take_mode(endpoint)
        record["mode"] = mode
        if mode is not None:
            if mode.startswith("hang:"):
                time.sleep(float(mode.split(":", 1)[1]))
            elif mode in ("500", "503", "400", "401"):
                return int(mode), {"message": f"fake failure {mode}"}, "json"
            elif mode == "error_json":
                return 200, {"error": "fake server error"}, "json"
            elif mode == "not_json":
                return 200, "<html><body>Bad gateway (proxy)</body></html>", "text"
            elif mode == "drop":
                return -1, None, "drop"
        if endpoint == "unknown":
            return 404, {"message": "not found"}, "json"
        if endpoint == "oauth_token":
            return self._oauth(headers, body)
        client = self._auth(headers)
        if client is None:
            return 401, {"message": "invalid or expired token"}, "json"
        try:
            data = json.loads(body or b"null") if endpoint != "get_concept" else None
        except ValueError:
            return 400, {"message": "body is not JSON"}, "json"
        if endpoint == "sync":
            if self.reject_if_contains and self.reject_if_contains in record["body"]:
                return 400, {"message": "invalid concept"}, "json"
            return 200, self._sync(client, data), "json"
        if endpoint == "get_concept":
            form = parse_qs(body.decode())
            cid = int(form.get("id", ["0"])[0])
            with self.lock:
                concept = self.concepts.get(cid)
            return (200, concept, "json") if concept else (404, {"message": "no such concept"}, "json")
        if endpoint == "concept_bulk":
            with self.lock:
                return 200, [self.concepts[i] for i in data or [] if i in self.concepts], "json"
        if endpoint == "connection_bulk":
            with self.lock:
                return 200, [self.connections[i] for i in data or [] if i in self.connections], "json"
        if endpoint == "query":
            return 200, self._query(data or {}), "json"
        return 404, {"message": "not found"}, "json"

    def _oauth(self, headers: dict[str, str], body: bytes) -> tuple[int, Any, str]:
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return 401, {"error": "invalid_client"}, "json"
        if self.application_name and form.get("application_name") != self.application_name:
            return 400, {"error": "invalid application_name"}, "json"
        with self.lock:
            self._next_token += 1
            token = f"fake-token-{self._next_token}-abcdef123456"
            self.tokens[token] = form["client_id"]
            self.issued.append(token)
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600}, "json"

    def _auth(self, headers: dict[str, str]) -> str | None:
        value = headers.get("authorization", "")
        if not value.startswith("Bearer "):
            return None
        with self.lock:
            return self.tokens.get(value[len("Bearer "):])

    def _sync(self, client: str, data: Any) -> dict[str, Any]:
        concepts = list((data or {}).get("concepts") or [])
        connections = list((data or {}).get("connections") or [])
        with self.lock:
            gmap = self.ghosts.setdefault(client, {})
            cmap = self.conn_ghosts.setdefault(client, {})
            unresolved: list[Any] = []
            # pass 1: ids
            for c in concepts:
                ghost = c.get("ghostId") or c.get("id")
                if isinstance(ghost, int) and ghost < 0:
                    if ghost not in gmap:
                        self._next_concept += 1
                        gmap[ghost] = self._next_concept
            for c in connections:
                ghost = c.get("ghostId") or c.get("id")
                if isinstance(ghost, int) and ghost < 0 and ghost not in cmap:
                    self._next_connection += 1
                    cmap[ghost] = self._next_connection

            def resolve(ref: Any) -> Any:
                if isinstance(ref, int) and ref < 0:
                    if ref in gmap:
                        return gmap[ref]
                    unresolved.append(ref)
                return ref

            out_concepts = []
            for c in concepts:
                ghost = c.get("ghostId") or c.get("id")
                stored = dict(c)
                stored["id"] = gmap.get(ghost, ghost)
                stored["ghostId"] = ghost
                for key in ("typeId", "categoryId", "referentId"):
                    stored[key] = resolve(stored.get(key))
                self.concepts[stored["id"]] = stored
                out_concepts.append(stored)
            out_connections = []
            for c in connections:
                ghost = c.get("ghostId") or c.get("id")
                stored = dict(c)
                stored["id"] = cmap.get(ghost, ghost)
                stored["ghostId"] = ghost
                for key in ("ofTheConceptId", "toTheConceptId", "typeId"):
                    stored[key] = resolve(stored.get(key))
                self.connections[stored["id"]] = stored
                out_connections.append(stored)
            self.sync_batches.append({"client": client, "concepts": len(concepts),
                                      "connections": len(connections), "unresolved": unresolved})
        result: dict[str, Any] = {"concepts": out_concepts, "connections": out_connections}
        if unresolved:
            result["unresolvedGhostIds"] = unresolved
        return result

    def _query(self, q: dict[str, Any]) -> Any:
        with self.lock:
            if q.get("conceptIds"):
                top = [i for i in q["conceptIds"] if isinstance(i, int)]
            elif q.get("type"):
                top = sorted(c["id"] for c in self.concepts.values() if c.get("typeCharacter") == q["type"])
            else:
                top = []
            all_ids: list[int] = list(top)
            linkers: list[int] = []
            for sub in q.get("freeschemaQueries") or []:
                self._follow(sub, top, all_ids, linkers)
        if q.get("outputFormat") == 6:
            return {"conceptIds": _unique(all_ids), "linkers": _unique(linkers), "mainCompositionIds": top,
                    "internalConnections": {}, "reverse": [], "countinfo": []}
        with self.lock:
            return [{"id": i, "data": self.concepts.get(i, {})} for i in _unique(all_ids)]

    def _follow(self, q: dict[str, Any], parents: list[int], all_ids: list[int], linkers: list[int]) -> None:
        link = q.get("typeConnection") or ""
        reverse = bool(q.get("reverse"))
        parent_set = set(parents)
        found: list[int] = []
        for conn in self.connections.values():
            if link and conn.get("typeCharacter") != link:
                continue
            src, dst = (conn["toTheConceptId"], conn["ofTheConceptId"]) if reverse else (
                conn["ofTheConceptId"], conn["toTheConceptId"])
            if src in parent_set:
                found.append(dst)
                linkers.append(conn["id"])
        all_ids.extend(found)
        for sub in q.get("freeschemaQueries") or []:
            self._follow(sub, found, all_ids, linkers)


def _unique(ids: list[int]) -> list[int]:
    return list(dict.fromkeys(ids))


def _make_handler(fake: FakeCCS) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, payload, kind = fake.handle(self.path, headers, body)
            if kind == "drop":
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                self.close_connection = True
                return
            if kind == "text":
                data = str(payload).encode()
                ctype = "text/html"
            else:
                data = json.dumps(payload).encode()
                ctype = "application/json"
            try:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the client gave up (timeout)
                pass

        do_GET = do_POST

    return Handler
