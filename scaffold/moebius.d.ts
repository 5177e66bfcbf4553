// Types of the moebius-js JavaScript API, for editors and tsc.
//
// Put this file next to handlers.js (or handlers.ts) with the jsconfig.json
// (or tsconfig.json) that `moebius-js types DIR` writes. In a .js file:
//
//   const { sleep } = require('moebius');
//   module.exports = /** @satisfies {import('moebius').Handlers} */ ({ rules: [...] });
//
// (tsc does not check a `@type` tag on `module.exports =`: use
// `@satisfies`), and `@param {import('moebius').Client} client` on a
// function declared apart. In a .ts file:
//
//   import { sleep, type Client, type Rule } from 'moebius';
//   export const rules: Rule[] = [...];
//
// It describes only what the server's runtime (goja, ES2020, CommonJS)
// offers: no Node.js and no DOM. Nothing here exists at run time.

// ---- Globals ----

/** Writes to the server's log. Arguments are formatted as Node's `util.format` does (`%s`, `%d`, `%j`, `%o`). */
interface Console {
  /** Logs at INFO, with `source=console`. */
  log(...data: any[]): void;
  /** Logs at INFO, like `log`. */
  info(...data: any[]): void;
  /** Logs at INFO, like `log` (the server has no console DEBUG level). */
  debug(...data: any[]): void;
  /** Logs at WARN. */
  warn(...data: any[]): void;
  /** Logs at ERROR. */
  error(...data: any[]): void;
}

/** The server's log, through `console.log` and friends. */
declare var console: Console;

/** The path of the current file, as the server resolved it (relative when the server was given a relative one). */
declare var __filename: string;

/** The directory of `__filename`. */
declare var __dirname: string;

// ---- require('moebius') ----

/** What handlers.js gets from `require('moebius')`, and the types it names. */
declare module 'moebius' {
  // -- Messages --

  /**
   * One frame of a message to send: a string goes as its UTF-8 bytes, a
   * `Uint8Array` or `ArrayBuffer` as its bytes, anything else as its JSON
   * text (a value with no JSON form, such as a function, throws a `TypeError`).
   */
  export type Part = string | Uint8Array | ArrayBuffer | number | boolean | null | object;

  /** A received message. Its properties are read-only. */
  export interface Message {
    /** Every payload frame, as its exact bytes. */
    readonly frames: Uint8Array[];
    /** The first frame decoded as UTF-8 (`''` when there is none). */
    readonly text: string;
    /**
     * A request's envelope (the frames before its empty delimiter, which is
     * left out): empty for a plain REQ client, `null` when the message came
     * without one. Always `null` for replies from other servers.
     */
    readonly envelope: Uint8Array[] | null;
  }

  /** A message published with `cluster.publish`, as a subscriber receives it. */
  export interface ClusterMessage extends Message {
    /** The subject it was published on. */
    readonly subject: string;
  }

  // -- Clients --

  /**
   * What the server keeps for a client across its requests. It survives a
   * reload of handlers.js when it is JSON-serialisable. Declare your own keys
   * by merging: `declare module 'moebius' { interface ClientState { count?: number } }`.
   */
  export interface ClientState {
    [key: string]: any;
  }

  /**
   * A connected client. `send`, `broadcast` and `close` come from a shared
   * prototype: call them on the client (`client.send(x)`); taken off it
   * (`const send = client.send`) they throw a `TypeError`.
   */
  export interface Client {
    /** Its ZeroMQ routing identity as text; `0x` and hex when it is not printable UTF-8 or starts with `0x`. */
    readonly id: string;
    /** The CURVE public key (Z85, 40 characters) it proved, or `null` on a NULL connection. */
    readonly publicKey: string | null;
    /** A plain object kept for this client across its requests. */
    state: ClientState;
    /**
     * Sends one message: each argument is one frame. Replies while serving a
     * request carry its envelope back. Throws `ClientGoneError` if the client
     * has disconnected.
     */
    send(part: Part, ...more: Part[]): void;
    /** Same as `server.broadcast(x, filter)`. */
    broadcast(x: Part, filter?: (client: Client) => unknown): void;
    /** Disconnects the client once what was already sent to it has been written. */
    close(): void;
  }

  // -- Waiting: what a generator yields --

  /** Carries what a `Wait` resumes with, for the type checker only (not exported, never present). */
  const resumesWith: unique symbol;

  /**
   * Something to `yield` from a generator: the task parks, costing nothing,
   * until it resumes with a `T` (or throws at the `yield`).
   */
  export interface Wait<T> {
    readonly [resumesWith]?: T;
  }

  /**
   * What a generator function returns, run by the server step by step: a
   * handler's, spawned work's, `background()`'s, or one they yield to, which
   * gives the `yield` its `Return` value (a handler's own is ignored). What it
   * yields decides what happens next: a `Wait` parks it; a generator object
   * `g()` runs to its end; anything else lets other clients run first and
   * resumes with `undefined`. Yielding a generator function (`g`, not `g()`)
   * throws a `TypeError`; promises are not awaited. A `yield` is typed `any`:
   * what it resumes with depends on what was yielded.
   */
  export type Task<Return = void> = Generator<unknown, Return, any>;

  /**
   * Parks the task for `ms` milliseconds when yielded: `yield sleep(100)`.
   * `Infinity` (or past about 292 years) parks it until it is cancelled.
   * Throws a `TypeError` for a negative, `NaN` or non-number `ms`.
   */
  export function sleep(ms: number): Wait<undefined>;

  // -- Handlers.js exports --

  /**
   * What a new request does while the same client's previous work still runs:
   * `'queue'` (the default) waits its turn; `'replace'` cancels the running
   * handler (its `finally` blocks run) and everything queued, then runs;
   * `'ignore'` is dropped.
   */
  export type Strategy = 'queue' | 'replace' | 'ignore';

  /**
   * Serves one request, called as `handler(client, data, message)`. `data` is
   * the request's JSON value (with `rules`), or what `route` returned as `data`
   * (else the message's text). A plain function runs at once; a generator
   * function runs as a task (see `Task`). A handler that declares only
   * `client` is called with the client alone, and the request's JSON is never
   * built into objects (faster).
   */
  export type Handler<Data = any> = (client: Client, data: Data, message: Message) => Task<unknown> | void;

  /** One entry of `rules`: requests whose JSON has this `command` go to `handler`. */
  export interface Rule<Data = any> {
    /** The request's `command` (a non-empty string; each command once). */
    command: string;
    /** What serves it. */
    handler: Handler<Data>;
    /** What a new request does while the client's previous work runs (default `'queue'`). */
    strategy?: Strategy;
  }

  /** What `route` returns for a message it accepts. */
  export interface Route<Data = any> {
    /** What serves the message. */
    handler: Handler<Data>;
    /** What it does while the client's previous work runs (default `'queue'`). */
    strategy?: Strategy;
    /** The handler's `data` argument; when the property is missing, the message's text. */
    data?: Data;
  }

  /**
   * A router of your own, for any protocol, instead of `rules`: called at
   * once for each message. Returning `null` (or anything but an object), or
   * throwing, refuses it with `no_route`.
   */
  export type Router = (message: Message, client: Client) => Route | null | undefined;

  /**
   * Runs as a task of its own when the code loads, once per worker; it is
   * cancelled and started again when handlers.js reloads. What it throws is
   * logged.
   */
  export type Background = (server: Server) => Task<unknown> | void;

  /** The reply codes of the server's JSON error reply `{"error":{"code","message"}}`. */
  export type ErrorCode =
    | 'invalid_json'
    | 'missing_command'
    | 'unknown_command'
    | 'no_route'
    | 'queue_full'
    | 'handler_error'
    | 'runaway_handler'
    | 'shutting_down';

  /** An `Error` the server made for a failure that did not come from your code. */
  export interface ServerError<Code extends ErrorCode = ErrorCode> extends Error {
    /** The code the default error reply would carry. */
    code: Code;
  }

  /**
   * Runs instead of the default error reply when a request could not be routed
   * or queued; it may send its own reply. If it throws, the default reply goes.
   */
  export type MessageErrorHook = (
    client: Client,
    message: Message,
    error: ServerError<'invalid_json' | 'missing_command' | 'unknown_command' | 'no_route' | 'queue_full'>,
  ) => void;

  /**
   * Runs instead of the default error reply when a handler threw or was
   * interrupted; it may send its own reply. `error` is what the handler
   * threw (any value), or a `ServerError` with code `'runaway_handler'`
   * (or `'handler_error'`) for a failure outside your code. If it throws,
   * the default reply goes.
   */
  export type StepErrorHook = (client: Client, error: unknown) => void;

  /**
   * Decides whether a CURVE client that proved `publicKey` (Z85) may connect
   * from `address`: only `true` lets it in.
   */
  export type Authorize = (publicKey: string, address: string) => boolean;

  /** The hooks handlers.js may export beside `rules` or `route`. */
  export interface Hooks {
    /** Work that starts with the server. */
    background?: Background;
    /** Replaces the error reply of a request that could not be routed or queued. */
    onMessageError?: MessageErrorHook;
    /** Replaces the error reply of a handler that threw or was interrupted. */
    onStepError?: StepErrorHook;
    /** Decides which CURVE clients may connect. */
    authorize?: Authorize;
  }

  /** handlers.js's exports when requests go by their JSON `command`. */
  export interface RulesHandlers extends Hooks {
    /** The rules, one per command. */
    rules: readonly Rule[];
    /** When set, it routes every message and `rules` is not used. */
    route?: Router;
  }

  /** handlers.js's exports when a router of your own picks the handler. */
  export interface RouteHandlers extends Hooks {
    /** Routes every message. */
    route: Router;
    /** Not used while `route` is set. */
    rules?: readonly Rule[];
  }

  /**
   * The shape of `module.exports` of handlers.js: `rules` or `route`, and
   * optional hooks. In a .js file, check it with the JSDoc tag
   * `@satisfies {import('moebius').Handlers}` on the parenthesised object
   * literal assigned to `module.exports`.
   */
  export type Handlers = RulesHandlers | RouteHandlers;

  // -- The server --

  /**
   * This worker's clients and background work. Only once handlers.js has
   * loaded (in handlers, hooks and background work): at its top level each
   * method throws.
   */
  export interface Server {
    /**
     * Sends `x` (one frame, encoded once) to every connected client for which
     * `filter(client)` is truthy. Without a filter it reaches every client of
     * every worker (and of every instance of a cluster); a filter sees this
     * worker's clients only.
     */
    broadcast(x: Part, filter?: (client: Client) => unknown): void;
    /**
     * Sends one message to the client with that id, on any worker or instance.
     * Throws `ClientGoneError` when no such client is connected.
     */
    send(id: string, part: Part, ...more: Part[]): void;
    /** This worker's connected clients. */
    clients(): Client[];
    /** This worker's connected client with that id, or `null`. */
    client(id: string): Client | null;
    /** Calls `fn(client)` for each of this worker's connected clients. */
    iterate(fn: (client: Client) => void): void;
    /**
     * Runs `fn(...args)` as a task of its own, outside any client's queue. It
     * belongs to who spawned it: a client's (cancelled when it disconnects) or
     * background work's (cancelled on reload). Throws a `RangeError` past
     * `max_spawned` or `max_spawned_per_client`.
     */
    spawn<Args extends unknown[]>(fn: (...args: Args) => Task<unknown> | void, ...args: Args): void;
  }

  /** This worker's clients and background work. */
  export const server: Server;

  // -- Other servers --

  /**
   * A CURVE client's keys (Z85 text, 40 characters each), to talk to a server
   * that asks for CURVE. Leave out `publicKey` and `secretKey` for a fresh key
   * pair per connection.
   */
  export type CurveOptions =
    | {
        /** The server's public key. */
        serverKey: string;
        publicKey?: undefined;
        secretKey?: undefined;
      }
    | {
        /** The server's public key. */
        serverKey: string;
        /** This client's public key (goes with `secretKey`). */
        publicKey: string;
        /** This client's secret key (goes with `publicKey`). */
        secretKey: string;
      };

  /** How long to wait for a reply, and in what form. */
  export interface ReplyOptions {
    /** Milliseconds before a `TimeoutError` is thrown at the `yield` (default 10000; `0` or `Infinity`: no limit). */
    timeout?: number;
    /** `true`: resume with a `Message` instead of the first frame's text. */
    message?: boolean;
  }

  /** Options of `request()`. */
  export interface RequestOptions extends ReplyOptions {
    /** Speak CURVE to the server. */
    curve?: CurveOptions;
  }

  /** Options of `dealer()`. */
  export interface DealerOptions {
    /** The routing identity the server sees. */
    identity?: string;
    /** Speak CURVE to the server. */
    curve?: CurveOptions;
  }

  /**
   * Sends `x` (one frame, encoded like `client.send`) to the server at
   * `address` on a pooled connection; yield it to resume with the reply's
   * first frame as text, or throw `TimeoutError`.
   */
  export function request(address: string, x: Part, options?: RequestOptions & { message?: false }): Wait<string>;
  /** With `{message: true}`: yield it to resume with the whole reply as a `Message`. */
  export function request(address: string, x: Part, options: RequestOptions & { message: true }): Wait<Message>;
  /** Yield it to resume with the reply: its text, or a `Message` with `{message: true}`. */
  export function request(address: string, x: Part, options?: RequestOptions): Wait<string | Message>;

  /**
   * A DEALER socket of your own. It connects in the background and reconnects
   * on its own. One made by a handler closes when that handler finishes; one
   * made at the top of handlers.js lives as long as that code.
   */
  export interface Dealer {
    /** The endpoint it connects to. */
    readonly address: string;
    /** Queues one message (each argument one frame); throws once closed or when its send queue is full. */
    send(part: Part, ...more: Part[]): void;
    /** Yield it to resume with the next message's first frame as text, or throw `TimeoutError`. One task at a time may wait. */
    recv(options?: ReplyOptions & { message?: false }): Wait<string>;
    /** With `{message: true}`: yield it to resume with the next message as a `Message`. */
    recv(options: ReplyOptions & { message: true }): Wait<Message>;
    /** Yield it to resume with the next message: its text, or a `Message` with `{message: true}`. */
    recv(options?: ReplyOptions): Wait<string | Message>;
    /** Closes the socket; sending afterwards throws. */
    close(): void;
  }

  /** Opens a DEALER socket to `address`, such as `'tcp://127.0.0.1:5556'`. */
  export function dealer(address: string, options?: DealerOptions): Dealer;

  // -- Bytes and text --

  /** Decodes UTF-8 bytes to a string; throws a `TypeError` for anything but a `Uint8Array` or `ArrayBuffer`. */
  export function text(bytes: Uint8Array | ArrayBuffer): string;

  /** Encodes a string as UTF-8 bytes; throws a `TypeError` for anything but a string. */
  export function bytes(text: string): Uint8Array;

  // -- Logging --

  /** Writes a line to the server's log at one level. `fields` become its attributes, by key. */
  export type LogFunction = (message: string, fields?: Record<string, unknown>) => void;

  /** The server's log, with `source=js`. */
  export const log: {
    /** Logs at DEBUG. */
    debug: LogFunction;
    /** Logs at INFO. */
    info: LogFunction;
    /** Logs at WARN. */
    warn: LogFunction;
    /** Logs at ERROR. */
    error: LogFunction;
  };

  // -- Errors --

  /** Thrown at the `yield` of a `request()` or `recv()` that got no reply in time. */
  export class TimeoutError extends Error {
    name: 'TimeoutError';
  }

  /** Thrown by a send to a client that is no longer connected. */
  export class ClientGoneError extends Error {
    name: 'ClientGoneError';
  }

  // -- The cluster --

  /** A `cluster.subscribe` subscription. */
  export interface Subscription {
    /** The subject it listens on. */
    readonly subject: string;
    /** Ends it: `fn` is not called again. */
    unsubscribe(): void;
  }

  /**
   * The other instances of a cluster (`cluster_nats`). One made in a handler
   * lasts until that handler finishes; one made at the top of handlers.js, as
   * long as that code.
   */
  export const cluster: {
    /** This instance's name (`instance_name`), or `null` when it has none. */
    readonly instance: string | null;
    /**
     * Sends `x` (one frame, encoded like `client.send`) to every subscriber of
     * `subject` on every instance. Throws without a cluster, or while its link
     * is down.
     */
    publish(subject: string, x: Part): void;
    /**
     * Calls `fn(message)` on this worker for each message published on
     * `subject` (a NATS subject; `*` and `>` are wildcards), as a plain step:
     * what it throws is logged. Throws without a cluster.
     */
    subscribe(subject: string, fn: (message: ClusterMessage) => void): Subscription;
  };

  export {};
}

// ---- require('moebius/test') ----

/**
 * The test kit, for `*.test.js` and `*.test.ts` files. Each test gets a fresh
 * server (handlers loaded anew, one worker, a virtual clock starting at 0,
 * simulated clients, no sockets). Every action runs the server until it has
 * nothing left to do at the current virtual time, so what a client received
 * can be read right after.
 */
declare module 'moebius/test' {
  import type { Part } from 'moebius';

  /** Registers tests. */
  export interface Test {
    /** Registers the test `name`: `fn(t)` runs it (a plain function, not a generator). */
    (name: string, fn: (t: TestContext) => void): void;
    /** Registers the test `name` and reports it as skipped, without running it. */
    skip(name: string, fn: (t: TestContext) => void): void;
  }

  /** Registers a test: `test('name', (t) => { ... })`. */
  export const test: Test;

  /**
   * A stubbed server's answer to one request: `undefined` or `null` for no
   * reply, an array for one multipart message (each element one frame),
   * anything else for a message of one frame (a string as it is, another
   * value as its JSON text).
   */
  export type StubAnswer = Part | readonly Part[] | null | undefined | void;

  /** The handler's connection, as a stub sees it. */
  export interface StubUpstream {
    /** Sends one more message (each argument one frame) back to the handler's dealer. */
    send(...frames: Part[]): void;
  }

  /** A simulated client of the server under test. */
  export interface TestClient {
    /** Its identity. */
    readonly id: string;
    /** `false` once it disconnected, or the server closed it. */
    readonly connected: boolean;
    /** Sends one message: a string as it is, a `Uint8Array` or `ArrayBuffer` as bytes, anything else as JSON text. */
    send(frame: Part, ...more: Part[]): void;
    /**
     * The oldest message it received and has not taken yet, decoded: one frame
     * is `JSON.parse`d if it parses (else its text); several frames make an
     * array of those. Throws `AssertionError` if there is none.
     */
    take<T = any>(): T;
    /** Every message it received since it connected, taken or not, decoded as `take` does. */
    received<T = any>(): T[];
    /** Disconnects it. */
    disconnect(): void;
  }

  /** Options of `t.connect`. */
  export interface ConnectOptions {
    /** The CURVE public key (Z85) the client is taken to have proved. */
    publicKey?: string;
  }

  /** One test's server, its clock and its clients. */
  export interface TestContext {
    /** Connects a client with identity `id`. */
    connect(id: string, options?: ConnectOptions): TestClient;
    /** Moves virtual time forward by `ms`, running every timer due on the way. */
    advance(ms: number): void;
    /** Virtual milliseconds since the test began. */
    now(): number;
    /** Reloads the handlers file from disk (a new generation); throws an `Error` naming file:line:col if it fails. */
    reload(): void;
    /**
     * Answers the handlers' `dealer(endpoint)` and `request(endpoint)` instead
     * of a network. `message` is the request decoded as `TestClient.take` does.
     */
    stub(endpoint: string, answer: (message: any, upstream: StubUpstream) => StubAnswer): void;
    /** The server's log lines so far (`LEVEL message key=value ...`), console output included. */
    logs(): string[];
  }

  /** Assertions; a failed one throws an `AssertionError` (an `Error` named `'AssertionError'`). */
  export interface Assert {
    /** Asserts that `value` is truthy (same as `assert.ok`). */
    (value: unknown, message?: string): asserts value;
    /** Asserts that `value` is truthy. */
    ok(value: unknown, message?: string): asserts value;
    /** Asserts `actual === expected` (`NaN` equals `NaN`). */
    equal<T>(actual: unknown, expected: T, message?: string): asserts actual is T;
    /** Asserts `actual !== expected` (`NaN` equals `NaN`). */
    notEqual(actual: unknown, expected: unknown, message?: string): void;
    /** Asserts structural equality of arrays, plain objects and primitives. */
    deepEqual<T>(actual: unknown, expected: T, message?: string): asserts actual is T;
    /** Asserts structural inequality. */
    notDeepEqual(actual: unknown, expected: unknown, message?: string): void;
    /** Asserts that `regexp` matches `string`. */
    match(string: string, regexp: RegExp, message?: string): void;
    /**
     * Asserts that `fn()` throws; and, if given, that what it throws is an
     * instance of the `expected` class, has a message `expected` (a RegExp)
     * matches, or a message containing `expected` (a string).
     */
    throws(fn: () => unknown, expected?: (new (...args: never[]) => Error) | RegExp | string, message?: string): void;
    /** Fails at once. */
    fail(message?: string): never;
  }

  /** Assertions: `assert(value)`, `assert.equal(actual, expected)`, ... */
  export const assert: Assert;

  export {};
}
