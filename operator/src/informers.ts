/**
 * List+watch caches for both kinds, built on client-node's ListWatch (relist on 410 Gone, resume
 * from the last resourceVersion after a disconnect). The watch asks for bookmarks so quiet
 * resources keep a fresh resourceVersion and a reconnect doesn't need a full relist.
 */
import { ListWatch, Watch, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import type { KubeApi } from './kube-api.js';
import { GROUP, PLURAL, VERSION, type Kind, type Resource } from './resources.js';

class BookmarkWatch extends Watch {
  override watch(...[path, query, cb, done]: Parameters<Watch['watch']>): ReturnType<Watch['watch']> {
    return super.watch(path, { ...query, allowWatchBookmarks: true }, cb, done);
  }
}

export function watchPath(kind: Kind, namespace?: string): string {
  return namespace ? `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${PLURAL[kind]}` : `/apis/${GROUP}/${VERSION}/${PLURAL[kind]}`;
}

export type ResourceInformer = ListWatch<KubernetesObject & Resource>;

/** Not started: call start(). On 'error' the caller restarts it after a delay (ListWatch stops). */
export function createInformer(kc: KubeConfig, api: KubeApi, kind: Kind, namespace?: string): ResourceInformer {
  return new ListWatch<Resource>(watchPath(kind, namespace), new BookmarkWatch(kc), () => api.list(kind, namespace), false);
}
