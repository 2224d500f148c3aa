// ---- Transport ----------------------------------------------------------

/** One failure of args validation: where in the args (a JSON pointer), and what is wrong. */
export interface FieldError {
  path: string;
  message: string;
}

/** A failed call, as the server answered it: its code, message, field errors and data. */
export class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly errors: FieldError[] = [],
    readonly data?: unknown,
  ) {
    super(message);
    this.name = "RpcError";
  }
}

/** Who is calling: `authorization` (`"Bearer <token>"`) and any fields of the application's. */
export interface Identity {
  authorization?: string;
  [field: string]: unknown;
}

/** The procedure a call names. */
export interface Address {
  scope: string;
  procedure: string;
  version: string;
}

/** Sends calls; `HttpTransport` and `WsTransport` are the two the server speaks. */
export interface Transport {
  call(address: Address, args: unknown): Promise<unknown>;
}

interface Envelope {
  code?: number;
  data?: unknown;
  message?: string;
  errors?: FieldError[];
  correlationId?: string | number;
  serverMessage?: unknown;
}

function settle(answer: Envelope): unknown {
  if (typeof answer.code !== "number") {
    throw new RpcError(502, "the answer has no code");
  }
  if (answer.code >= 200 && answer.code < 300) {
    return answer.data ?? null;
  }
  throw new RpcError(answer.code, answer.message ?? "", answer.errors ?? [], answer.data);
}

/** Options of an `HttpTransport`. */
export interface HttpOptions {
  /** Sent with every call (the envelope's `identity`). */
  identity?: Identity;
  /** Another `fetch` (the global one by default). */
  fetch?: typeof fetch;
  /** Extra request headers. */
  headers?: Record<string, string>;
}

/** One `POST` per call. */
export class HttpTransport implements Transport {
  identity?: Identity;
  private readonly fetcher: typeof fetch;
  private readonly headers: Record<string, string>;

  constructor(
    readonly url: string,
    options: HttpOptions = {},
  ) {
    this.identity = options.identity;
    this.fetcher = options.fetch ?? fetch;
    this.headers = { "content-type": "application/json", ...options.headers };
  }

  async call(address: Address, args: unknown): Promise<unknown> {
    const response = await this.fetcher(this.url, {
      method: "POST",
      headers: this.headers,
      body: JSON.stringify({ ...address, args, identity: this.identity }),
    });
    let answer: Envelope;
    try {
      answer = (await response.json()) as Envelope;
    } catch {
      throw new RpcError(response.status, `the server answered ${response.status} without an envelope`);
    }
    return settle(answer);
  }
}

/** The part of a WebSocket this transport uses: the browser's, or the `ws` package's under Node.js. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

/** A WebSocket class: `WebSocket` in browsers, `require("ws")` under Node.js. */
export type WebSocketClass = new (url: string) => WebSocketLike;

/** Options of a `WsTransport`. */
export interface WsOptions {
  /** Set on the connection when it opens, and again after every reconnect. */
  identity?: Identity;
  /** The WebSocket class (the global `WebSocket` by default). */
  WebSocket?: WebSocketClass;
  /** How long to wait before reconnecting a connection that closed (1000 ms by default). */
  reconnectDelayMs?: number;
  /** How long a call waits for its answer (30000 ms by default); then it fails with 504. */
  timeoutMs?: number;
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: RpcError) => void;
  timer: ReturnType<typeof setTimeout>;
}

/**
 * One connection for every call: calls run concurrently and are matched to
 * their answers by `correlationId`. The identity is set once and sent again
 * after a reconnect; server messages reach `onServerMessage` listeners.
 * Calls in flight when the connection drops fail with 503 (they are not
 * sent again: the server may have run them).
 */
export class WsTransport implements Transport {
  private socket?: WebSocketLike;
  private opening?: Promise<WebSocketLike>;
  private identity?: Identity;
  private next = 1;
  private closed = false;
  private readonly pending = new Map<string, Pending>();
  private readonly listeners = new Set<(message: unknown) => void>();
  private readonly WebSocket: WebSocketClass;
  private readonly reconnectDelayMs: number;
  private readonly timeoutMs: number;

  constructor(
    readonly url: string,
    options: WsOptions = {},
  ) {
    const global = globalThis as { WebSocket?: WebSocketClass };
    const WebSocket = options.WebSocket ?? global.WebSocket;
    if (!WebSocket) {
      throw new Error("no WebSocket class: pass one as options.WebSocket");
    }
    this.WebSocket = WebSocket;
    this.identity = options.identity;
    this.reconnectDelayMs = options.reconnectDelayMs ?? 1000;
    this.timeoutMs = options.timeoutMs ?? 30000;
  }

  async call(address: Address, args: unknown): Promise<unknown> {
    return this.request({ ...address, args });
  }

  /** Sets the connection's identity (checked by the server), now and after every reconnect. */
  async setIdentity(identity: Identity): Promise<void> {
    await this.request({ identity });
    this.identity = identity;
  }

  /** Listens to server messages; returns the function that stops listening. */
  onServerMessage(listener: (message: unknown) => void): () => void {
    this.listeners.add(listener);
    void this.open().catch(() => undefined);
    return () => this.listeners.delete(listener);
  }

  /** Sends a client message to the server's hooks (no answer). */
  async sendClientMessage(message: unknown): Promise<void> {
    const socket = await this.open();
    socket.send(JSON.stringify({ clientMessage: message }));
  }

  /** Closes the connection for good; calls in flight fail with 503. */
  close(): void {
    this.closed = true;
    this.socket?.close(1000, "closed by the client");
    this.fail("the connection was closed by the client");
  }

  private async request(frame: Record<string, unknown>): Promise<unknown> {
    const socket = await this.open();
    const correlationId = String(this.next++);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(correlationId);
        reject(new RpcError(504, `no answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(correlationId, { resolve, reject, timer });
      socket.send(JSON.stringify({ ...frame, correlationId }));
    });
  }

  private open(): Promise<WebSocketLike> {
    if (this.closed) {
      return Promise.reject(new RpcError(503, "the transport is closed"));
    }
    if (this.socket && this.socket.readyState === 1) {
      return Promise.resolve(this.socket);
    }
    this.opening ??= new Promise<WebSocketLike>((resolve, reject) => {
      const socket = new this.WebSocket(this.url);
      socket.onopen = () => {
        this.socket = socket;
        this.opening = undefined;
        if (this.identity) {
          // The first frame of the connection; its answer is not awaited.
          socket.send(JSON.stringify({ identity: this.identity, correlationId: "identity" }));
        }
        resolve(socket);
      };
      socket.onmessage = (event) => this.receive(String(event.data));
      socket.onerror = () => undefined;
      socket.onclose = () => {
        const wasOpen = this.socket === socket;
        this.socket = undefined;
        this.opening = undefined;
        this.fail("the connection closed");
        if (!wasOpen) {
          reject(new RpcError(503, `could not connect to ${this.url}`));
        }
        if (!this.closed && this.listeners.size > 0) {
          setTimeout(() => void this.open().catch(() => undefined), this.reconnectDelayMs);
        }
      };
    });
    return this.opening;
  }

  private receive(text: string): void {
    let frame: Envelope;
    try {
      frame = JSON.parse(text) as Envelope;
    } catch {
      return;
    }
    if ("serverMessage" in frame) {
      for (const listener of this.listeners) {
        listener(frame.serverMessage);
      }
      return;
    }
    const pending = frame.correlationId === undefined ? undefined : this.pending.get(String(frame.correlationId));
    if (!pending) {
      return;
    }
    this.pending.delete(String(frame.correlationId));
    clearTimeout(pending.timer);
    try {
      pending.resolve(settle(frame));
    } catch (error) {
      pending.reject(error as RpcError);
    }
  }

  private fail(reason: string): void {
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(new RpcError(503, reason));
      this.pending.delete(id);
    }
  }
}
