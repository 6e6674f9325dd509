// A throw-away redis-server for the queue tests and bench:queue: Debian's `redis-server` binary on a free loopback
// port, its files in a temp folder (removed by stop()). Append-only persistence is on, so restart() brings the
// queue back as a restarted production Redis (with AOF) would.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RedisServer {
  /** redis://127.0.0.1:PORT */
  url: string;
  port: number;
  /** Stops the server (SIGTERM: it writes its append-only file and exits) and starts it again on the same port and folder. */
  restart(downMs?: number): Promise<void>;
  /** Stops the server and removes its folder. */
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A TCP port nobody listens on right now (the kernel's pick). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function launch(port: number, dir: string): Promise<ChildProcess> {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--daemonize', 'no', '--loglevel', 'warning', '--maxmemory-policy', 'noeviction'];
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout!.on('data', (d) => (log += d));
  child.stderr!.on('data', (d) => (log += d));
  return new Promise((resolve, reject) => {
    child.once('error', (e: NodeJS.ErrnoException) =>
      reject(new Error(e.code === 'ENOENT' ? 'redis-server not found: install it (apt-get install redis-server; .ci/run does)' : e.message)),
    );
    child.once('exit', (code) => reject(new Error(`redis-server exited (${code}) before accepting connections:\n${log}`)));
    // ready when the port accepts a PING
    const probe = async () => {
      for (let i = 0; i < 200 && child.exitCode === null; i++) {
        if (await ping(port)) return resolve(child);
        await sleep(25);
      }
      // not left running (startRedis tries another port, and nothing would stop this one)
      child.kill('SIGKILL');
      reject(new Error(`redis-server on port ${port} did not answer within 5 s:\n${log}`));
    };
    void probe();
  });
}

/** True when something on `port` answers PING with +PONG. */
async function ping(port: number): Promise<boolean> {
  const { connect } = await import('node:net');
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let reply = '';
    socket.setTimeout(500, () => socket.destroy());
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      reply += d;
      if (reply.includes('\r\n')) socket.end();
    });
    socket.on('close', () => resolve(reply.startsWith('+PONG')));
    socket.on('error', () => undefined);
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

export async function startRedis(): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'mobileutr-redis-'));
  let child: ChildProcess | undefined;
  let port = 0;
  // another process may take the port between freePort() and redis' bind: try a few
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    try {
      child = await launch(port, dir);
      break;
    } catch (e) {
      if (attempt >= 4) {
        rmSync(dir, { recursive: true, force: true });
        throw e;
      }
    }
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async restart(downMs = 0) {
      await stopChild(child!);
      await sleep(downMs);
      child = await launch(port, dir);
    },
    async stop() {
      await stopChild(child!);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
