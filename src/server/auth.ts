/**
 * API keys for the HTTP service: read from a file (one key per line), kept only as SHA-256 digests, checked in
 * constant time against every stored digest. The raw keys are never stored, logged or put in an error message.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { isIP } from 'node:net';
import { UserError } from '../errors.ts';

/** Keys shorter than this are refused: a key is a secret, not a password to remember. */
export const MIN_KEY_LENGTH = 16;
/** RFC 6750's b64token: what may follow `Bearer ` in an Authorization header. */
const TOKEN = /^[A-Za-z0-9._~+/-]+=*$/;

export const REALM = 'mobileutr';

const sha256 = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/**
 * The keys of a key file's text: one per line, surrounding spaces trimmed; blank lines and lines starting with `#`
 * are ignored. A malformed line is an error naming its line number (never its content).
 */
export function parseApiKeys(text: string, source: string): string[] {
  const keys: string[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    if (!TOKEN.test(line) || line.length < MIN_KEY_LENGTH)
      throw new UserError(
        `${source}: line ${i + 1} is not a usable API key (a key is at least ${MIN_KEY_LENGTH} characters of A-Z a-z 0-9 - . _ ~ + /, one per line; make one with: openssl rand -hex 32)`,
      );
    keys.push(line);
  });
  if (keys.length === 0) throw new UserError(`${source}: no API keys in the file (one key per line; blank lines and # comments are ignored)`);
  return [...new Set(keys)];
}

/** Why a file could not be read, in a few words. */
export function readProblem(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  const known: Record<string, string> = { ENOENT: 'file not found', EACCES: 'permission denied', EPERM: 'permission denied', EISDIR: 'is a folder', ENOTDIR: 'a file is in the path' };
  return (code && known[code]) ?? code ?? (e as Error).message;
}

/** Reads and parses a key file; every problem (missing, unreadable, empty, malformed) is a one-line UserError. */
export async function readApiKeyFile(path: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new UserError(`${path}: cannot read the API key file (${readProblem(e)})`);
  }
  return parseApiKeys(text, path);
}

export type KeyCheck = { ok: true; id: string } | { ok: false; reason: 'missing' | 'unknown' };

/** The API keys a server accepts (their digests), replaceable while it runs (SIGHUP). */
export class ApiKeys {
  private digests: Buffer[] = [];
  /** Successful and failed reloads of the key file. */
  readonly reloads = { ok: 0, failed: 0 };

  private constructor(readonly source: string) {}

  static fromKeys(keys: readonly string[], source = 'keys given in code'): ApiKeys {
    const k = new ApiKeys(source);
    k.replace(keys);
    return k;
  }

  static async fromFile(path: string): Promise<ApiKeys> {
    return ApiKeys.fromKeys(await readApiKeyFile(path), path);
  }

  get count(): number {
    return this.digests.length;
  }

  replace(keys: readonly string[]): void {
    if (keys.length === 0) throw new UserError(`${this.source}: no API keys`);
    this.digests = [...new Set(keys)].map(sha256);
  }

  /**
   * Reads the key file again. On success the new keys replace the old ones; on any failure (unreadable, empty,
   * malformed) the old keys stay and the UserError is thrown for the caller to log.
   */
  async reload(): Promise<number> {
    try {
      this.replace(await readApiKeyFile(this.source));
      this.reloads.ok++;
      return this.count;
    } catch (e) {
      this.reloads.failed++;
      throw e;
    }
  }

  /**
   * Checks an Authorization header (`Bearer <key>`). The presented key's digest is compared with every stored
   * digest by timingSafeEqual, without stopping at a match. `id` is the digest in hex: a per-key identity (rate
   * limits) that is not the key.
   */
  check(authorization: string | undefined): KeyCheck {
    const m = /^\s*Bearer(?:\s+(.*))?$/i.exec(authorization ?? '');
    const token = m?.[1]?.trim();
    if (!token) return { ok: false, reason: 'missing' }; // no header, another scheme, or no token
    const digest = sha256(token);
    let found = 0;
    for (const d of this.digests) found |= timingSafeEqual(digest, d) ? 1 : 0;
    return found ? { ok: true, id: digest.toString('hex') } : { ok: false, reason: 'unknown' };
  }
}

/** A short, non-secret label of a key for logs: the first 12 hex digits of its SHA-256. */
export const keyLabel = (id: string) => id.slice(0, 12);

/** Whether a listen address only accepts connections from this machine: 127.0.0.0/8, ::1, localhost. */
export function isLoopback(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

/** A warning when other users can read the key file (mode o+r), or undefined. */
export async function keyFileWarning(path: string): Promise<string | undefined> {
  try {
    const mode = (await stat(path)).mode;
    if (mode & 0o004) return `the API key file ${path} is readable by every user of this machine (mode ${(mode & 0o777).toString(8)}); chmod 600 it`;
  } catch {
    // read errors are reported when the keys are read
  }
  return undefined;
}
