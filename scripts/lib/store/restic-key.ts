// A light restic key for a repository whose password composure generated (32 random bytes).
// restic stretches every password with scrypt, calibrated to about half a second of CPU, and
// every restic process pays it again when it opens the repository. Stretching guards passwords a
// person could guess; a random 256-bit password cannot be guessed either way, so such a
// repository gets a key with light scrypt parameters instead. The key file is restic's own
// format (its design document): scrypt of the password gives an AES-256-CTR key and a
// Poly1305-AES MAC key, which seal the repository's master key.
import { createCipheriv, createHash, randomBytes, scrypt } from "node:crypto";
import os from "node:os";

/** 1 MiB of scrypt memory, a few milliseconds (restic's calibration gives N=32768, r=8, p=6 here). */
export const lightScrypt = { N: 1024, r: 8, p: 1 };

/** Little-endian bytes as a number, and back. */
const fromLittleEndian = (bytes: Buffer) => BigInt(`0x${Buffer.from(bytes).reverse().toString("hex") || "0"}`);
const toLittleEndian16 = (value: bigint) => Buffer.from(value.toString(16).padStart(32, "0"), "hex").reverse();

/** The Poly1305 tag of `message` under the one-time key r || s (RFC 8439, section 2.5). */
export function poly1305(message: Buffer, r: Buffer, s: Buffer): Buffer {
  const prime = (1n << 130n) - 5n;
  const clamped = fromLittleEndian(r) & 0x0ffffffc0ffffffc0ffffffc0fffffffn;
  let accumulator = 0n;
  for (let offset = 0; offset < message.length; offset += 16) {
    const block = message.subarray(offset, offset + 16);
    accumulator = ((accumulator + fromLittleEndian(block) + (1n << BigInt(8 * block.length))) * clamped) % prime;
  }
  return toLittleEndian16((accumulator + fromLittleEndian(s)) % (1n << 128n));
}

/** restic's sealing: nonce || AES-256-CTR(plaintext) || Poly1305-AES(ciphertext), s = AES-128(k, nonce). */
export function seal(plaintext: Buffer, key: { encrypt: Buffer; macK: Buffer; macR: Buffer }, nonce = randomBytes(16)): Buffer {
  const ctr = createCipheriv("aes-256-ctr", key.encrypt, nonce);
  const ciphertext = Buffer.concat([ctr.update(plaintext), ctr.final()]);
  const block = createCipheriv("aes-128-ecb", key.macK, null).setAutoPadding(false);
  const s = Buffer.concat([block.update(nonce), block.final()]);
  return Buffer.concat([nonce, ciphertext, poly1305(ciphertext, key.macR, s)]);
}

const derive = (password: string, salt: Buffer) =>
  new Promise<Buffer>((resolve, reject) => scrypt(password, salt, 64, lightScrypt, (error, key) => (error ? reject(error) : resolve(key))));

/**
 * A key file that opens the repository of `masterKey` (restic cat masterkey's JSON) with
 * `password` (the password file's content; restic trims it), and its id (the file's name).
 */
export async function lightKeyFile(masterKey: string, password: string): Promise<{ id: string; content: string }> {
  const salt = randomBytes(64);
  const derived = await derive(password.trim(), salt);
  const data = seal(Buffer.from(JSON.stringify(JSON.parse(masterKey))), { encrypt: derived.subarray(0, 32), macK: derived.subarray(32, 48), macR: derived.subarray(48, 64) });
  const content = JSON.stringify({
    created: new Date().toISOString(),
    username: os.userInfo().username,
    hostname: os.hostname(),
    kdf: "scrypt",
    N: lightScrypt.N,
    r: lightScrypt.r,
    p: lightScrypt.p,
    salt: salt.toString("base64"),
    data: data.toString("base64"),
  });
  return { id: createHash("sha256").update(content).digest("hex"), content };
}
