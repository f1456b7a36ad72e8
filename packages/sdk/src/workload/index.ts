export {
  createWorkloadIdentity,
  type WorkloadIdentity,
  type WorkloadIdentityOptions,
  type WorkloadCertificate,
  type WorkloadIdentityHealth,
  type WorkloadKeyType,
} from './workload_identity.ts';
export { peerSpiffeId, peerAllowed, spiffeIdOfPeer, type PeerPolicy } from './peer_identity.ts';
export { createWorkloadCsr } from './workload_csr.ts';
