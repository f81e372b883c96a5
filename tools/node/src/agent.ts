// The node agent: the long-lived process that stands in for kubelet. It brings the node up,
// then keeps the pods equal to the manifests folder (kubelet's static pods): new manifests run,
// removed ones are torn down, dead NF processes restart per restartPolicy with a doubling
// back-off (kubelet's CrashLoopBackOff). SIGTERM tears everything down in reverse and exits 0.
import type { Logger } from '@flowline/telemetry';
import type { NodeConfig, NodePaths } from './config';
import { FileDerived, ManifestCache } from './file-cache';
import { type PodSpec, podKey } from './manifest';
import { isAlive } from './processes';
import { NodeRuntime } from './runtime';
import { readState } from './state';
import { type StopReport, writeStopReport } from './stop-report';

export interface AgentOptions {
  /** Manifest scan period; default 500 ms. */
  syncMs?: number;
  /** First restart delay; doubles per restart up to backoffMaxMs. */
  backoffMs?: number;
  backoffMaxMs?: number;
}

interface Desired {
  spec: PodSpec;
  file: string;
  text: string;
}

export class NodeAgent {
  readonly runtime: NodeRuntime;
  private timer: NodeJS.Timeout | undefined;
  private syncing = false;
  private readonly nextRestart = new Map<string, number>();
  /**
   * Failed starts in a row by pod key, for the back-off: a failed runPod leaves no pod record
   * (and so no restart count) behind.
   */
  private readonly failedStarts = new Map<string, number>();
  /** The manifest text a pod failed to start with: an edited one is tried at once, counted anew. */
  private readonly failedText = new Map<string, string>();
  /** Manifest problems by file name and pod problems by "pod:<key>", shown by `flowline status`. */
  readonly problems = new Map<string, string>();
  private readonly podProblems = new Map<string, string>();
  private readonly problemsAt = new Map<string, number>();
  /** The manifests, parsed again only when a file changed. */
  private readonly manifests = new ManifestCache();
  /** The state file's agent pid, read again only when the file changed. */
  private readonly owner: FileDerived<number | undefined>;

  constructor(
    config: NodeConfig,
    readonly paths: NodePaths,
    readonly log: Logger,
    private readonly options: AgentOptions = {},
  ) {
    this.runtime = new NodeRuntime(config, paths, log);
    this.owner = new FileDerived(() => readState(this.paths.stateFile, this.log)?.agent?.pid);
  }

  async start(): Promise<void> {
    await this.runtime.up();
    await this.sync();
    this.timer = setInterval(() => void this.sync(), this.options.syncMs ?? 500);
  }

  private readDesired(): Map<string, Desired> {
    const desired = new Map<string, Desired>();
    const problems = new Map<string, string>();
    for (const m of this.manifests.read(this.paths.manifests)) {
      if (m.error !== undefined) {
        problems.set(m.file, m.error);
        continue;
      }
      for (const p of m.pods ?? []) {
        const key = podKey(p.spec);
        if (desired.has(key)) {
          problems.set(m.file, `pod ${key} is also in ${desired.get(key)!.file}`);
          break;
        }
        desired.set(key, { spec: p.spec, file: m.file, text: p.text });
      }
    }
    for (const [f, m] of problems)
      if (this.problems.get(f) !== m) this.log.error('manifest rejected', { file: f, err: m });
    this.problems.clear();
    for (const [f, m] of problems) this.problems.set(f, m);
    // A pod problem lasts while its manifest is there; a removed manifest takes it away.
    for (const key of [...this.podProblems.keys()])
      if (!desired.has(key.slice('pod:'.length))) this.podProblems.delete(key);
    for (const [k, m] of this.podProblems) this.problems.set(k, m);
    this.writeProblems();
    return desired;
  }

  private writeProblems(): void {
    const state = this.runtime.state;
    const next = Object.fromEntries(this.problems);
    for (const [k, m] of this.problems)
      if (state.problems?.[k] !== m && !this.problemsAt.has(k)) this.problemsAt.set(k, Date.now());
    for (const k of [...this.problemsAt.keys()])
      if (!this.problems.has(k)) this.problemsAt.delete(k);
    const nextAt = Object.fromEntries(this.problemsAt);
    if (
      JSON.stringify(state.problems ?? {}) !== JSON.stringify(next) ||
      JSON.stringify(state.problemsAt ?? {}) !== JSON.stringify(nextAt)
    ) {
      state.problems = next;
      state.problemsAt = nextAt;
      this.runtime.save();
    }
  }

  /** One pass: delete what is no longer wanted (or changed), run what is missing, restart the dead. */
  async sync(): Promise<void> {
    if (this.syncing) return;
    this.syncing = true;
    try {
      // Another agent took this state dir over (this one was orphaned, e.g. its `up` was
      // killed): leave without touching anything it now owns.
      const owner = this.owner.get(this.paths.stateFile);
      if (owner !== undefined && owner !== process.pid) {
        this.log.error('another node agent owns the state dir; exiting', { owner });
        process.exit(3);
      }
      await this.runtime
        .superviseSwitch()
        .catch((err: unknown) => this.log.error('restarting ovs-vswitchd failed', { err }));
      const desired = this.readDesired();
      for (const key of [...this.failedStarts.keys()])
        if (desired.get(key)?.text !== this.failedText.get(key)) {
          // removed, or edited (perhaps to fix what stopped it): the back-off starts over
          this.failedStarts.delete(key);
          this.failedText.delete(key);
          this.nextRestart.delete(key);
        }
      const pods = this.runtime.state.pods;
      for (const key of Object.keys(pods)) {
        const want = desired.get(key);
        if (!want || want.text !== pods[key]!.manifest) {
          this.log.info('deleting pod', {
            pod: key,
            reason: want ? 'manifest changed' : 'manifest removed',
          });
          await this.runtime.deletePod(key);
          this.nextRestart.delete(key);
        }
      }
      for (const [key, want] of desired) {
        const pod = pods[key];
        if (!pod) {
          if (this.podProblems.has(`pod:${key}`) && (this.nextRestart.get(key) ?? 0) > Date.now())
            continue;
          try {
            this.log.info('running pod', { pod: key });
            await this.runtime.runPod(want.spec, want.text);
            this.failedStarts.delete(key);
            this.failedText.delete(key);
            this.nextRestart.delete(key);
            this.podProblems.delete(`pod:${key}`);
            this.problems.delete(`pod:${key}`);
          } catch (err) {
            const failed = this.failedStarts.get(key) ?? 0;
            this.failedStarts.set(key, failed + 1);
            this.failedText.set(key, want.text);
            const delay = this.backoff(failed);
            this.podProblems.set(`pod:${key}`, (err as Error).message);
            this.problems.set(`pod:${key}`, (err as Error).message);
            this.problemsAt.set(`pod:${key}`, Date.now());
            this.nextRestart.set(key, Date.now() + delay);
            this.log.warn('pod did not start; retrying after a back-off', {
              pod: key,
              failedStarts: failed + 1,
              delayMs: delay,
            });
          }
          this.writeProblems();
          continue;
        }
        if (pod.phase === 'Running' && !isAlive(pod.process)) this.handleExit(want.spec, key);
      }
    } catch (err) {
      this.log.error('sync failed', { err });
    } finally {
      this.syncing = false;
    }
  }

  /** The delay before the next try after `tries` earlier ones: doubling, up to the maximum. */
  private backoff(tries: number): number {
    return Math.min(
      (this.options.backoffMs ?? 1000) * 2 ** tries,
      this.options.backoffMaxMs ?? 10_000,
    );
  }

  private handleExit(spec: PodSpec, key: string): void {
    const pod = this.runtime.state.pods[key]!;
    const policy = spec.restartPolicy;
    if (policy === 'Never') {
      pod.phase = 'Failed';
      pod.message = 'process exited (restartPolicy Never)';
      this.runtime.save();
      return;
    }
    const due = this.nextRestart.get(key);
    if (due === undefined) {
      const delay = this.backoff(pod.restarts);
      this.nextRestart.set(key, Date.now() + delay);
      pod.message = `process exited; restarting in ${delay} ms`;
      this.log.warn('pod process exited', { pod: key, restarts: pod.restarts, delayMs: delay });
      this.runtime.save();
      return;
    }
    if (Date.now() < due) return;
    this.nextRestart.delete(key);
    this.log.info('restarting pod process', { pod: key, restarts: pod.restarts + 1 });
    try {
      this.runtime.restartPodProcess(spec, key);
      pod.message = undefined;
      this.runtime.save();
    } catch (err) {
      pod.message = `restart failed: ${(err as Error).message}`;
      this.runtime.save();
    }
  }

  /**
   * Stops the sync loop and tears everything down; returns what was stopped and leaves it in
   * the state dir for `flowline down` (which stopped this process and cannot see it otherwise).
   */
  async stop(): Promise<StopReport> {
    if (this.timer) clearInterval(this.timer);
    while (this.syncing) await new Promise((r) => setTimeout(r, 50));
    const report = await this.runtime.teardown();
    try {
      writeStopReport(this.paths.stateDir, report);
    } catch (err) {
      this.log.warn('could not leave the stop report for flowline down', { err });
    }
    this.log.info('node stopped', { ...report });
    return report;
  }
}
