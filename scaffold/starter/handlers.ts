// handlers.ts: what this server does, in TypeScript. The server strips the
// types itself (no build step); your editor and `tsc --noEmit` check them.
// `moebius-js test` runs handlers.test.ts; edits go live without a restart.
import { sleep, type Client, type Rule } from 'moebius';

interface Hello {
  name?: string;
}

interface Later {
  ms: number;
}

export const rules: Rule[] = [
  // A plain function answers at once.
  { command: 'hello', handler: (client: Client, data: Hello) => client.send({ hello: data.name || client.id }) },

  // State kept per client (and across reloads).
  {
    command: 'count',
    handler(client: Client) {
      client.state.count = (client.state.count || 0) + 1;
      client.send({ count: client.state.count });
    },
  },

  // A generator waits without blocking anyone: yield sleep(ms).
  {
    command: 'later',
    *handler(client: Client, data: Later) {
      yield sleep(data.ms);
      client.send({ done: data.ms });
    },
  },
];
