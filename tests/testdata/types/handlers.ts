// A TypeScript handlers file that tsc must accept under the tsconfig.json
// `moebius-js types --typescript` writes (tests/types_test.go). The server
// strips the types with esbuild and runs it as CommonJS.

import {
  sleep, request, dealer, server, cluster, log, text, TimeoutError, ClientGoneError,
  type Client, type Message, type Rule, type Task, type Server, type StepErrorHook,
} from 'moebius';

declare module 'moebius' {
  interface ClientState {
    count?: number;
    subscribed?: boolean;
  }
}

interface Countdown {
  command: 'countdown';
  from: number;
}

export function* countdown(client: Client, data: Countdown): Task {
  for (let n = data.from; n >= 0; n--) {
    client.send({ n });
    yield sleep(1000);
  }
}

export function count(client: Client): void {
  client.state.count = (client.state.count ?? 0) + 1;
  client.send({ count: client.state.count });
}

function* lookup(sku: string): Task<number> {
  try {
    const answer: string = yield request('tcp://127.0.0.1:5556', { command: 'price', sku }, { timeout: 2000 });
    return Number(answer);
  } catch (e) {
    if (e instanceof TimeoutError) return NaN;
    throw e;
  }
}

export function* price(client: Client, data: { sku: string }): Task {
  const value: number = yield lookup(data.sku);
  client.send({ sku: data.sku, price: value });
}

export function* chat(client: Client, data: { sku: string }, message: Message): Task {
  const upstream = dealer('tcp://127.0.0.1:5556', { identity: 'shop-1' });
  upstream.send({ command: 'hello' }, new Uint8Array([1, 2]), message.frames[0]);
  const greeting: Message = yield upstream.recv({ timeout: 2000, message: true });
  client.send(text(greeting.frames[0]), greeting.text);
  upstream.close();
}

export function relay(client: Client, data: { to: string; text: string }): void {
  try {
    server.send(data.to, client.id, data.text);
  } catch (e) {
    if (!(e instanceof ClientGoneError)) throw e;
    client.send({ error: `${data.to} is not connected` });
  }
}

export const rules: Rule[] = [
  { command: 'countdown', handler: countdown, strategy: 'replace' },
  { command: 'count', handler: count },
  { command: 'price', handler: price },
  { command: 'chat', handler: chat, strategy: 'ignore' },
  { command: 'relay', handler: relay },
  { command: 'subscribe', handler: (c) => { c.state.subscribed = true; c.send('ok'); } },
];

export function* background(srv: Server): Task {
  const subscription = cluster.subscribe('prices.*', (m) => log.info('price changed', { subject: m.subject, text: m.text }));
  try {
    for (let tick = 1; ; tick++) {
      srv.iterate((c) => { if (c.state.subscribed) c.send({ tick }); });
      srv.spawn(function* (n: number) { yield sleep(n); }, 10);
      yield sleep(1000);
    }
  } finally {
    subscription.unsubscribe();
  }
}

export const onStepError: StepErrorHook = (client, error) => {
  const message = error instanceof Error ? error.message : String(error);
  console.error('handler failed for', client.id, message);
  client.send({ error: { code: 'failed', message } });
};
