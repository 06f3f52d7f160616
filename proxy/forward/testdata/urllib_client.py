"""Sends one X-Matrix-style PUT through an HTTPS (CONNECT) proxy with urllib, trusting only the given CA.

usage: urllib_client.py PROXY_URL CA_FILE TARGET_URL < body
Prints "<status> <response body>".
"""
import ssl
import sys
import urllib.request

proxy_url, ca_file, target = sys.argv[1:4]
ctx = ssl.create_default_context(cafile=ca_file)
opener = urllib.request.build_opener(
    urllib.request.ProxyHandler({"https": proxy_url}),
    urllib.request.HTTPSHandler(context=ctx),
)
req = urllib.request.Request(
    target,
    data=sys.stdin.buffer.read(),
    method="PUT",
    headers={
        "Content-Type": "application/json",
        "Authorization": 'X-Matrix origin="hs1.tim.test",destination="hs2.tim.test",key="ed25519:a",sig="c2ln"',
    },
)
with opener.open(req, timeout=60) as resp:
    sys.stdout.write("%d %s" % (resp.status, resp.read().decode()))
