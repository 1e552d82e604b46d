#!/usr/bin/env python3
"""Package source for air-gapped sandbox nodes, served from the host over the bridge.

One small HTTP server with two jobs, the way an air-gapped site's package host works:

* a forward proxy for APT (``Acquire::http::Proxy``): absolute-URI GET/HEAD requests and
  CONNECT tunnels, allowed only to the hosts named with ``--allow`` (the hosts of the
  machine's own APT sources); ``.deb`` files are cached on disk since they never change;
* a static wheelhouse under ``/wheels/`` with a directory listing that ``pip --find-links``
  reads, so nodes install Python wheels with ``--no-index``.

Standard library only: it runs with the host's python3 before any venv exists.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import os
import select
import shutil
import socket
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FORWARDED_REQUEST_HEADERS = ("If-Modified-Since", "If-None-Match", "Range", "Accept")
FORWARDED_RESPONSE_HEADERS = ("Content-Type", "Last-Modified", "ETag", "Content-Range", "Accept-Ranges")
CACHEABLE_SUFFIXES = (".deb", ".udeb", ".whl")
CHUNK = 1 << 16


class Handler(BaseHTTPRequestHandler):
    server_version = "onprem-torchrun-pkgproxy"
    protocol_version = "HTTP/1.1"

    # Filled in by main().
    allowed_hosts: frozenset[str] = frozenset()
    cache_dir = ""
    wheel_dir = ""

    def log_message(self, fmt: str, *args: object) -> None:  # keep the log one line a request
        sys.stderr.write("%s %s\n" % (self.client_address[0], fmt % args))

    # ---- dispatch -------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        self._dispatch(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch(head=True)

    def _dispatch(self, head: bool) -> None:
        if self.path.startswith(("http://", "https://")):
            self._proxy(head)
        elif self.path == "/wheels" or self.path.startswith("/wheels/"):
            self._wheels(head)
        else:
            self._send_plain(404, "not found\n", head)

    # ---- helpers --------------------------------------------------------------------------
    def _send_plain(self, code: int, text: str, head: bool = False) -> None:
        body = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _send_file(self, path: str, content_type: str, head: bool) -> None:
        size = os.path.getsize(path)
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        if head:
            return
        with open(path, "rb") as src:
            shutil.copyfileobj(src, self.wfile, CHUNK)

    # ---- wheelhouse -----------------------------------------------------------------------
    def _wheels(self, head: bool) -> None:
        rel = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)[len("/wheels"):].strip("/")
        if "/" in rel or rel.startswith("."):
            self._send_plain(404, "not found\n", head)
            return
        if rel:
            path = os.path.join(self.wheel_dir, rel)
            if os.path.isfile(path):
                self._send_file(path, "application/octet-stream", head)
            else:
                self._send_plain(404, "no such wheel: %s\n" % rel, head)
            return
        if not urllib.parse.urlsplit(self.path).path.endswith("/"):
            self.send_response(301)
            self.send_header("Location", "/wheels/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        names = sorted(n for n in os.listdir(self.wheel_dir) if n.endswith((".whl", ".tar.gz")))
        links = "".join('<a href="%s">%s</a><br>\n' % (urllib.parse.quote(n), html.escape(n)) for n in names)
        data = ("<!DOCTYPE html><html><body>\n%s</body></html>\n" % links).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not head:
            self.wfile.write(data)

    # ---- forward proxy --------------------------------------------------------------------
    def _allowed(self, host: str | None) -> bool:
        return bool(host) and host.lower() in self.allowed_hosts

    def _cache_path(self, url: str) -> str | None:
        if not url.split("?", 1)[0].endswith(CACHEABLE_SUFFIXES):
            return None
        digest = hashlib.sha256(url.encode()).hexdigest()
        return os.path.join(self.cache_dir, digest[:2], digest + "-" + os.path.basename(url.split("?", 1)[0]))

    def _proxy(self, head: bool) -> None:
        url = self.path
        if not self._allowed(urllib.parse.urlsplit(url).hostname):
            self._send_plain(403, "host not in the allowed package sources\n", head)
            return
        cached = self._cache_path(url)
        if cached and not head and os.path.isfile(cached) and "Range" not in self.headers:
            self._send_file(cached, "application/vnd.debian.binary-package", head)
            return
        request = urllib.request.Request(url, method="HEAD" if head else "GET")
        for name in FORWARDED_REQUEST_HEADERS:
            if name in self.headers:
                request.add_header(name, self.headers[name])
        try:
            upstream = urllib.request.urlopen(request, timeout=120)  # noqa: S310 (allow-listed)
        except urllib.error.HTTPError as err:
            upstream = err
        except (urllib.error.URLError, OSError) as err:
            self._send_plain(502, "upstream error: %s\n" % err, head)
            return
        with upstream:
            self._relay(upstream, head, cached if upstream.status == 200 else None)

    def _relay(self, upstream, head: bool, cache_to: str | None) -> None:
        self.send_response(upstream.status)
        for name in FORWARDED_RESPONSE_HEADERS:
            value = upstream.headers.get(name)
            if value:
                self.send_header(name, value)
        length = upstream.headers.get("Content-Length")
        if length is None and not head:
            # Unknown length: close after the body so the client sees where it ends.
            self.send_header("Connection", "close")
            self.close_connection = True
        elif length is not None:
            self.send_header("Content-Length", length)
        self.end_headers()
        if head:
            return
        tmp = None
        if cache_to:
            os.makedirs(os.path.dirname(cache_to), exist_ok=True)
            tmp = tempfile.NamedTemporaryFile(dir=os.path.dirname(cache_to), delete=False)
        try:
            while True:
                chunk = upstream.read(CHUNK)
                if not chunk:
                    break
                self.wfile.write(chunk)
                if tmp:
                    tmp.write(chunk)
            if tmp:
                tmp.close()
                os.replace(tmp.name, cache_to)
                tmp = None
        finally:
            if tmp:
                tmp.close()
                os.unlink(tmp.name)

    def do_CONNECT(self) -> None:  # noqa: N802
        host, _, port = self.path.rpartition(":")
        if not self._allowed(host) or port != "443":
            self._send_plain(403, "tunnel not allowed\n")
            return
        try:
            remote = socket.create_connection((host, 443), timeout=30)
        except OSError as err:
            self._send_plain(502, "upstream error: %s\n" % err)
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        self.close_connection = True
        sockets = [self.connection, remote]
        with remote:
            while True:
                readable, _, broken = select.select(sockets, [], sockets, 300)
                if broken or not readable:
                    return
                for sock in readable:
                    data = sock.recv(CHUNK)
                    if not data:
                        return
                    (remote if sock is self.connection else self.connection).sendall(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True, help="address to bind (the bridge address)")
    parser.add_argument("--port", type=int, default=3142)
    parser.add_argument("--allow", action="append", default=[], help="host allowed upstream")
    parser.add_argument("--cache-dir", required=True)
    parser.add_argument("--wheel-dir", required=True)
    args = parser.parse_args(argv)

    os.makedirs(args.cache_dir, exist_ok=True)
    os.makedirs(args.wheel_dir, exist_ok=True)
    Handler.allowed_hosts = frozenset(h.lower() for h in args.allow)
    Handler.cache_dir = args.cache_dir
    Handler.wheel_dir = args.wheel_dir
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer((args.listen, args.port), Handler)
    sys.stderr.write("pkgproxy on %s:%d, upstream hosts: %s\n" % (args.listen, args.port, ", ".join(sorted(Handler.allowed_hosts))))
    sys.stderr.flush()
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
