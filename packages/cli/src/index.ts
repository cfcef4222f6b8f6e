export { run, USAGE } from './main';
export { listen, callbackLine } from './listen';
export type { ListenOptions, ListenHandle } from './listen';
export { trigger } from './trigger';
export { forward } from './forward';
export type { LocalResult } from './forward';
