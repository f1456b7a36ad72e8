export { createAuditQueue, type AuditQueue, type AuditQueueOptions } from './audit_queue.ts';
