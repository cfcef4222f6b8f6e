import { parseArgs } from 'node:util';
import { ApiError, type Credentials } from './api';
import { listen } from './listen';
import { trigger } from './trigger';

// The `hookline` command (bin/hookline.cjs runs this). docs/listen.md.

export const USAGE = `Usage:
  hookline listen --forward-to <url> [--events a,b] [--api-key <key>] [--url <hookline url>]
      Opens a session and forwards its callbacks to <url>, signed as Hookline signs them.
  hookline trigger <event> [--session <id>] [--api-key <key>] [--url <hookline url>]
      Sends a test event to the listening session (the newest connected one by default).

  --api-key   an API key (test mode), or HOOKLINE_API_KEY
  --url       where Hookline is, or HOOKLINE_URL (default http://127.0.0.1:3000)
`;

export type Io = { out: (line: string) => void; err: (line: string) => void; env: NodeJS.ProcessEnv };

function credentials(values: { 'api-key'?: string; url?: string }, env: NodeJS.ProcessEnv): Credentials {
  const apiKey = values['api-key'] ?? env.HOOKLINE_API_KEY;
  if (!apiKey) throw new Error('no API key: pass --api-key or set HOOKLINE_API_KEY');
  return { apiKey, url: values.url ?? env.HOOKLINE_URL ?? 'http://127.0.0.1:3000' };
}

/** Runs one command; resolves to the exit code. `signals` stops `listen` (SIGINT, SIGTERM). */
export async function run(argv: string[], io: Io, signals: NodeJS.EventEmitter = process): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === 'listen') {
      const { values } = parseArgs({
        args: rest, strict: true,
        options: { 'forward-to': { type: 'string' }, events: { type: 'string' }, 'api-key': { type: 'string' }, url: { type: 'string' } },
      });
      if (!values['forward-to']) throw new Error('--forward-to <url> is required (e.g. http://localhost:4000/hooks)');
      const events = values.events?.split(',').map((e) => e.trim()).filter(Boolean);
      const handle = await listen({ ...credentials(values, io.env), forwardTo: values['forward-to'], events, print: io.out });
      const stop = () => {
        io.out('Stopping: ending the session…');
        handle.stop().catch((err: Error) => io.err(`hookline: could not end the session: ${err.message}`));
      };
      signals.once('SIGINT', stop);
      signals.once('SIGTERM', stop);
      await handle.done;
      return 0;
    }
    if (command === 'trigger') {
      const { values, positionals } = parseArgs({
        args: rest, strict: true, allowPositionals: true,
        options: { session: { type: 'string' }, 'api-key': { type: 'string' }, url: { type: 'string' } },
      });
      const [event] = positionals;
      if (!event || positionals.length > 1) throw new Error('name one event, e.g. `hookline trigger extraction.document_completed`');
      const attempt = await trigger(credentials(values, io.env), event, values.session);
      io.out(`${event}  ${attempt.delivery_id}  ${attempt.response_status ?? attempt.error ?? 'no answer'}  ${attempt.duration_ms} ms  (${attempt.status})`);
      return attempt.status === 'succeeded' ? 0 : 1;
    }
    io[command === undefined || command === 'help' || command === '--help' ? 'out' : 'err'](USAGE);
    return command === undefined || command === 'help' || command === '--help' ? 0 : 2;
  } catch (err) {
    const message = err instanceof ApiError ? `${err.message} (${err.code})` : (err as Error).message;
    io.err(`hookline: ${message}`);
    return 1;
  }
}
