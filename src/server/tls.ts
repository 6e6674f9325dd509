/**
 * The HTTPS certificate and key of `mobileutr serve --tls-cert --tls-key`, checked before the server starts so that
 * a wrong file is one clear line (not an OpenSSL error at the first connection).
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import { UserError } from '../errors.ts';
import { readProblem } from './auth.ts';

export interface TlsFiles {
  /** PEM: the certificate, then any intermediate certificates. */
  cert: Buffer;
  /** PEM private key (unencrypted). */
  key: Buffer;
  subject: string;
  validTo: Date;
  /** Things to warn about (an expired certificate, one not valid yet). */
  warnings: string[];
}

const firstLine = (e: unknown) => String((e as Error)?.message ?? e).split('\n')[0]!;

async function read(flag: string, path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    throw new UserError(`${flag} ${path}: cannot read (${readProblem(e)})`);
  }
}

/** Reads and checks the pair: both PEM, the certificate parses, the key is unencrypted and belongs to it. */
export async function readTlsFiles(certPath: string, keyPath: string): Promise<TlsFiles> {
  const [cert, key] = await Promise.all([read('--tls-cert', certPath), read('--tls-key', keyPath)]);
  const certText = cert.toString('latin1');
  const keyText = key.toString('latin1');
  if (!certText.includes('-----BEGIN CERTIFICATE-----')) {
    const hint = /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(certText) ? ' (it holds a private key: are --tls-cert and --tls-key swapped?)' : '; a DER file converts with: openssl x509 -inform der -in FILE -out cert.pem';
    throw new UserError(`--tls-cert ${certPath}: not a PEM certificate (no "-----BEGIN CERTIFICATE-----" line)${hint}`);
  }
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (e) {
    throw new UserError(`--tls-cert ${certPath}: not a readable certificate (${firstLine(e)})`);
  }
  if (keyText.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----') || /Proc-Type: 4,ENCRYPTED/.test(keyText))
    throw new UserError(`--tls-key ${keyPath}: the private key is encrypted with a passphrase; give an unencrypted key (openssl pkey -in ${keyPath} -out key.pem), readable only by the service's user`);
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(keyText)) {
    const hint = keyText.includes('-----BEGIN CERTIFICATE-----') ? ' (it holds a certificate: are --tls-cert and --tls-key swapped?)' : '';
    throw new UserError(`--tls-key ${keyPath}: not a PEM private key (no "-----BEGIN ... PRIVATE KEY-----" line)${hint}`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (e) {
    throw new UserError(`--tls-key ${keyPath}: not a readable private key (${firstLine(e)})`);
  }
  if (!x509.checkPrivateKey(privateKey)) throw new UserError(`--tls-key ${keyPath} does not belong to the certificate in --tls-cert ${certPath} (the key of another certificate?)`);
  try {
    createSecureContext({ cert, key });
  } catch (e) {
    throw new UserError(`--tls-cert ${certPath} / --tls-key ${keyPath}: OpenSSL refuses the pair (${firstLine(e)})`);
  }
  const validTo = new Date(x509.validTo);
  const validFrom = new Date(x509.validFrom);
  const warnings: string[] = [];
  const now = Date.now();
  if (validTo.getTime() < now) warnings.push(`the TLS certificate ${certPath} expired on ${validTo.toISOString()}; clients will refuse it`);
  if (validFrom.getTime() > now) warnings.push(`the TLS certificate ${certPath} is not valid before ${validFrom.toISOString()}; clients will refuse it`);
  return { cert, key, subject: x509.subject.replace(/\n/g, ', '), validTo, warnings };
}
