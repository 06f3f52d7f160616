"""Sends PUTs through a CONNECT proxy the way Synapse's federation client does: Synapse's own
HTTPConnectProxyEndpoint, wrapped in Twisted TLS (pyOpenSSL) that trusts only the given CA, with a persistent
connection pool so that the requests share one tunnel.

usage: twisted_client.py PROXY_HOST PROXY_PORT CA_FILE TARGET_URL COUNT < body
Prints one "<status> <response body>" line per request.
"""
import sys
from io import BytesIO

from twisted.internet import defer, task
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.ssl import Certificate, optionsForClientTLS
from twisted.web.client import Agent, FileBodyProducer, HTTPConnectionPool, readBody
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgentEndpointFactory
from zope.interface import implementer

from synapse.http.connectproxyclient import HTTPConnectProxyEndpoint

proxy_host, proxy_port, ca_file, target, count = sys.argv[1:6]
body = sys.stdin.buffer.read()
with open(ca_file, "rb") as f:
    trust = Certificate.loadPEM(f.read())


@implementer(IAgentEndpointFactory)
class ViaProxy:
    def __init__(self, reactor):
        self.reactor = reactor

    def endpointForURI(self, uri):
        proxy = HostnameEndpoint(self.reactor, proxy_host, int(proxy_port))
        tunnel = HTTPConnectProxyEndpoint(self.reactor, proxy, uri.host, uri.port, proxy_creds=None)
        return wrapClientTLS(optionsForClientTLS(uri.host.decode(), trustRoot=trust), tunnel)


async def main(reactor):
    pool = HTTPConnectionPool(reactor, persistent=True)
    agent = Agent.usingEndpointFactory(reactor, ViaProxy(reactor), pool=pool)
    headers = Headers({
        b"Content-Type": [b"application/json"],
        b"Authorization": [b'X-Matrix origin="hs1.tim.test",destination="hs2.tim.test",key="ed25519:a",sig="c2ln"'],
    })
    for _ in range(int(count)):
        resp = await agent.request(b"PUT", target.encode(), headers, FileBodyProducer(BytesIO(body)))
        data = await readBody(resp)
        print(resp.code, data.decode(), flush=True)
    await pool.closeCachedConnections()


task.react(lambda reactor: defer.ensureDeferred(main(reactor)))
