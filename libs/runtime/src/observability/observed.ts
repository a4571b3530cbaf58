import { DataSource } from 'typeorm';
import { MessageBus } from '@fl/messaging';
import { ModelRegistry } from '@fl/registry';
import { PlatformMetrics } from './platform-metrics';

export const OBSERVED = Symbol('OBSERVED');
export const METRICS = Symbol('METRICS');

/** What an app's health and metrics endpoints look at. */
export interface Observed {
  metrics: PlatformMetrics;
  bus: MessageBus;
  dataSource?: DataSource;
  registry?: ModelRegistry;
}
