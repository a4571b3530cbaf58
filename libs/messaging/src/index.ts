export * from './message-bus';
export { sha256HexYielding } from './chunking';
export { topicMatches } from './topic-matcher';
export { RequeueError, MessageTooLargeError, UndecodableMessageError, BrokerConnectionError } from './errors';
export type { BusLogger } from './settlement';
export { PAYLOAD_HEADER, JSON_CONTENT_TYPE, BINARY_CONTENT_TYPE, MAX_PAYLOAD_HEADER_BYTES } from './wire-format';
export { InMemoryBus } from './in-memory-bus';
export type { InMemoryBusOptions, DeadLetter } from './in-memory-bus';
export { RabbitMqBus, DEFAULT_CONNECT_TIMEOUT_MS } from './rabbitmq-bus';
export type { RabbitMqBusOptions, BrokerTls } from './rabbitmq-bus';
export { describeBrokerUrl, brokerUser } from './broker-url';
export { BusContext } from './nest/bus-context';
export { BusTransport, NoHandlerError, HandlerFailedError } from './nest/bus-transport';
export type { BusTransportQueue, BusTransportStatus, BusTransportEvents } from './nest/bus-transport';
export { createBusValidationPipe, INVALID_PAYLOAD } from './nest/bus-validation-pipe';
export {
  siteGrant,
  siteUser,
  siteAmqpUrl,
  vhostOf,
  rabbitmqctlEnrolCommands,
  rabbitmqctlRevokeCommands,
  shellLine,
  RabbitMqManagement,
} from './site-access';
export type { SiteGrant } from './site-access';
