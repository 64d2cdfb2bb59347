export { createClient } from './client.js';
export type { Client, ClientOptions } from './client.js';
export { indexedDbStorage } from './idb.js';
export type { IndexedDbOptions } from './idb.js';
export { memoryStorage } from './storage.js';
export type { Storage, Tx, StoreName } from './storage.js';
export { StorageError, SyncError } from './errors.js';
export type { ErrorKind, StorageErrorReason } from './errors.js';
export type * from './types.js';
