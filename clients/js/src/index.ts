export { createClient } from './client.js';
export type { Client, ClientOptions } from './client.js';
export { indexedDbStorage } from './idb.js';
export type { IndexedDbOptions } from './idb.js';
export { memoryStorage } from './storage.js';
export type { Storage, Tx, StoreName } from './storage.js';
export { SyncError } from './errors.js';
export type { ErrorKind } from './errors.js';
export type * from './types.js';
