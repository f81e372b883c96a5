export { invoke, type Invocation, type Outcome } from './main';
export { CniCode, CniError } from './errors';
export { parseNetConf, decodeConfig, type NetConf, DEFAULT_OVSDB_SOCKET } from './config';
export { readEnv, parseCniArgs, type CniEnv } from './env';
export { attachmentPaths, ovsPortName, macAddress, UNIX_SOCKET_PATH_MAX } from './naming';
export { formatResult, parseResult, type Result } from './result';
export { SUPPORTED_VERSIONS } from './versions';
export { EXT as OVS_EXTERNAL_IDS } from './commands';
export type { AttachmentFile } from './attachment-file';
