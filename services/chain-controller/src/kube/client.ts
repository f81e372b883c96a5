// @kubernetes/client-node is an ES module and this package is CommonJS: it is loaded with a
// dynamic import, only when the controller runs in a cluster.
import type * as K8s from '@kubernetes/client-node' with { 'resolution-mode': 'import' };
import { SERVICECHAIN, type ServiceChain } from './servicechain';
import type { ListWatchSource } from './list-watch';
import type { PodLike } from './pod-directory';

export type KubeModule = typeof K8s;
export type KubeConfig = K8s.KubeConfig;

export function loadKube(): Promise<KubeModule> {
  return import('@kubernetes/client-node');
}

/** The reads and writes the reconciler makes; each is a verb the chart's RBAC grants. */
export interface ServiceChainApi {
  chains: ListWatchSource<ServiceChain>;
  pods: ListWatchSource<PodLike>;
  get(namespace: string, name: string): Promise<ServiceChain>;
  /** PUT of the object; its metadata.resourceVersion is the precondition (409 when stale). */
  replace(namespace: string, name: string, body: ServiceChain): Promise<ServiceChain>;
  /** json-patch of the object (RFC 6902 ops, e.g. test + remove of one finalizer). */
  jsonPatch(namespace: string, name: string, ops: object[]): Promise<ServiceChain>;
  /** merge-patch of the status subresource. */
  patchStatus(namespace: string, name: string, body: object): Promise<ServiceChain>;
}

/** The HTTP status of a failed client-node call (ApiException.code), if it has one. */
export function httpStatusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

function watchSource(
  k8s: KubeModule,
  kc: KubeConfig,
  path: string,
): ListWatchSource<never>['watch'] {
  const watch = new k8s.Watch(kc);
  return async (resourceVersion, onEvent, onDone) => {
    const controller = await watch.watch(
      path,
      {
        resourceVersion,
        allowWatchBookmarks: true,
        // The apiserver ends the watch after this; the watcher resumes from the last version.
        timeoutSeconds: 240 + Math.floor(Math.random() * 120),
      },
      (type: string, object: unknown) => onEvent(type, object),
      (err: unknown) => onDone(err),
    );
    return () => controller.abort();
  };
}

/** ServiceChains and pods of one namespace, or of all when `namespace` is empty. */
export function serviceChainApi(
  k8s: KubeModule,
  kc: KubeConfig,
  namespace: string,
): ServiceChainApi {
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const { group, version, plural } = SERVICECHAIN;
  const scope = namespace ? `/namespaces/${namespace}` : '';
  const merge = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
  const json = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch);
  return {
    chains: {
      what: plural,
      async list() {
        const list = (await (namespace
          ? custom.listNamespacedCustomObject({ group, version, plural, namespace })
          : custom.listClusterCustomObject({ group, version, plural }))) as {
          items: ServiceChain[];
          metadata: { resourceVersion: string };
        };
        return { items: list.items, resourceVersion: list.metadata.resourceVersion };
      },
      watch: watchSource(k8s, kc, `/apis/${group}/${version}${scope}/${plural}`),
    },
    pods: {
      what: 'pods',
      async list() {
        const list = await (namespace
          ? core.listNamespacedPod({ namespace })
          : core.listPodForAllNamespaces());
        return {
          items: list.items as PodLike[],
          resourceVersion: list.metadata?.resourceVersion ?? '',
        };
      },
      watch: watchSource(k8s, kc, `/api/v1${scope}/pods`),
    },
    get: (ns, name) =>
      custom.getNamespacedCustomObject({ group, version, plural, namespace: ns, name }),
    replace: (ns, name, body) =>
      custom.replaceNamespacedCustomObject({ group, version, plural, namespace: ns, name, body }),
    jsonPatch: (ns, name, ops) =>
      custom.patchNamespacedCustomObject(
        { group, version, plural, namespace: ns, name, body: ops },
        json,
      ),
    patchStatus: (ns, name, body) =>
      custom.patchNamespacedCustomObjectStatus(
        { group, version, plural, namespace: ns, name, body },
        merge,
      ),
  };
}
