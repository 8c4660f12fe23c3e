#!/usr/bin/env bash
# Three calls through the orchestrator gateway, with a bearer token, an API
# key and HTTP basic credentials; each prints what the upstream saw. The
# gateway does not authenticate callers: it forwards these headers to the
# upstream byte for byte.
#
# Start orchestratord with no config file, so that its embedded default
# serves the built-in echo upstream at echo/v1, then:
#
#   bash examples/clients/curl.sh
#   GATEWAY=https://gw.example.com/orchestrator bash examples/clients/curl.sh
#
# The built-in echo shows that a credential reached it ("[present]") but
# never its value. The credentials are examples: replace them with your
# upstream's (and keep real ones off the command line, e.g. with curl's
# --config or -H @file).
set -euo pipefail

gateway="${GATEWAY:-http://localhost:8000/orchestrator}"
url="${gateway%/}/echo/v1/hello"

echo "== bearer token"
curl -fsS --connect-timeout 5 --max-time 10 \
  -H 'Authorization: Bearer example-token-2f9c' "$url"

echo "== API key"
curl -fsS --connect-timeout 5 --max-time 10 \
  -H 'X-API-Key: example-key-71d0' "$url"

echo "== basic credentials"
curl -fsS --connect-timeout 5 --max-time 10 \
  -u 'alice:open sesame' "$url"
