/**
 * nginx.conf for the bitcoin-ui companion container: serves the static UI and proxies /rpc to
 * bitcoind, injecting HTTP Basic credentials server-side so the browser never holds them.
 */
import { Base64 } from "effect/encoding"
import { defaultRpcPort, networkParam, RPC_PASSWORD_SECRET } from "./Network.ts"
import { fail, generatedHeader, intParam, rejectUnknownParams, requireSecret, stringParam } from "./Params.ts"
import type { Renderer, RenderInput } from "./Renderer.ts"
import { validateRpcPassword, validateRpcUser } from "./Rpcauth.ts"

const ID = "bitcoin-ui-nginx"
const PARAMS = ["network", "rpcUser", "rpcPort"] as const

/**
 * Proxy directives sit at server level so both /rpc locations inherit one copy. The upstream's
 * WWW-Authenticate is hidden so a bitcoind 401 cannot pop a browser login prompt, and cookies
 * for the UI are not forwarded to bitcoind.
 */
export const NGINX_TEMPLATE = `@@HEADER@@
# Holds the bitcoind RPC credentials; keep it out of the served html root.
worker_processes 1;
error_log /dev/stderr warn;

events {
  worker_connections 256;
}

http {
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  access_log off;
  server_tokens off;
  sendfile on;
  keepalive_timeout 65s;
  client_max_body_size 1m;

  server {
    listen 80;
    server_name _;
    root /usr/share/nginx/html;
    index index.html;

    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Cookie "";
    proxy_set_header Authorization "Basic @@RPC_BASIC_AUTH@@";
    proxy_hide_header WWW-Authenticate;
    proxy_connect_timeout 5s;
    proxy_send_timeout 60s;
    proxy_read_timeout 300s;

    location = /healthz {
      default_type text/plain;
      return 200 "ok";
    }

    location = /rpc {
      proxy_pass @@RPC_UPSTREAM@@;
    }

    location /rpc/ {
      proxy_pass @@RPC_UPSTREAM@@;
    }

    location / {
      try_files $uri $uri/ =404;
    }
  }
}
`

const render = (input: RenderInput): string => {
  rejectUnknownParams(ID, input.params, PARAMS)
  const network = networkParam(ID, input.params)
  const rpcUser = validateRpcUser(ID, stringParam(ID, input.params, "rpcUser", "archipelago"))
  const rpcPort = intParam(ID, input.params, "rpcPort", defaultRpcPort[network], { min: 1, max: 65535 })
  const password = validateRpcPassword(ID, requireSecret(ID, input, RPC_PASSWORD_SECRET))

  const values: Readonly<Record<string, string>> = {
    "@@HEADER@@": generatedHeader(ID),
    // Base64 keeps any password character from ending the quoted nginx string.
    "@@RPC_BASIC_AUTH@@": Base64.encode(`${rpcUser}:${password}`),
    "@@RPC_UPSTREAM@@": `http://host.archipelago:${rpcPort}/`
  }
  // A replacer function, not a string, so '$' sequences in values are never interpreted.
  const out = NGINX_TEMPLATE.replace(/@@[A-Z_]+@@/g, (placeholder) => {
    const value = values[placeholder]
    return value ?? fail(ID, `template placeholder ${placeholder} has no value`)
  })
  return out
}

/** Served while the real config cannot be rendered: no credentials, 404 for every page. */
export const FAIL_SAFE_NGINX = `# Written by archy: the real nginx.conf for bitcoin-ui could not be rendered.
# Every request answers 404 until it can; no credentials are held here.
worker_processes 1;
error_log /dev/stderr warn;

events {
  worker_connections 64;
}

http {
  access_log off;
  server_tokens off;

  server {
    listen 80 default_server;
    server_name _;

    location = /healthz {
      default_type text/plain;
      return 200 "ok";
    }

    location / {
      return 404;
    }
  }
}
`

export const bitcoinUiNginx: Renderer = {
  id: ID,
  description: "nginx.conf for bitcoin-ui: static UI plus an /rpc proxy to bitcoind with server-side auth",
  secrets: [RPC_PASSWORD_SECRET],
  render,
  failSafe: () => FAIL_SAFE_NGINX
}
