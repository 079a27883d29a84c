// The child side of a benchmark server process (see server.ts). Kept free of heavy imports: server
// scripts load it before anything they measure.

/** The line a server prints on stdout once it accepts connections: `BENCH_SERVER_READY {"port":1234}`. */
export const READY_MARKER = 'BENCH_SERVER_READY';

/**
 * Tells the benchmark which port the server listens on, and ties the server's life to the benchmark's:
 * when the parent goes away (even killed), the IPC channel closes and the server shuts down with SIGTERM,
 * so its own graceful shutdown runs.
 */
export function announceReady(port: number): void {
  if (process.channel) {
    process.channel.unref();
    process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
  }
  process.stdout.write(`${READY_MARKER} ${JSON.stringify({ port })}\n`);
}
