// node-oidc-provider configured like smartrealm's Backend Services path, for
// bench/token_endpoint.py: client_credentials with a private_key_jwt client (ES384
// assertions, jti replay detection in the in-memory adapter) and RS256 JWT access tokens
// for one resource (RFC 8707 resource indicators, RFC 9068 format).
//
//   node bench/peers/oidc_provider.mjs config.json
//
// config.json: {"port": 0, "client_id": "...", "client_jwks": {"keys": [public ES384 JWK]},
//               "resource": "http://.../fhir", "scope": "system/*.rs",
//               "signing_jwk": {private RSA JWK}}
// Prints "listening <port>" once ready.
import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const issuer = `http://127.0.0.1:${config.port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: config.client_id,
    token_endpoint_auth_method: 'private_key_jwt',
    token_endpoint_auth_signing_alg: 'ES384',
    jwks: config.client_jwks,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    scope: config.scope,
  }],
  jwks: { keys: [config.signing_jwk] },
  // SMART asks for RS384/ES384 client assertions; oidc-provider enables ES384 on request.
  enabledJWA: { clientAuthSigningAlgValues: ['ES384', 'RS384', 'ES256', 'RS256'] },
  scopes: [config.scope],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => config.resource,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource) => {
        if (resource !== config.resource) throw new Error('unknown resource');
        return {
          scope: config.scope,
          audience: config.resource,
          accessTokenTTL: 300,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  cookies: { keys: ['bench-only-cookie-key-0123456789abcdef'] },
});
provider.proxy = false;

const server = provider.listen(config.port, '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
