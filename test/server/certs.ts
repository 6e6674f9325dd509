// Test certificates made with the openssl command line: self-signed P-256 certificates for 127.0.0.1/localhost.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCert {
  dir: string;
  cert: string;
  key: string;
  /** The certificate's PEM text (the client's CA: the certificate is self-signed). */
  ca: string;
}

/** A self-signed certificate (its own CA) for CN=localhost, IP 127.0.0.1, valid for `days`, and its key. */
export function makeCert(name = 'server', days = 2, dir = mkdtempSync(join(tmpdir(), 'mobileutr-tls-'))): TestCert {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync(
    'openssl',
    [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
      ...['-keyout', key, '-out', cert, '-days', String(days), '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
    ],
    { stdio: 'pipe' },
  );
  return { dir, cert, key, ca: readFileSync(cert, 'utf8') };
}
