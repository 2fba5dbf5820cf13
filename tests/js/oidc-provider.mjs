// A real, certified OpenID provider (panva's oidc-provider) for the integration tests.
//
//   node tests/js/oidc-provider.mjs [port]
//
// Listens on 127.0.0.1:<port> (0: an ephemeral port) and prints one JSON line,
// {"issuer": …, "port": …}, once it accepts connections. Clients: `gateway`
// (secret `gateway-secret`) and `other` (`other-secret`); any redirect URI on
// http://127.0.0.1 ending in /oidcauthn is allowed, since the gateway's port is only known
// once it runs. The built-in login and consent pages accept any user name and password.
// Users get `name`, `email`, `email_verified` and `groups` (jdoe: Sales and EU; anyone
// else: users) in the ID token.
//
// Test controls, on the provider itself:
//   POST /test/rotate           sign ID tokens from now on with a new key, published in
//                               the JWKS beside the old one (a key rotation)
//   POST /test/audience?aud=X   ID tokens name audience X (none: back to normal)
//
// Environment: OP_CLIENT_AUTH_METHODS=client_secret_post makes discovery offer only that.
import http from 'node:http';
import Provider from 'oidc-provider';
import * as jose from 'jose';

const port = Number(process.argv[2] ?? 0);

async function makeKey(kid) {
  const { privateKey, publicKey } = await jose.generateKeyPair('RS256', { extractable: true });
  const meta = { kid, alg: 'RS256', use: 'sig' };
  return {
    kid,
    privateKey,
    jwk: { ...(await jose.exportJWK(privateKey)), ...meta },
    pub: { ...(await jose.exportJWK(publicKey)), ...meta },
  };
}

const keys = [await makeKey('k1')];
let rotated = null;
let audience = null;

const placeholder = 'http://127.0.0.1/oidcauthn';
const client = (id, secret) => ({
  client_id: id,
  client_secret: secret,
  redirect_uris: [placeholder],
  response_types: ['code'],
  grant_types: ['authorization_code'],
  token_endpoint_auth_method: process.env.OP_CLIENT_AUTH_METHODS ? 'client_secret_post' : 'client_secret_basic',
});

const configuration = {
  clients: [client('gateway', 'gateway-secret'), client('other', 'other-secret')],
  jwks: { keys: [keys[0].jwk] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  scopes: ['openid', 'email', 'profile', 'groups'],
  // Scope claims in the ID token itself, as most enterprise providers send them.
  conformIdTokenClaims: false,
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          name: `Test User ${id}`,
          email: `${id}@example.test`,
          email_verified: true,
          groups: id === 'jdoe' ? ['Sales', 'EU'] : ['users'],
        };
      },
    };
  },
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
  cookies: { keys: ['test-cookie-key'] },
  ...(process.env.OP_CLIENT_AUTH_METHODS
    ? { clientAuthMethods: process.env.OP_CLIENT_AUTH_METHODS.split(',') }
    : {}),
  ttl: { AccessToken: 600, IdToken: 600, AuthorizationCode: 60, Session: 600, Interaction: 600, Grant: 600 },
};

const server = http.createServer();
server.listen(port, '127.0.0.1', () => {
  const bound = server.address().port;
  const issuer = `http://127.0.0.1:${bound}`;
  const provider = new Provider(issuer, configuration);
  provider.Client.prototype.redirectUriAllowed = function allowed(uri) {
    try {
      const u = new URL(uri);
      return u.protocol === 'http:' && u.hostname === '127.0.0.1' && u.pathname.endsWith('/oidcauthn');
    } catch {
      return false;
    }
  };
  provider.use(async (ctx, next) => {
    if (ctx.method === 'POST' && ctx.path === '/test/rotate') {
      rotated = await makeKey(`k${keys.length + 1}`);
      keys.push(rotated);
      ctx.body = { kid: rotated.kid };
      return;
    }
    if (ctx.method === 'POST' && ctx.path === '/test/audience') {
      audience = ctx.query.aud || null;
      ctx.body = { audience };
      return;
    }
    await next();
    if (ctx.path === '/jwks' && rotated) {
      ctx.body = { keys: keys.map((k) => k.pub) };
    }
    if (ctx.path === '/token' && ctx.body && ctx.body.id_token && (rotated || audience)) {
      const claims = jose.decodeJwt(ctx.body.id_token);
      if (audience) claims.aud = audience;
      const key = rotated ?? keys[0];
      ctx.body.id_token = await new jose.SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: key.kid })
        .sign(key.privateKey);
    }
  });
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  server.on('request', provider.callback());
  console.log(JSON.stringify({ issuer, port: bound }));
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
