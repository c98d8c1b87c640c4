import assert from "node:assert/strict";
import { createDecipheriv } from "node:crypto";
import { test } from "node:test";
import { lightKeyFile, lightScrypt, poly1305, seal } from "../../scripts/lib/store/restic-key.ts";

test("poly1305 gives RFC 8439's tag (section 2.5.2)", () => {
  const key = Buffer.from("85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b", "hex");
  const tag = poly1305(Buffer.from("Cryptographic Forum Research Group"), key.subarray(0, 16), key.subarray(16));
  assert.equal(tag.toString("hex"), "a8061dc1305136c6c22b8baf0c0127a9");
});

test("poly1305 of an empty message is s, and a changed byte changes the tag", () => {
  const r = Buffer.alloc(16, 7);
  const s = Buffer.from("000102030405060708090a0b0c0d0e0f", "hex");
  assert.equal(poly1305(Buffer.alloc(0), r, s).toString("hex"), s.toString("hex"));
  assert.notEqual(poly1305(Buffer.from("abc"), r, s).toString("hex"), poly1305(Buffer.from("abd"), r, s).toString("hex"));
});

test("seal: nonce, AES-256-CTR ciphertext that decrypts back, a 16-byte tag", () => {
  const key = { encrypt: Buffer.alloc(32, 1), macK: Buffer.alloc(16, 2), macR: Buffer.alloc(16, 3) };
  const nonce = Buffer.alloc(16, 9);
  const sealed = seal(Buffer.from("the master key"), key, nonce);
  assert.equal(sealed.length, 16 + 14 + 16);
  assert.deepEqual(sealed.subarray(0, 16), nonce);
  const decipher = createDecipheriv("aes-256-ctr", key.encrypt, nonce);
  assert.equal(Buffer.concat([decipher.update(sealed.subarray(16, 30)), decipher.final()]).toString(), "the master key");
});

test("a light key file names its scrypt parameters and is named by its sha256", async () => {
  const master = JSON.stringify({ mac: { k: Buffer.alloc(16, 1).toString("base64"), r: Buffer.alloc(16, 2).toString("base64") }, encrypt: Buffer.alloc(32, 3).toString("base64") });
  const key = await lightKeyFile(master, "secret\n");
  const parsed = JSON.parse(key.content);
  assert.deepEqual([parsed.kdf, parsed.N, parsed.r, parsed.p], ["scrypt", lightScrypt.N, lightScrypt.r, lightScrypt.p]);
  assert.equal(Buffer.from(parsed.salt, "base64").length, 64);
  assert.equal(Buffer.from(parsed.data, "base64").length, 16 + Buffer.byteLength(master) + 16);
  assert.match(key.id, /^[0-9a-f]{64}$/);
  assert.ok(!key.content.includes("secret"), "the password is not in the key file");
});
