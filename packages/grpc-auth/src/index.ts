export { GrpcAuthError } from './errors';
export {
  DEFAULT_TRUST_DOMAIN,
  controllerId,
  identityOf,
  isTrustDomain,
  nfId,
  operatorId,
  parseIdentity,
  uriSans,
  type ParsedIdentity,
} from './identity';
export {
  DEFAULT_REFRESH_MS,
  certificatesLoaded,
  channelCredentials,
  serverCredentials,
  transportSecurityFromEnv,
  type ExpectedServer,
  type SecurityLog,
  type TlsFiles,
  type TransportSecurity,
} from './credentials';
export {
  anyAuthenticated,
  anyOfTrustDomain,
  authorizationInterceptor,
  callerIdentity,
  decide,
  onlyIdentities,
  type AccessPolicy,
  type Allow,
  type Decision,
} from './authorize';
export {
  TRANSPORT_FLAGS,
  TRANSPORT_SETTINGS,
  TransportSettingsError,
  readTransportValues,
  transportSettings,
  transportSettingsFrom,
  type TransportFlagValues,
  type TransportKey,
  type TransportOrigins,
  type TransportProblem,
  type TransportSetting,
  type TransportSettings,
  type TransportValues,
} from './transport-settings';
export { LocalPki, ensureLocalCa, issueCertificate, type IssueOptions } from './local-pki';
