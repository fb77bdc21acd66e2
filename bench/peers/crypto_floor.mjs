// The two signature operations of one Backend Services token request, timed in Node's own
// crypto (the OpenSSL node-oidc-provider uses): RS256 sign with a 2048-bit key, ES384 verify.
//   node bench/peers/crypto_floor.mjs COUNT
// Prints {"rs256_sign_ms": ..., "es384_verify_ms": ...} (median of 5 batches).
import crypto from 'node:crypto';

const count = Number(process.argv[2] || 300);
const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' });
const message = Buffer.alloc(400, 'x');
const signature = crypto.sign('sha384', message, { key: ec.privateKey, dsaEncoding: 'ieee-p1363' });

function batch(fn) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i += 1) fn();
  return Number(process.hrtime.bigint() - start) / count / 1e6;
}
const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const sign = [], verify = [];
for (let round = 0; round < 5; round += 1) {
  sign.push(batch(() => crypto.sign('sha256', message, privateKey)));
  verify.push(batch(() => crypto.verify('sha384', message,
    { key: ec.publicKey, dsaEncoding: 'ieee-p1363' }, signature)));
}
console.log(JSON.stringify({ rs256_sign_ms: median(sign), es384_verify_ms: median(verify) }));
