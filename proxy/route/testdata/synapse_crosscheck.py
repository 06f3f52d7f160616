"""Cross-check for proxy/route: how Synapse and Twisted read the paths the Go code accepts.

Reads JSON from stdin: {"targets": [...], "routes": [{"method": ..., "path": ...}, ...]}.
Writes JSON to stdout:
  targets: for each target, the segments as Synapse decodes them (split the raw path on "/", then
           urllib.parse.unquote each piece, as JsonResource does with regex groups), the segments of
           Twisted's resource traversal (unquote_to_bytes per piece), urlsplit's path and query, and the
           query arguments as Twisted parses them (hex-encoded bytes);
  routes:  for each request, what Synapse's routing would answer: 200 with the unquoted named groups,
           404, 405, or "tree" for paths outside Synapse's regex-routed resources.
Synapse's servlets are registered against a MagicMock homeserver, which enables every optional servlet:
apart from delegated auth (switched off as in timstack), the pattern set is a superset of any real
configuration.
"""
import json
import sys
import urllib.parse
from unittest import mock

from synapse.federation.transport.server import register_servlets as federation_servlets
from synapse.rest import ClientRestResource, admin
from synapse.rest.client import media as client_media
from synapse.rest.key.v2 import KeyResource
from synapse.rest.media.media_repository_resource import MediaRepositoryResource


class Recorder:
    def __init__(self):
        self.routes = {}  # pattern -> set of methods, in registration order like JsonResource._routes

    def register_paths(self, method, patterns, callback, servlet_classname):
        for p in patterns:
            self.routes.setdefault(p, set()).add(method)


def synapse_routes():
    hs = mock.MagicMock()
    hs.config.worker.worker_app = None
    # Without delegated auth (MAS, MSC3861), as in timstack: Synapse then serves its own login, logout,
    # registration and account endpoints.
    hs.config.mas.enabled = False
    hs.config.experimental.msc3861.enabled = False
    hs.hostname = "hs1.tim.test"
    resources = {}
    for prefix, register in [
        ("/_matrix/client", lambda r: (ClientRestResource.register_servlets(r, hs), client_media.register_servlets(hs, r))),
        ("/_matrix/media", lambda r: MediaRepositoryResource.register_servlets(r, hs)),
        ("/_matrix/key/v2", lambda r: KeyResource.register_servlets(r, hs)),
        ("/_synapse/admin", lambda r: admin.register_servlets(hs, r)),
        ("/_matrix/federation", lambda r: federation_servlets(hs, r, mock.MagicMock(), mock.MagicMock())),
    ]:
        rec = Recorder()
        register(rec)
        resources[prefix] = rec.routes
    return resources


def route(resources, method, path):
    for prefix, routes in resources.items():
        if path == prefix or path.startswith(prefix + "/"):
            break
    else:
        return {"status": "tree"}
    if method == "HEAD":
        method = "GET"
    for pattern, methods in routes.items():
        m = pattern.match(path)
        if m:
            if method not in methods:
                return {"status": "405"}
            groups = {k: urllib.parse.unquote(v) for k, v in m.groupdict().items() if v}
            return {"status": "200", "groups": groups, "pattern": pattern.pattern}
    return {"status": "404"}


def main():
    req = json.load(sys.stdin)
    out = {"targets": [], "routes": []}
    for t in req["targets"]:
        path, _, query = t.partition("?")  # twisted.web.http.Request.requestReceived
        split = urllib.parse.urlsplit(t)
        twisted = []
        for piece in path[1:].split("/"):
            try:
                twisted.append(urllib.parse.unquote_to_bytes(piece).decode("utf-8"))
            except UnicodeDecodeError:
                twisted.append(None)
        out["targets"].append({
            "synapse": [urllib.parse.unquote(p) for p in path[1:].split("/")],
            "twisted": twisted,
            "urlsplit_path": split.path,
            "urlsplit_query": split.query,
            "raw_query": query,
            # twisted.web.http.Request.requestReceived: parse_qs(argstring, 1) on bytes.
            "args": {k.hex(): [v.hex() for v in vs]
                     for k, vs in urllib.parse.parse_qs(query.encode("ascii"), keep_blank_values=True).items()},
        })
    resources = synapse_routes()
    for r in req["routes"]:
        out["routes"].append(route(resources, r["method"], r["path"]))
    json.dump(out, sys.stdout)


main()
