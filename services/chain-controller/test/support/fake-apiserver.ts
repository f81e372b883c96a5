import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { Socket } from 'node:net';

/**
 * A stand-in kube-apiserver for the reconciler's tests (there is none on this machine). It
 * speaks the Kubernetes REST wire protocol for a few namespaced resources, as client-node
 * reaches them:
 * - GET collection (one namespace or all): a List with metadata.resourceVersion
 * - GET collection ?watch=true|1&resourceVersion=N: newline-delimited JSON watch events
 *   (ADDED/MODIFIED/DELETED, BOOKMARK with allowWatchBookmarks, ERROR 410 Expired when N is
 *   older than the retained history), closed after timeoutSeconds
 * - POST, GET, PUT, PATCH (application/merge-patch+json, RFC 7386; application/json-patch+json,
 *   RFC 6902), DELETE on objects; PUT/PATCH on /status for resources with that subresource
 * - one resourceVersion counter across resources (etcd's revision); metadata.resourceVersion in
 *   a write is a precondition (409 Conflict); metadata.generation bumps on spec changes (and
 *   when deletion starts); the main resource ignores status and /status ignores all but status
 * - DELETE of an object with finalizers sets deletionTimestamp; it is removed (DELETED) when
 *   its last finalizer goes; no finalizer may be added once deletion started (422)
 * Test controls: expire() compacts the history and ends every watch with ERROR 410; stop() and
 * start() take the server down and up on the same port with its data kept.
 */
export interface ResourceType {
  /** "" for the core group (/api/v1). */
  group: string;
  version: string;
  plural: string;
  kind: string;
  statusSubresource: boolean;
}

type Obj = Record<string, unknown> & {
  metadata: Record<string, unknown> & { name: string; namespace: string };
};

interface WatchEvent {
  rv: number;
  plural: string;
  namespace: string;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: Obj;
}

interface Watcher {
  plural: string;
  namespace: string | undefined;
  res: ServerResponse;
  bookmarks: boolean;
  timer?: NodeJS.Timeout;
}

export interface RequestRecord {
  method: string;
  path: string;
  contentType?: string;
  /** A GET with watch=true|1. */
  watch?: boolean;
}

class HttpError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

const clone = <T>(v: T): T => structuredClone(v);
const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** RFC 7386 JSON Merge Patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return clone(patch);
  const out: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function pointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw new HttpError(422, 'Invalid', `bad JSON pointer "${path}"`);
  return path
    .slice(1)
    .split('/')
    .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** RFC 6902 JSON Patch (add, remove, replace, move, copy, test) on a copy of `doc`. */
export function jsonPatch(doc: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops))
    throw new HttpError(400, 'BadRequest', 'a JSON patch is an array of operations');
  let root = clone(doc);
  const parentOf = (path: string): [Record<string, unknown> | unknown[], string] => {
    const tokens = pointer(path);
    const last = tokens.pop();
    if (last === undefined) throw new HttpError(422, 'Invalid', 'the root cannot be patched here');
    let node: unknown = root;
    for (const t of tokens) {
      node = Array.isArray(node) ? node[Number(t)] : isObject(node) ? node[t] : undefined;
      if (node === undefined)
        throw new HttpError(422, 'Invalid', `path ${path}: "${t}" does not exist`);
    }
    if (!isObject(node) && !Array.isArray(node))
      throw new HttpError(422, 'Invalid', `path ${path}: parent is not a container`);
    return [node, last];
  };
  const get = (path: string): unknown => {
    let node: unknown = root;
    for (const t of pointer(path)) {
      node = Array.isArray(node) ? node[Number(t)] : isObject(node) ? node[t] : undefined;
      if (node === undefined) throw new HttpError(422, 'Invalid', `path ${path} does not exist`);
    }
    return node;
  };
  const remove = (path: string): unknown => {
    const [parent, key] = parentOf(path);
    if (Array.isArray(parent)) {
      const i = Number(key);
      if (!Number.isInteger(i) || i < 0 || i >= parent.length)
        throw new HttpError(422, 'Invalid', `path ${path}: index out of range`);
      return parent.splice(i, 1)[0];
    }
    if (!(key in parent)) throw new HttpError(422, 'Invalid', `path ${path} does not exist`);
    const v = parent[key];
    delete parent[key];
    return v;
  };
  const add = (path: string, value: unknown): void => {
    if (path === '') {
      root = clone(value);
      return;
    }
    const [parent, key] = parentOf(path);
    if (Array.isArray(parent)) {
      const i = key === '-' ? parent.length : Number(key);
      if (!Number.isInteger(i) || i < 0 || i > parent.length)
        throw new HttpError(422, 'Invalid', `path ${path}: index out of range`);
      parent.splice(i, 0, clone(value));
    } else parent[key] = clone(value);
  };
  for (const op of ops as { op?: string; path?: string; from?: string; value?: unknown }[]) {
    const path = op.path ?? '';
    switch (op.op) {
      case 'add':
        add(path, op.value);
        break;
      case 'remove':
        remove(path);
        break;
      case 'replace':
        remove(path);
        add(path, op.value);
        break;
      case 'move':
        add(path, remove(op.from ?? ''));
        break;
      case 'copy':
        add(path, get(op.from ?? ''));
        break;
      case 'test':
        if (JSON.stringify(get(path)) !== JSON.stringify(op.value))
          throw new HttpError(422, 'Invalid', `the test operation on ${path} failed`);
        break;
      default:
        throw new HttpError(400, 'BadRequest', `unknown JSON patch operation "${op.op}"`);
    }
  }
  return root;
}

export class FakeApiServer {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly watchers = new Set<Watcher>();
  private readonly store = new Map<string, Map<string, Obj>>();
  private history: WatchEvent[] = [];
  /** Watches from a resourceVersion below this get 410 Gone. */
  private oldest = 0;
  private rv = 100;
  port = 0;
  readonly requests: RequestRecord[] = [];
  /**
   * How a watch from a compacted resourceVersion is refused: an ERROR event in a 200 stream,
   * or the 410 Gone status of the request itself (both happen, depending on the watch cache).
   */
  expiredAs: 'event' | 'http' = 'event';
  /** Called before each request is served: a test's hook to change objects under a client. */
  beforeRequest: ((r: RequestRecord) => void) | undefined;

  constructor(private readonly types: ResourceType[]) {
    for (const t of types) this.store.set(t.plural, new Map());
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => this.handle(req, res));
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as { port: number }).port;
    this.server = server;
  }

  /** Down hard, as a killed apiserver: every connection (and watch) is cut. Data is kept. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const w of this.watchers) this.endWatch(w);
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Compacts the history: every open watch ends with ERROR 410, and resuming from it fails so. */
  expire(): void {
    this.history = [];
    this.oldest = this.rv + 1;
    for (const w of [...this.watchers]) {
      this.send(w, {
        type: 'ERROR',
        object: this.status(410, 'Expired', 'too old resource version'),
      });
      this.endWatch(w);
    }
  }

  /** Sends a BOOKMARK at the current resourceVersion to watches that asked for them. */
  bookmark(): void {
    for (const w of this.watchers)
      if (w.bookmarks)
        this.send(w, {
          type: 'BOOKMARK',
          object: {
            kind: this.type(w.plural).kind,
            metadata: { resourceVersion: String(this.rv) },
          },
        });
  }

  get openWatches(): number {
    return this.watchers.size;
  }

  // ---- the store, as tests (kubectl) and the HTTP handlers change it ----

  get(plural: string, namespace: string, name: string): Obj | undefined {
    const o = this.store.get(plural)?.get(`${namespace}/${name}`);
    return o ? clone(o) : undefined;
  }

  create(plural: string, namespace: string, body: Record<string, unknown>): Obj {
    const type = this.type(plural);
    const meta = { ...(isObject(body.metadata) ? body.metadata : {}) };
    const name = meta.name;
    if (typeof name !== 'string' || !name)
      throw new HttpError(422, 'Invalid', 'metadata.name: Required value');
    const objects = this.store.get(plural)!;
    if (objects.has(`${namespace}/${name}`))
      throw new HttpError(409, 'AlreadyExists', `${plural} "${name}" already exists`);
    const obj = {
      ...clone(body),
      apiVersion: type.group ? `${type.group}/${type.version}` : type.version,
      kind: type.kind,
      metadata: {
        ...meta,
        name,
        namespace,
        uid: randomUUID(),
        generation: 1,
        creationTimestamp: new Date().toISOString(),
      },
    } as Obj;
    delete obj.metadata.deletionTimestamp;
    delete obj.metadata.resourceVersion;
    return this.commit(plural, 'ADDED', obj);
  }

  /** Replaces the object (PUT), or only its status (`subresource` "status"). */
  update(
    plural: string,
    namespace: string,
    name: string,
    body: unknown,
    subresource?: string,
  ): Obj {
    const type = this.type(plural);
    const current = this.store.get(plural)!.get(`${namespace}/${name}`);
    if (!current) throw new HttpError(404, 'NotFound', `${plural} "${name}" not found`);
    if (!isObject(body) || !isObject(body.metadata))
      throw new HttpError(400, 'BadRequest', 'the body is not an object with metadata');
    const precondition = body.metadata.resourceVersion;
    if (precondition !== undefined && precondition !== current.metadata.resourceVersion)
      throw new HttpError(
        409,
        'Conflict',
        `Operation cannot be fulfilled on ${plural} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
      );
    let next: Obj;
    if (subresource === 'status') {
      if (!type.statusSubresource) throw new HttpError(404, 'NotFound', `${plural} has no status`);
      next = { ...clone(current), status: clone(body.status) };
      if (body.status === undefined) delete next.status;
    } else {
      next = { ...clone(body), metadata: { ...clone(current.metadata) } } as Obj;
      if (type.statusSubresource) {
        if (current.status === undefined) delete next.status;
        else next.status = clone(current.status);
      }
      // What a client may change in metadata; the rest is the server's.
      for (const k of ['labels', 'annotations', 'finalizers', 'ownerReferences'] as const) {
        if (body.metadata[k] === undefined) delete next.metadata[k];
        else next.metadata[k] = clone(body.metadata[k]);
      }
      const before = (current.metadata.finalizers as string[] | undefined) ?? [];
      const after = (next.metadata.finalizers as string[] | undefined) ?? [];
      if (current.metadata.deletionTimestamp && after.some((f) => !before.includes(f)))
        throw new HttpError(
          422,
          'Invalid',
          'metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted',
        );
      if (JSON.stringify(specOf(next)) !== JSON.stringify(specOf(current)))
        next.metadata.generation = Number(current.metadata.generation) + 1;
    }
    next.apiVersion = current.apiVersion;
    next.kind = current.kind;
    if (JSON.stringify(next) === JSON.stringify(current)) return clone(current);
    if (
      next.metadata.deletionTimestamp &&
      !(next.metadata.finalizers as string[] | undefined)?.length
    )
      return this.remove(plural, next);
    return this.commit(plural, 'MODIFIED', next);
  }

  patch(
    plural: string,
    namespace: string,
    name: string,
    contentType: string,
    patch: unknown,
    subresource?: string,
  ): Obj {
    const current = this.store.get(plural)!.get(`${namespace}/${name}`);
    if (!current) throw new HttpError(404, 'NotFound', `${plural} "${name}" not found`);
    let patched: unknown;
    if (contentType === 'application/merge-patch+json') patched = mergePatch(current, patch);
    else if (contentType === 'application/json-patch+json') patched = jsonPatch(current, patch);
    else
      throw new HttpError(
        415,
        'UnsupportedMediaType',
        `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json (got ${contentType})`,
      );
    // A resourceVersion left as it was is no precondition; one the patch sets is.
    return this.update(plural, namespace, name, patched, subresource);
  }

  /** DELETE: with finalizers the object only gets a deletionTimestamp. */
  delete(plural: string, namespace: string, name: string): Obj {
    const current = this.store.get(plural)!.get(`${namespace}/${name}`);
    if (!current) throw new HttpError(404, 'NotFound', `${plural} "${name}" not found`);
    if (!(current.metadata.finalizers as string[] | undefined)?.length)
      return this.remove(plural, clone(current));
    if (current.metadata.deletionTimestamp) return clone(current);
    const next = clone(current);
    next.metadata.deletionTimestamp = new Date().toISOString();
    next.metadata.deletionGracePeriodSeconds = 0;
    next.metadata.generation = Number(current.metadata.generation) + 1;
    return this.commit(plural, 'MODIFIED', next);
  }

  list(plural: string, namespace: string | undefined): Obj[] {
    return [...this.store.get(plural)!.values()]
      .filter((o) => namespace === undefined || o.metadata.namespace === namespace)
      .map(clone);
  }

  private type(plural: string): ResourceType {
    const t = this.types.find((x) => x.plural === plural);
    if (!t)
      throw new HttpError(404, 'NotFound', `the server could not find the requested resource`);
    return t;
  }

  private commit(plural: string, type: 'ADDED' | 'MODIFIED', obj: Obj): Obj {
    obj.metadata.resourceVersion = String(++this.rv);
    this.store.get(plural)!.set(`${obj.metadata.namespace}/${obj.metadata.name}`, obj);
    this.publish({
      rv: this.rv,
      plural,
      namespace: obj.metadata.namespace,
      type,
      object: clone(obj),
    });
    return clone(obj);
  }

  private remove(plural: string, obj: Obj): Obj {
    this.store.get(plural)!.delete(`${obj.metadata.namespace}/${obj.metadata.name}`);
    obj.metadata.resourceVersion = String(++this.rv);
    this.publish({
      rv: this.rv,
      plural,
      namespace: obj.metadata.namespace,
      type: 'DELETED',
      object: clone(obj),
    });
    return clone(obj);
  }

  private publish(e: WatchEvent): void {
    this.history.push(e);
    for (const w of this.watchers)
      if (w.plural === e.plural && (w.namespace === undefined || w.namespace === e.namespace))
        this.send(w, { type: e.type, object: e.object });
  }

  private send(w: Watcher, event: object): void {
    if (!w.res.writableEnded) w.res.write(`${JSON.stringify(event)}\n`);
  }

  private endWatch(w: Watcher): void {
    if (w.timer) clearTimeout(w.timer);
    this.watchers.delete(w);
    if (!w.res.writableEnded) w.res.end();
  }

  private status(code: number, reason: string, message: string): object {
    return {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message,
      reason,
      code,
    };
  }

  // ---- HTTP ----

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const contentType = req.headers['content-type']?.split(';')[0]?.trim();
      const watch = ['true', '1'].includes(url.searchParams.get('watch') ?? '');
      const record: RequestRecord = {
        method: req.method ?? '',
        path: url.pathname,
        ...(contentType ? { contentType } : {}),
        ...(watch ? { watch } : {}),
      };
      this.requests.push(record);
      try {
        this.beforeRequest?.(record);
        this.route(req.method ?? 'GET', url, contentType ?? '', Buffer.concat(chunks), res);
      } catch (err) {
        const e =
          err instanceof HttpError
            ? err
            : new HttpError(500, 'InternalError', (err as Error).message);
        this.reply(res, e.code, this.status(e.code, e.reason, e.message));
      }
    });
  }

  private reply(res: ServerResponse, code: number, body: unknown): void {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  private route(
    method: string,
    url: URL,
    contentType: string,
    body: Buffer,
    res: ServerResponse,
  ): void {
    // /api/v1[/namespaces/<ns>]/<plural>[/<name>[/status]] or /apis/<group>/<version>/...
    const parts = url.pathname.split('/').filter(Boolean);
    let group: string;
    let version: string;
    let rest: string[];
    if (parts[0] === 'api') [group, version, rest] = ['', parts[1] ?? '', parts.slice(2)];
    else if (parts[0] === 'apis')
      [group, version, rest] = [parts[1] ?? '', parts[2] ?? '', parts.slice(3)];
    else throw new HttpError(404, 'NotFound', 'the server could not find the requested resource');
    let namespace: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    const [plural = '', name, subresource] = rest;
    const type = this.type(plural);
    if (type.group !== group || type.version !== version)
      throw new HttpError(404, 'NotFound', 'the server could not find the requested resource');
    const parse = (): unknown => {
      try {
        return JSON.parse(body.toString('utf8'));
      } catch {
        throw new HttpError(400, 'BadRequest', 'the body is not JSON');
      }
    };
    if (subresource !== undefined && subresource !== 'status')
      throw new HttpError(404, 'NotFound', `no subresource ${subresource}`);
    if (name === undefined) {
      if (method === 'GET') {
        const watch = url.searchParams.get('watch');
        if (watch === 'true' || watch === '1') return this.watch(type, namespace, url, res);
        return this.reply(res, 200, {
          apiVersion: group ? `${group}/${version}` : version,
          kind: `${type.kind}List`,
          metadata: { resourceVersion: String(this.rv) },
          items: this.list(plural, namespace),
        });
      }
      if (method === 'POST' && namespace) {
        const obj = parse();
        if (!isObject(obj)) throw new HttpError(400, 'BadRequest', 'the body is not an object');
        return this.reply(res, 201, this.create(plural, namespace, obj));
      }
      throw new HttpError(405, 'MethodNotAllowed', `${method} is not allowed on a collection`);
    }
    if (!namespace) throw new HttpError(404, 'NotFound', 'namespaced resource needs a namespace');
    switch (method) {
      case 'GET': {
        const obj = this.get(plural, namespace, name);
        if (!obj) throw new HttpError(404, 'NotFound', `${plural} "${name}" not found`);
        return this.reply(res, 200, obj);
      }
      case 'PUT':
        return this.reply(res, 200, this.update(plural, namespace, name, parse(), subresource));
      case 'PATCH':
        return this.reply(
          res,
          200,
          this.patch(plural, namespace, name, contentType, parse(), subresource),
        );
      case 'DELETE':
        if (subresource) throw new HttpError(405, 'MethodNotAllowed', 'DELETE of a subresource');
        return this.reply(res, 200, this.delete(plural, namespace, name));
      default:
        throw new HttpError(405, 'MethodNotAllowed', `${method} is not allowed`);
    }
  }

  private watch(
    type: ResourceType,
    namespace: string | undefined,
    url: URL,
    res: ServerResponse,
  ): void {
    const from = url.searchParams.get('resourceVersion');
    const w: Watcher = {
      plural: type.plural,
      namespace,
      res,
      bookmarks: url.searchParams.get('allowWatchBookmarks') === 'true',
    };
    const rv = Number(from);
    const expired = !!from && from !== '0' && (!Number.isInteger(rv) || rv < this.oldest - 1);
    if (expired && this.expiredAs === 'http')
      throw new HttpError(410, 'Expired', `too old resource version: ${from} (${this.oldest})`);
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders(); // as the apiserver does: the client sees the watch open before any event
    const matches = (o: { plural: string; namespace: string }) =>
      o.plural === type.plural && (namespace === undefined || o.namespace === namespace);
    if (!from || from === '0') {
      // "Any" version: the current state as ADDED events, then changes.
      for (const o of this.list(type.plural, namespace)) this.send(w, { type: 'ADDED', object: o });
    } else {
      if (expired) {
        this.send(w, {
          type: 'ERROR',
          object: this.status(410, 'Expired', `too old resource version: ${from} (${this.oldest})`),
        });
        res.end();
        return;
      }
      for (const e of this.history)
        if (e.rv > rv && matches(e)) this.send(w, { type: e.type, object: e.object });
    }
    this.watchers.add(w);
    res.on('close', () => this.endWatch(w));
    const timeout = Number(url.searchParams.get('timeoutSeconds') ?? 0);
    if (timeout > 0) w.timer = setTimeout(() => this.endWatch(w), timeout * 1000);
  }
}

/** What the generation follows: everything but metadata and status. */
function specOf(o: Obj): unknown {
  const { metadata: _m, status: _s, ...rest } = o;
  return rest;
}

/** The resources the controller reads: ServiceChains (with /status) and pods. */
export const SERVICECHAINS: ResourceType = {
  group: 'flowline.io',
  version: 'v1alpha1',
  plural: 'servicechains',
  kind: 'ServiceChain',
  statusSubresource: true,
};
export const PODS: ResourceType = {
  group: '',
  version: 'v1',
  plural: 'pods',
  kind: 'Pod',
  statusSubresource: true,
};

/** A kubeconfig file pointing at `server` (plain HTTP, so TLS verification is off). */
export function writeKubeconfig(file: string, server: string): void {
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'fake', cluster: { server, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'test', user: {} }],
      contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'test' } }],
      'current-context': 'fake',
    }),
  );
}
